//! The engine is a pure library: no file under `src/` outside the drivers (`drive/`), the
//! command line (`cli/`), telemetry (`telemetry/`), the simulator (`sim/`), the evaluator
//! (`eval/`) and `main.rs` does I/O, reads a clock or the operating system's randomness, opens a
//! socket, or uses tokio or rdkafka. Test modules at the end of a file (`#[cfg(test)]`) are not
//! part of the engine and are not read.

use std::path::{Path, PathBuf};

/// Where I/O belongs.
const DRIVER_SIDE: [&str; 6] = ["drive", "cli", "telemetry", "sim", "eval", "main.rs"];

/// What the engine side must never name.
const FORBIDDEN: [&str; 22] = [
    "std::fs",
    "File::open",
    "File::create",
    "memmap",
    "Mmap",
    "SystemTime::now",
    "Instant::now",
    "OsRng",
    "thread_rng",
    "getrandom",
    "TcpStream",
    "TcpListener",
    "UdpSocket",
    "UnixStream",
    "tokio",
    "rdkafka",
    "std::io::stdin",
    "std::io::stdout",
    "std::io::stderr",
    "println!",
    "std::env::var",
    "std::process",
];

fn engine_files(dir: &Path, root: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("src/ is readable") {
        let path = entry.expect("a directory entry").path();
        let rel = path.strip_prefix(root).expect("under src/");
        let first = rel
            .components()
            .next()
            .and_then(|c| c.as_os_str().to_str())
            .unwrap_or_default();
        if DRIVER_SIDE.contains(&first) {
            continue;
        }
        if path.is_dir() {
            engine_files(&path, root, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The file's code, without its test module and comments.
fn code(text: &str) -> String {
    let body = match text.find("\n#[cfg(test)]") {
        Some(i) => &text[..i],
        None => text,
    };
    body.lines()
        .filter(|l| !l.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn the_engine_side_does_no_io_reads_no_clock_and_draws_no_randomness() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    engine_files(&root, &root, &mut files);
    assert!(
        files.len() > 50,
        "found only {} engine files under {}",
        files.len(),
        root.display()
    );
    let mut found = Vec::new();
    for f in &files {
        let text = code(&std::fs::read_to_string(f).expect("a readable source file"));
        for word in FORBIDDEN {
            if text.contains(word) {
                found.push(format!("{} uses {word}", f.display()));
            }
        }
    }
    assert!(
        found.is_empty(),
        "the engine must stay pure:\n{}",
        found.join("\n")
    );
}

#[test]
fn the_check_sees_a_forbidden_use() {
    let text = "use std::fs::File;\n// std::time::Instant::now() in a comment is fine\n#[cfg(test)]\nmod tests { fn f() { let _ = std::time::Instant::now(); } }";
    let code = code(text);
    assert!(code.contains("std::fs"));
    assert!(!code.contains("Instant::now"));
}
