//! Reading an input file (or stdin) into messages, streaming.
//!
//! - gzip is recognised by its magic bytes (several concatenated members are read in turn);
//! - JSON lines: one message per line, blank lines skipped;
//! - documents: when the first non-blank byte is `[` or the first line is not a complete JSON
//!   value (a pretty-printed file), whole JSON documents are split out one after another, so
//!   `{"Records":[..]}{"Records":[..]}` works too;
//! - a message longer than the configured maximum is reported as oversize, keeping only its
//!   first 64 KiB, without holding it whole in memory;
//! - unreadable compressed data ends the input with an `Unreadable` message, never an error.
//!
//! Only real I/O errors (file not found, a failing read) are errors.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Cursor, Read};
use std::path::{Path, PathBuf};

use memchr::{memchr, memchr3};

pub use crate::event::message::{KEPT_BYTES, Message, MessageKind};
use serde::de::IgnoredAny;

/// Default limit on one message (a line or a document): 256 MiB.
pub const DEFAULT_MAX_MESSAGE_BYTES: usize = 256 << 20;
/// Read buffer size.
const BUFFER_BYTES: usize = 1 << 20;

/// Where to read from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InputSpec {
    /// The file, or `None` for standard input.
    pub path: Option<PathBuf>,
    /// Longest message accepted, in bytes; longer ones are reported as oversize.
    pub max_message_bytes: usize,
}

impl InputSpec {
    /// From a command-line argument: `-` is standard input, anything else a file path.
    pub fn from_arg(arg: &str) -> Self {
        if arg == "-" {
            Self::stdin()
        } else {
            Self::file(arg)
        }
    }

    /// Standard input.
    pub fn stdin() -> Self {
        InputSpec {
            path: None,
            max_message_bytes: DEFAULT_MAX_MESSAGE_BYTES,
        }
    }

    /// A file.
    pub fn file(path: impl Into<PathBuf>) -> Self {
        InputSpec {
            path: Some(path.into()),
            max_message_bytes: DEFAULT_MAX_MESSAGE_BYTES,
        }
    }

    /// The same input with another message size limit.
    pub fn with_max_message_bytes(mut self, max: usize) -> Self {
        self.max_message_bytes = max;
        self
    }

    /// The name used in dead letters and messages: the path, or `stdin`.
    pub fn name(&self) -> String {
        self.path
            .as_deref()
            .map_or_else(|| "stdin".to_owned(), |p| p.display().to_string())
    }
}

/// How an input was laid out.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Layout {
    /// One message per line.
    #[default]
    JsonLines,
    /// Whole JSON documents, possibly pretty-printed, one after another.
    Documents,
}

/// Counts of what an input held.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SourceStats {
    /// How the input was laid out.
    pub layout: Layout,
    /// Whether it was gzip-compressed.
    pub gzip: bool,
    /// Bytes read (after decompression).
    pub bytes: u64,
    /// Lines seen.
    pub lines: u64,
    /// Messages handed on (all kinds).
    pub messages: u64,
    /// Oversize messages among them.
    pub oversize: u64,
    /// Unreadable stretches among them.
    pub unreadable: u64,
}

/// An input that could not be read.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// The input could not be opened.
    #[error("cannot open input {path}: {source}")]
    Open {
        /// The input's name.
        path: String,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// A read failed.
    #[error("cannot read input {path}: {source}")]
    Read {
        /// The input's name.
        path: String,
        /// The cause.
        #[source]
        source: io::Error,
    },
}

