//! Helpers shared by the integration tests that read the real logs vendored under `fixtures/`.

use std::path::{Path, PathBuf};

/// The real CloudTrail logs, vendored with their sources and licences
/// (`fixtures/cloudtrail`, see its `SOURCE.md`).
pub fn cloudtrail_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/cloudtrail")
}

/// Data files below `dir` (LICENSE, SOURCE and README files are not data), sorted.
pub fn data_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap_or_else(|e| panic!("read {}: {e}", d.display())) {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().to_string();
            if path.is_dir() {
                stack.push(path);
            } else if !["LICENSE", "SOURCE", "README"]
                .iter()
                .any(|p| name.starts_with(p))
            {
                out.push(path);
            }
        }
    }
    out.sort();
    out
}
