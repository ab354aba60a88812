//! Training history from files, the training stopwatch and progress, and model files written:
//! the I/O around `ml::train`.

use std::path::{Path, PathBuf};
use std::time::Instant;

use crate::config::Settings;
use crate::drive::input::{InputSpec, Message, for_each_message};
use crate::event::{AccessEvent, Decoder};
use crate::ml::ModelError;
use crate::ml::model::ModelFile;
use crate::ml::train::{History, PassCounts, Progress, TrainError};

/// The inputs as files: directories expand to the files in them, in name order.
pub(crate) fn expand_inputs(inputs: &[PathBuf]) -> Result<Vec<PathBuf>, TrainError> {
    let mut files = Vec::new();
    for p in inputs {
        if p.as_os_str() == "-" {
            return Err(TrainError::Input(
                "training reads its history twice, so it needs files, not standard input".into(),
            ));
        }
        let meta = std::fs::metadata(p)
            .map_err(|e| TrainError::Input(format!("cannot read {}: {e}", p.display())))?;
        if meta.is_dir() {
            let cannot_list =
                |e: std::io::Error| TrainError::Input(format!("cannot list {}: {e}", p.display()));
            let mut inner: Vec<PathBuf> = Vec::new();
            for entry in std::fs::read_dir(p).map_err(cannot_list)? {
                let path = entry.map_err(cannot_list)?.path();
                if path.is_file() {
                    inner.push(path);
                }
            }
            inner.sort();
            files.extend(inner);
        } else {
            files.push(p.clone());
        }
    }
    if files.is_empty() {
        return Err(TrainError::Input("no input files".into()));
    }
    Ok(files)
}

/// History files (any input format, optionally gzip), read in the order given.
pub struct FileHistory {
    files: Vec<PathBuf>,
    decoder: Decoder,
}

impl FileHistory {
    /// The history in `inputs` (directories stand for the files in them, in name order),
    /// decoded as `settings` say.
    pub fn new(inputs: &[PathBuf], settings: &Settings) -> Result<FileHistory, TrainError> {
        Ok(FileHistory {
            files: expand_inputs(inputs)?,
            decoder: Decoder::new(settings.decode.decoder()),
        })
    }
}

impl History for FileHistory {
    fn names(&self) -> Vec<String> {
        self.files.iter().map(|p| p.display().to_string()).collect()
    }

    fn pass(&mut self, f: &mut dyn FnMut(&AccessEvent<'_>)) -> Result<PassCounts, TrainError> {
        let mut c = PassCounts::default();
        for path in &self.files {
            let spec = InputSpec::from_arg(&path.to_string_lossy());
            for_each_message(&spec, |msg: Message<'_>| {
                self.decoder
                    .decode_input(&msg, &mut |decoded| match decoded {
                        Ok(ev) => {
                            c.record(Some(ev.time_ms));
                            f(&ev);
                        }
                        Err(_) => c.record(None),
                    });
            })
            .map_err(|e| TrainError::Source(Box::new(e)))?;
        }
        // Several passes read the same files: each ends with no tool call waiting.
        self.decoder.flush_spans(&mut |decoded| {
            if let Ok(ev) = decoded {
                c.record(Some(ev.time_ms));
                f(&ev);
            }
        });
        Ok(c)
    }
}

/// Training's stopwatch (the wall clock) and its progress lines on stderr (unless quiet).
pub struct StderrProgress {
    started: Instant,
    quiet: bool,
}

impl StderrProgress {
    /// Starts the stopwatch.
    pub fn start(quiet: bool) -> StderrProgress {
        StderrProgress {
            started: Instant::now(),
            quiet,
        }
    }
}

impl Progress for StderrProgress {
    fn seconds(&self) -> f64 {
        self.started.elapsed().as_secs_f64()
    }

    fn say(&self, line: String) {
        if !self.quiet {
            eprintln!("cinch train: {line}");
        }
    }
}

/// Writes a model file (JSON).
pub(crate) fn write_model(file: &ModelFile, path: &Path) -> Result<(), ModelError> {
    if let Some(dir) = path.parent()
        && !dir.as_os_str().is_empty()
    {
        std::fs::create_dir_all(dir).map_err(|e| ModelError::Write {
            path: dir.display().to_string(),
            source: e,
        })?;
    }
    let text = serde_json::to_string_pretty(file).map_err(|e| ModelError::Parse(e.to_string()))?;
    std::fs::write(path, text + "\n").map_err(|e| ModelError::Write {
        path: path.display().to_string(),
        source: e,
    })
}