/// Reads every message of an input, in order, calling `f` for each.
pub fn for_each_message(
    input: &InputSpec,
    f: impl FnMut(Message<'_>),
) -> Result<SourceStats, SourceError> {
    let name = input.name();
    match &input.path {
        None => read_messages(io::stdin().lock(), &name, input.max_message_bytes, f),
        Some(path) => {
            let file = open(path, &name)?;
            match map(&file) {
                Some(map) => map_messages(&map, &name, input.max_message_bytes, f),
                None => read_messages(file, &name, input.max_message_bytes, f),
            }
        }
    }
}

/// Maps a non-empty regular file into memory, so that reading it costs no copy through the
/// kernel; `None` (read it instead) for anything else or when mapping fails. Its pages are mapped
/// a window at a time as it is read ([`Released`]), not up front, so that the input never sits
/// resident beside the agents' state.
fn map(file: &File) -> Option<memmap2::Mmap> {
    let meta = file.metadata().ok()?;
    if !meta.is_file() || meta.len() == 0 {
        return None;
    }
    // SAFETY: the map is only read, for the duration of one pass; an input file truncated by
    // another process while it is read is outside what any reader can guard against (the
    // same holds for ripgrep's use of this crate).
    let map = unsafe { memmap2::MmapOptions::new().map(file) }.ok()?;
    #[cfg(unix)]
    let _ = map.advise(memmap2::Advice::Sequential);
    Some(map)
}

fn open(path: &Path, name: &str) -> Result<File, SourceError> {
    let file = File::open(path).map_err(|source| SourceError::Open {
        path: name.to_owned(),
        source,
    })?;
    match file.metadata() {
        Ok(m) if m.is_dir() => Err(SourceError::Open {
            path: name.to_owned(),
            source: io::Error::other("is a directory"),
        }),
        _ => Ok(file),
    }
}

/// An I/O error of the underlying reader (as opposed to one of the decompressor).
#[derive(Debug)]
struct UnderlyingError(io::Error);

impl std::fmt::Display for UnderlyingError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl std::error::Error for UnderlyingError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.0)
    }
}

/// Tags the errors of the underlying reader.
struct Tagged<R>(R);

impl<R: Read> Read for Tagged<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.0.read(buf).map_err(|e| {
            if e.kind() == io::ErrorKind::Interrupted {
                e
            } else {
                io::Error::new(e.kind(), UnderlyingError(e))
            }
        })
    }
}

enum Fail {
    /// A real I/O error: stop with an error.
    Io(io::Error),
    /// Unreadable data (from the decompressor): stop with an `Unreadable` message.
    Corrupt(io::Error),
}

fn fill<R: BufRead + ?Sized>(r: &mut R) -> Result<&[u8], Fail> {
    loop {
        // Work around the borrow checker: test for `Interrupted` before returning the slice.
        match r.fill_buf() {
            Ok(_) => break,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => {
                let underlying = e
                    .get_ref()
                    .is_some_and(|inner| inner.is::<UnderlyingError>());
                return Err(if underlying {
                    let inner = e
                        .into_inner()
                        .and_then(|b| b.downcast::<UnderlyingError>().ok())
                        .map(|u| u.0)
                        .unwrap_or_else(|| io::Error::other("read failed"));
                    Fail::Io(inner)
                } else {
                    Fail::Corrupt(e)
                });
            }
        }
    }
    r.fill_buf().map_err(Fail::Io)
}

