//! No error on a data path is dropped without a word.
//!
//! Every `.ok()`, `unwrap_or_default()` and `let _ =` in `src/` either handles something that is
//! not an error or carries a `//` comment, on its line or within the two lines above, that says
//! why nothing is lost. Test modules are exempt: a file is scanned up to its first line that
//! starts with `#[cfg(test)]`.

use std::fs;
use std::path::{Path, PathBuf};

/// What discards a `Result` or an `Option` without looking at it.
const PATTERNS: [&str; 3] = [".ok()", "unwrap_or_default()", "let _ ="];

/// How many lines above an occurrence its comment may sit.
const REACH: usize = 2;

/// Every `.rs` file under `dir`, in name order.
fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| {
            e.unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
                .path()
        })
        .collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|x| x == "rs") {
            out.push(path);
        }
    }
}

/// Whether `line` carries a plain `//` comment, on its own or after code. Doc comments (`///`,
/// `//!`) describe an item, not a statement, and a `//` inside a word (`http://`) is no comment.
fn has_comment(line: &str) -> bool {
    line.match_indices("//").any(|(i, _)| {
        let before = line[..i].chars().next_back();
        let after = line[i + 2..].chars().next();
        before.is_none_or(char::is_whitespace) && !matches!(after, Some('/' | '!'))
    })
}

/// The occurrences in `text` without a comment near them: `(line number, line)`.
fn uncommented(text: &str) -> Vec<(usize, String)> {
    let lines: Vec<&str> = text.lines().collect();
    let mut found = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        if line.starts_with("#[cfg(test)]") {
            break;
        }
        if !PATTERNS.iter().any(|p| line.contains(p)) {
            continue;
        }
        let explained = lines[i.saturating_sub(REACH)..=i]
            .iter()
            .any(|l| has_comment(l));
        if !explained {
            found.push((i + 1, line.trim().to_string()));
        }
    }
    found
}

#[test]
fn every_discarded_error_says_why() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    assert!(!files.is_empty(), "no sources under {}", src.display());
    let mut report = Vec::new();
    for path in &files {
        let text = fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let rel = path
            .strip_prefix(env!("CARGO_MANIFEST_DIR"))
            .unwrap_or(path);
        for (n, line) in uncommented(&text) {
            report.push(format!("{}:{n}: {line}", rel.display()));
        }
    }
    assert!(
        report.is_empty(),
        "{} discarded errors without a comment that says why nothing is lost \
         (handle the error, or say why it cannot matter in a `//` comment on the line or \
         within the {REACH} lines above):\n{}",
        report.len(),
        report.join("\n")
    );
}

#[test]
fn the_scan_sees_what_it_should() {
    let text = "\
/// A doc comment explains nothing about the line below.
fn f() {
    let a = x.ok();
    // A String never fails to take a write.
    let _ = write!(s, \"x\");
    let b = y.unwrap_or_default(); // not an error: an absent member
    let n = 1;
    let url = \"http://example\";
    let c = z.ok();
}
#[cfg(test)]
mod tests {
    let _ = z;
}
";
    assert_eq!(
        uncommented(text),
        vec![
            (3, "let a = x.ok();".to_string()),
            (9, "let c = z.ok();".to_string())
        ]
    );
}