/// Reads every message of `reader` (named `name` in errors), calling `f` for each.
pub fn read_messages(
    reader: impl Read,
    name: &str,
    max_message_bytes: usize,
    f: impl FnMut(Message<'_>),
) -> Result<SourceStats, SourceError> {
    let mut reader = Tagged(reader);
    let mut stats = SourceStats::default();
    let read_err = |source: io::Error| SourceError::Read {
        path: name.to_owned(),
        source: match source.into_inner() {
            Some(inner) => match inner.downcast::<UnderlyingError>() {
                Ok(u) => u.0,
                Err(other) => io::Error::other(other),
            },
            None => io::Error::other("read failed"),
        },
    };
    // The magic bytes, read with retries so that a short first read cannot hide them.
    let mut head = [0u8; 2];
    let mut got = 0;
    while got < head.len() {
        match reader.read(&mut head[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(read_err(e)),
        }
    }
    let joined = Cursor::new(head[..got].to_vec()).chain(reader);
    stats.gzip = got == 2 && head == [0x1f, 0x8b];
    let body: Box<dyn Read + '_> = if stats.gzip {
        Box::new(flate2::read::MultiGzDecoder::new(joined))
    } else {
        Box::new(joined)
    };
    let mut br = BufReader::with_capacity(BUFFER_BYTES, body);
    split_messages(&mut br, name, max_message_bytes, stats, f)
}

/// Reads every message of a file held in memory: plain text is split in place, without
/// copying; gzip is decompressed through [`read_messages`].
fn map_messages(
    map: &memmap2::Mmap,
    name: &str,
    max_message_bytes: usize,
    f: impl FnMut(Message<'_>),
) -> Result<SourceStats, SourceError> {
    let bytes = &map[..];
    if bytes.starts_with(&[0x1f, 0x8b]) {
        return read_messages(bytes, name, max_message_bytes, f);
    }
    let mut whole = Released {
        map,
        pos: 0,
        released: 0,
        populated: 0,
    };
    split_messages(
        &mut whole,
        name,
        max_message_bytes,
        SourceStats::default(),
        f,
    )
}

/// A mapped file read as a `BufRead`, a few megabytes at a time: the pages of the next window
/// are mapped in one call before they are read (instead of a fault every few pages), and the
/// pages already read are handed back to the kernel, so that a large input does not stay
/// resident while the rest of it is processed.
struct Released<'a> {
    map: &'a memmap2::Mmap,
    pos: usize,
    released: usize,
    /// Bytes whose pages were mapped ahead.
    populated: usize,
}

impl Released<'_> {
    /// Bytes read between two releases.
    const STEP: usize = 32 << 20;
}

impl Read for Released<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = (&self.map[self.pos..]).read(buf)?;
        self.consume(n);
        Ok(n)
    }
}

impl BufRead for Released<'_> {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        let end = (self.pos + Self::STEP).min(self.map.len());
        if end > self.populated {
            let upto = (self.pos + 2 * Self::STEP).min(self.map.len());
            #[cfg(target_os = "linux")]
            // A kernel without MADV_POPULATE_READ (before 5.14) refuses it, and the pages are
            // then mapped by faults as they are read: only slower.
            let _ = self.map.advise_range(
                memmap2::Advice::PopulateRead,
                self.populated,
                upto - self.populated,
            );
            self.populated = upto;
        }
        Ok(&self.map[self.pos..end])
    }

    fn consume(&mut self, n: usize) {
        self.pos = (self.pos + n).min(self.map.len());
        if self.pos - self.released >= Self::STEP {
            // Whole pages only: the map starts on a page boundary.
            let upto = self.pos & !(4096 - 1);
            #[cfg(unix)]
            // SAFETY: the map is read-only and backed by the file, so a released page is read
            // again from the file if it is touched after all; nothing is lost.
            unsafe {
                let _ = self.map.unchecked_advise_range(
                    memmap2::UncheckedAdvice::DontNeed,
                    self.released,
                    upto - self.released,
                );
            }
            self.released = upto;
        }
    }
}

/// Splits the (decompressed) text of an input into messages.
fn split_messages<R: BufRead + ?Sized>(
    br: &mut R,
    name: &str,
    max_message_bytes: usize,
    mut stats: SourceStats,
    mut f: impl FnMut(Message<'_>),
) -> Result<SourceStats, SourceError> {
    let max = max_message_bytes.max(1);
    let mut emit = |m: Message<'_>, stats: &mut SourceStats| {
        stats.messages += 1;
        match m.kind {
            MessageKind::Oversize { .. } => stats.oversize += 1,
            MessageKind::Unreadable { .. } => stats.unreadable += 1,
            MessageKind::Complete => {}
        }
        f(m);
    };

    // Skip a byte-order mark and leading blank space, counting lines.
    let mut line = 1u64;
    let mut newlines = 0u64;
    let mut last_byte = b'\n';
    let mut first = true;
    let layout = loop {
        let buf = match fill(br) {
            Ok(b) => b,
            Err(Fail::Io(e)) => {
                return Err(SourceError::Read {
                    path: name.to_owned(),
                    source: e,
                });
            }
            Err(Fail::Corrupt(e)) => {
                stats.lines = line;
                emit(unreadable(line, &e), &mut stats);
                return Ok(stats);
            }
        };
        if buf.is_empty() {
            stats.lines = newlines + u64::from(last_byte != b'\n');
            return Ok(stats);
        }
        let mut skip = 0;
        if first && buf.starts_with(&[0xef, 0xbb, 0xbf]) {
            skip = 3;
        }
        first = false;
        let ws = skip + crate::event::wire::skip_ws(&buf[skip..]);
        let n = memchr::memchr_iter(b'\n', &buf[..ws]).count() as u64;
        line += n;
        newlines += n;
        if ws > 0 {
            last_byte = buf[ws - 1];
        }
        stats.bytes += ws as u64;
        if ws < buf.len() {
            let rest = &buf[ws..];
            let layout = if rest[0] == b'[' {
                Layout::Documents
            } else {
                match memchr(b'\n', rest) {
                    Some(nl) if first_line_incomplete(&rest[..nl]) => Layout::Documents,
                    _ => Layout::JsonLines,
                }
            };
            br.consume(ws);
            break layout;
        }
        br.consume(ws);
    };
    stats.layout = layout;

    let mut splitter = Splitter::new(layout, line, max);
    // JSON lines are split at every newline, so the splitter's line number counts them (it is
    // one past the newlines so far); newlines inside documents are counted here.
    let newlines_so_far = |splitter: &Splitter, counted: u64| match layout {
        Layout::JsonLines => splitter.line - 1,
        Layout::Documents => counted,
    };
    loop {
        let buf = match fill(br) {
            Ok(b) => b,
            Err(Fail::Io(e)) => {
                return Err(SourceError::Read {
                    path: name.to_owned(),
                    source: e,
                });
            }
            Err(Fail::Corrupt(e)) => {
                splitter.finish(&mut |m| emit(m, &mut stats));
                stats.lines = newlines_so_far(&splitter, newlines) + u64::from(last_byte != b'\n');
                emit(unreadable(splitter.line, &e), &mut stats);
                return Ok(stats);
            }
        };
        if buf.is_empty() {
            break;
        }
        let n = buf.len();
        stats.bytes += n as u64;
        if layout == Layout::Documents {
            newlines += memchr::memchr_iter(b'\n', buf).count() as u64;
        }
        last_byte = buf[n - 1];
        splitter.feed(buf, &mut |m| emit(m, &mut stats));
        br.consume(n);
    }
    splitter.finish(&mut |m| emit(m, &mut stats));
    stats.lines = newlines_so_far(&splitter, newlines) + u64::from(last_byte != b'\n');
    Ok(stats)
}

fn unreadable(line: u64, e: &io::Error) -> Message<'static> {
    Message {
        line,
        bytes: &[],
        kind: MessageKind::Unreadable {
            detail: format!("unreadable compressed data: {e}"),
        },
    }
}

/// Whether the first line of a file is the start of a document that continues on later lines.
fn first_line_incomplete(line: &[u8]) -> bool {
    let mut docs = serde_json::Deserializer::from_slice(line).into_iter::<IgnoredAny>();
    loop {
        match docs.next() {
            None => return false,
            Some(Ok(_)) => {}
            Some(Err(e)) => return e.is_eof(),
        }
    }
}

/// The bytes of a message that spans read buffers, bounded by the message limit.
#[derive(Default)]
struct Pending {
    buf: Vec<u8>,
    size: u64,
}

impl Pending {
    fn append(&mut self, part: &[u8], max: usize) {
        self.size += part.len() as u64;
        if self.size <= max as u64 {
            self.buf.extend_from_slice(part);
        } else if self.buf.len() < KEPT_BYTES {
            let room = KEPT_BYTES - self.buf.len();
            self.buf.extend_from_slice(&part[..part.len().min(room)]);
        } else if self.buf.len() > KEPT_BYTES {
            self.buf.truncate(KEPT_BYTES);
            self.buf.shrink_to_fit();
        }
    }

    fn is_empty(&self) -> bool {
        self.size == 0
    }

    fn clear(&mut self) {
        self.buf.clear();
        self.size = 0;
    }
}

/// Builds the message for `bytes` (of full length `size`), or `None` for a blank line.
fn message(
    line: u64,
    bytes: &[u8],
    size: u64,
    max: usize,
    skip_blank: bool,
) -> Option<Message<'_>> {
    if size > max as u64 {
        return Some(Message {
            line,
            bytes: &bytes[..bytes.len().min(KEPT_BYTES)],
            kind: MessageKind::Oversize { size, limit: max },
        });
    }
    let bytes = bytes.strip_suffix(b"\r").unwrap_or(bytes);
    if skip_blank
        && bytes
            .iter()
            .all(|b| matches!(b, b' ' | b'\t' | b'\r' | b'\n'))
    {
        return None;
    }
    Some(Message {
        line,
        bytes,
        kind: MessageKind::Complete,
    })
}

/// Splits a byte stream, fed in chunks of any size, into messages.
struct Splitter {
    layout: Layout,
    max: usize,
    /// Current line number.
    line: u64,
    pending: Pending,
    /// Documents: whether a document is in progress, and its scanning state.
    active: bool,
    start_line: u64,
    depth: usize,
    in_string: bool,
    escaped: bool,
    scalar: bool,
}

impl Splitter {
    fn new(layout: Layout, line: u64, max: usize) -> Self {
        Splitter {
            layout,
            max,
            line,
            pending: Pending::default(),
            active: false,
            start_line: line,
            depth: 0,
            in_string: false,
            escaped: false,
            scalar: false,
        }
    }

    fn feed(&mut self, chunk: &[u8], f: &mut dyn FnMut(Message<'_>)) {
        match self.layout {
            Layout::JsonLines => self.feed_lines(chunk, f),
            Layout::Documents => self.feed_documents(chunk, f),
        }
    }

    fn finish(&mut self, f: &mut dyn FnMut(Message<'_>)) {
        match self.layout {
            Layout::JsonLines => {
                if !self.pending.is_empty() {
                    let p = std::mem::take(&mut self.pending);
                    if let Some(m) = message(self.line, &p.buf, p.size, self.max, true) {
                        f(m);
                    }
                }
            }
            Layout::Documents => {
                if self.active {
                    self.emit_document(&[], f);
                }
            }
        }
    }

    fn feed_lines(&mut self, chunk: &[u8], f: &mut dyn FnMut(Message<'_>)) {
        let mut pos = 0;
        while let Some(i) = memchr(b'\n', &chunk[pos..]) {
            let end = pos + i;
            if self.pending.is_empty() {
                let part = &chunk[pos..end];
                if let Some(m) = message(self.line, part, part.len() as u64, self.max, true) {
                    f(m);
                }
            } else {
                self.pending.append(&chunk[pos..end], self.max);
                if let Some(m) = message(
                    self.line,
                    &self.pending.buf,
                    self.pending.size,
                    self.max,
                    true,
                ) {
                    f(m);
                }
                self.pending.clear();
            }
            self.line += 1;
            pos = end + 1;
        }
        if pos < chunk.len() {
            self.pending.append(&chunk[pos..], self.max);
        }
    }

    /// Emits the document in progress, whose last part in the current chunk is `tail`.
    fn emit_document(&mut self, tail: &[u8], f: &mut dyn FnMut(Message<'_>)) {
        self.active = false;
        if self.pending.is_empty() {
            if let Some(m) = message(self.start_line, tail, tail.len() as u64, self.max, false) {
                f(m);
            }
        } else {
            self.pending.append(tail, self.max);
            if let Some(m) = message(
                self.start_line,
                &self.pending.buf,
                self.pending.size,
                self.max,
                false,
            ) {
                f(m);
            }
            self.pending.clear();
        }
    }

    fn feed_documents(&mut self, chunk: &[u8], f: &mut dyn FnMut(Message<'_>)) {
        let mut i = 0;
        // Start of the current document's bytes within this chunk.
        let mut seg = 0;
        while i < chunk.len() {
            let b = chunk[i];
            if !self.active {
                match b {
                    b'\n' => self.line += 1,
                    b' ' | b'\t' | b'\r' => {}
                    _ => {
                        self.active = true;
                        self.start_line = self.line;
                        self.depth = 0;
                        self.in_string = false;
                        self.escaped = false;
                        self.scalar = false;
                        seg = i;
                        match b {
                            b'{' | b'[' => self.depth = 1,
                            b'"' => self.in_string = true,
                            b'}' | b']' => {
                                // A stray closing bracket is a document of its own (rejected).
                                self.emit_document(&chunk[seg..=i], f);
                            }
                            _ => self.scalar = true,
                        }
                    }
                }
                i += 1;
                continue;
            }
            if self.scalar {
                if matches!(
                    b,
                    b' ' | b'\t' | b'\r' | b'\n' | b'{' | b'[' | b'}' | b']' | b'"'
                ) {
                    // The delimiter belongs to what follows: look at it again.
                    self.emit_document(&chunk[seg..i], f);
                } else {
                    i += 1;
                }
                continue;
            }
            if self.in_string {
                if self.escaped {
                    self.escaped = false;
                    if b == b'\n' {
                        self.line += 1;
                    }
                    i += 1;
                    continue;
                }
                match memchr3(b'"', b'\\', b'\n', &chunk[i..]) {
                    None => i = chunk.len(),
                    Some(p) => {
                        let at = i + p;
                        match chunk[at] {
                            b'\\' => self.escaped = true,
                            b'\n' => self.line += 1,
                            _ => {
                                self.in_string = false;
                                if self.depth == 0 {
                                    self.emit_document(&chunk[seg..=at], f);
                                }
                            }
                        }
                        i = at + 1;
                    }
                }
                continue;
            }
            match b {
                b'"' => self.in_string = true,
                b'{' | b'[' => self.depth += 1,
                b'}' | b']' => {
                    self.depth -= 1;
                    if self.depth == 0 {
                        self.emit_document(&chunk[seg..=i], f);
                    }
                }
                b'\n' => self.line += 1,
                _ => {}
            }
            i += 1;
        }
        if self.active {
            self.pending.append(&chunk[seg..], self.max);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn collect(input: &[u8], max: usize) -> (Vec<(u64, String, MessageKind)>, SourceStats) {
        let mut out = Vec::new();
        let stats = read_messages(input, "test", max, |m| {
            out.push((
                m.line,
                String::from_utf8_lossy(m.bytes).into_owned(),
                m.kind,
            ))
        })
        .unwrap();
        (out, stats)
    }

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    #[test]
    fn json_lines_with_blank_lines_and_crlf() {
        let (msgs, stats) = collect(b"\n{\"a\":1}\r\n\n  \n{\"b\":2}\n{\"c\":3}", 1000);
        let lines: Vec<_> = msgs.iter().map(|(l, b, _)| (*l, b.as_str())).collect();
        assert_eq!(
            lines,
            [(2, "{\"a\":1}"), (5, "{\"b\":2}"), (6, "{\"c\":3}")]
        );
        assert_eq!(stats.layout, Layout::JsonLines);
        assert_eq!(stats.lines, 6);
        assert_eq!(stats.messages, 3);
    }

    #[test]
    fn pretty_documents_and_concatenations() {
        let input = b"{\n  \"Records\": [\n    {\"a\": \"}\\\"{\"}\n  ]\n}\n{\"Records\":[]}{\"Records\":[]}\n\n[\n1,\n2\n]\n";
        let (msgs, stats) = collect(input, 1000);
        assert_eq!(stats.layout, Layout::Documents);
        let got: Vec<_> = msgs.iter().map(|(l, b, _)| (*l, b.as_str())).collect();
        assert_eq!(
            got,
            [
                (1, "{\n  \"Records\": [\n    {\"a\": \"}\\\"{\"}\n  ]\n}"),
                (6, "{\"Records\":[]}"),
                (6, "{\"Records\":[]}"),
                (8, "[\n1,\n2\n]"),
            ]
        );
    }

    #[test]
    fn array_file_and_trailing_garbage() {
        let (msgs, stats) = collect(b"[{\"a\":1}]\n} junk 42 {\"b\"", 1000);
        assert_eq!(stats.layout, Layout::Documents);
        let got: Vec<_> = msgs.iter().map(|(l, b, _)| (*l, b.as_str())).collect();
        assert_eq!(
            got,
            [
                (1, "[{\"a\":1}]"),
                (2, "}"),
                (2, "junk"),
                (2, "42"),
                (2, "{\"b\"")
            ]
        );
    }

    #[test]
    fn oversize_lines_keep_a_prefix() {
        let mut input = vec![b'x'; 200_000];
        input.push(b'\n');
        input.extend_from_slice(b"{\"ok\":1}\n");
        let (msgs, stats) = collect(&input, 100_000);
        assert_eq!(msgs.len(), 2);
        assert_eq!(msgs[0].1.len(), KEPT_BYTES);
        assert_eq!(
            msgs[0].2,
            MessageKind::Oversize {
                size: 200_000,
                limit: 100_000
            }
        );
        assert_eq!((msgs[1].0, msgs[1].1.as_str()), (2, "{\"ok\":1}"));
        assert_eq!(stats.oversize, 1);
    }

    #[test]
    fn gzip_members_are_concatenated() {
        let mut data = gzip(b"{\"a\":1}\n{\"b\":2}\n");
        data.extend(gzip(b"{\"c\":3}\n"));
        let (msgs, stats) = collect(&data, 1000);
        assert!(stats.gzip);
        assert_eq!(
            msgs.iter().map(|m| m.1.as_str()).collect::<Vec<_>>(),
            ["{\"a\":1}", "{\"b\":2}", "{\"c\":3}"]
        );
    }

    #[test]
    fn corrupt_gzip_is_a_message_not_an_error() {
        let mut data = gzip(b"{\"a\":1}\n{\"b\":2}\n");
        let n = data.len();
        data.truncate(n - 12);
        data.extend_from_slice(&[0u8; 5]);
        let (msgs, stats) = collect(&data, 1000);
        assert_eq!(stats.unreadable, 1);
        assert!(matches!(
            msgs.last().unwrap().2,
            MessageKind::Unreadable { .. }
        ));
    }

    #[test]
    fn missing_file_is_an_error_naming_the_path() {
        let err =
            for_each_message(&InputSpec::file("/no/such/cinch-input.jsonl"), |_| {}).unwrap_err();
        assert!(matches!(err, SourceError::Open { .. }));
        assert!(err.to_string().contains("/no/such/cinch-input.jsonl"));
    }

    #[test]
    fn chunking_does_not_change_documents() {
        let input: &[u8] =
            b"{\n \"a\": [1, {\"b\": \"x\\\"y\"}],\n \"c\": \"\\\\\"\n}\n  [\n]\n\"s\" 7 ";
        let mut whole = Vec::new();
        let mut s = Splitter::new(Layout::Documents, 1, 1000);
        s.feed(input, &mut |m| whole.push((m.line, m.bytes.to_vec())));
        s.finish(&mut |m| whole.push((m.line, m.bytes.to_vec())));
        assert_eq!(whole.len(), 4);
        for size in 1..input.len() {
            let mut parts = Vec::new();
            let mut s = Splitter::new(Layout::Documents, 1, 1000);
            for chunk in input.chunks(size) {
                s.feed(chunk, &mut |m| parts.push((m.line, m.bytes.to_vec())));
            }
            s.finish(&mut |m| parts.push((m.line, m.bytes.to_vec())));
            assert_eq!(parts, whole, "chunk size {size}");
        }
    }
}
