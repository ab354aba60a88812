//! Reading an input file (or stdin) into messages, streaming.
//!
//! - gzip is recognised by its magic bytes (several concatenated members are read in turn;
//!   what is read before damaged compressed data does not depend on how the bytes arrive);
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
    // Without metadata the file is read instead, and reading reports its own errors.
    let meta = file.metadata().ok()?;
    if !meta.is_file() || meta.len() == 0 {
        return None;
    }
    // SAFETY: the map is only read, for the duration of one pass; an input file truncated by
    // another process while it is read is outside what any reader can guard against (the
    // same holds for ripgrep's use of this crate). A file that cannot be mapped is read.
    let map = unsafe { memmap2::MmapOptions::new().map(file) }.ok()?;
    // A hint: refused, the pages are read ahead as for any other access.
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
                        // Just found to be an `UnderlyingError`: this downcast succeeds.
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
        Box::new(flate2::bufread::MultiGzDecoder::new(Windows::new(joined)))
    } else {
        Box::new(joined)
    };
    let mut br = BufReader::with_capacity(BUFFER_BYTES, body);
    split_messages(&mut br, name, max_message_bytes, stats, f)
}

/// Compressed bytes go to the decompressor in windows of this many bytes.
const WINDOW_BYTES: usize = 4096;

/// Hands the bytes of a reader on in windows of [`WINDOW_BYTES`] at fixed offsets (the last one
/// shorter), whatever sizes its reads return.
///
/// A decompressor that meets corrupt data drops what it decompressed in the same call, and one
/// call decompresses what it is handed at once. In fixed windows, what is handed on before
/// unreadable data is the same however the bytes arrive (a file read whole, a pipe a few bytes
/// at a time), and what is lost is what the damaged window would have given, never more.
struct Windows<R> {
    inner: R,
    buf: Box<[u8]>,
    pos: usize,
    len: usize,
    eof: bool,
}

impl<R: Read> Windows<R> {
    fn new(inner: R) -> Self {
        Windows {
            inner,
            buf: vec![0; WINDOW_BYTES].into_boxed_slice(),
            pos: 0,
            len: 0,
            eof: false,
        }
    }
}

impl<R: Read> Read for Windows<R> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        let n = {
            let window = self.fill_buf()?;
            let n = window.len().min(out.len());
            out[..n].copy_from_slice(&window[..n]);
            n
        };
        self.consume(n);
        Ok(n)
    }
}

impl<R: Read> BufRead for Windows<R> {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        if self.pos == self.len && !self.eof {
            self.pos = 0;
            self.len = 0;
            while self.len < self.buf.len() {
                match self.inner.read(&mut self.buf[self.len..]) {
                    Ok(0) => {
                        self.eof = true;
                        break;
                    }
                    Ok(n) => self.len += n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(e),
                }
            }
        }
        Ok(&self.buf[self.pos..self.len])
    }

    fn consume(&mut self, n: usize) {
        self.pos = (self.pos + n).min(self.len);
    }
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
                // Refused, the pages stay resident until the map is dropped: only more memory.
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

/// How many bytes of an input decide its layout at most.
const SNIFF_MAX_BYTES: usize = 16 << 20;
/// How many lines after the first one the layout check looks at.
const SNIFF_LINES: usize = 16;

/// The layout of an input from its first bytes `head` (the byte-order mark, if any, included),
/// or `None` when more bytes are needed. `complete` says that `head` holds all of the input or
/// at least [`SNIFF_MAX_BYTES`]; only the first [`SNIFF_MAX_BYTES`] count. The answer depends on
/// the content only, never on how the bytes arrived (a file or a pipe give the same):
///
/// - the first value ends on the first line: JSON lines;
/// - the first value is complete over several lines: documents (pretty-printed);
/// - the first line is broken on its own, or longer than the sniffing window: JSON lines;
/// - the first line opens a value that goes on past it but breaks (or the window ends): JSON
///   lines when one of the next lines is a complete object or array on its own (the first line
///   was cut short), documents otherwise (a pretty-printed document, broken inside).
fn sniff_layout(head: &[u8], complete: bool) -> Option<Layout> {
    let head = &head[..head.len().min(SNIFF_MAX_BYTES)];
    const BOM: &[u8] = &[0xef, 0xbb, 0xbf];
    if !complete && head.len() < BOM.len() && BOM.starts_with(head) {
        return None;
    }
    let head = head.strip_prefix(BOM).unwrap_or(head);
    let text = &head[crate::event::wire::skip_ws(head)..];
    if text.is_empty() {
        return complete.then_some(Layout::JsonLines);
    }
    let Some(first_nl) = memchr(b'\n', text) else {
        // The first line does not end in the window (or it is the only line).
        return complete.then_some(Layout::JsonLines);
    };
    let mut values = serde_json::Deserializer::from_slice(text).into_iter::<IgnoredAny>();
    match values.next() {
        Some(Ok(_)) => {
            let end = values.byte_offset();
            if end >= text.len() && !complete {
                // A number at the end of the bytes so far may go on.
                return None;
            }
            return Some(if end > first_nl {
                Layout::Documents
            } else {
                Layout::JsonLines
            });
        }
        Some(Err(e)) if e.is_eof() && !complete => return None,
        Some(Err(e)) if !e.is_eof() && e.line() == 1 => return Some(Layout::JsonLines),
        _ => {}
    }
    // The first line opens a value that does not end well: look at the lines after it.
    let mut rest = &text[first_nl + 1..];
    for _ in 0..SNIFF_LINES {
        let (line, more) = match memchr(b'\n', rest) {
            Some(nl) => (&rest[..nl], &rest[nl + 1..]),
            None if complete => (rest, &rest[rest.len()..]),
            None => return None,
        };
        let line = &line[crate::event::wire::skip_ws(line)..];
        if matches!(line.first(), Some(b'{' | b'[')) {
            let mut it = serde_json::Deserializer::from_slice(line).into_iter::<IgnoredAny>();
            if matches!(it.next(), Some(Ok(_)))
                && crate::event::wire::skip_ws(&line[it.byte_offset()..])
                    == line.len() - it.byte_offset()
            {
                return Some(Layout::JsonLines);
            }
        }
        if more.is_empty() {
            if !complete {
                // The bytes so far end at a line break, not necessarily the input: the lines
                // after it may tell.
                return None;
            }
            break;
        }
        rest = more;
    }
    Some(Layout::Documents)
}

/// The layout of an input whose first bytes `head` are all there is to look at.
fn settled_layout(head: &[u8]) -> Layout {
    // Told that `head` is complete, `sniff_layout` always answers: the default is never taken.
    sniff_layout(head, true).unwrap_or_default()
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
    let read_error = |e: io::Error| SourceError::Read {
        path: name.to_owned(),
        source: e,
    };

    // The layout, from the first bytes: from the reader's buffer when it holds enough, else
    // from bytes gathered until it can be told.
    let mut head: Vec<u8> = Vec::new();
    let mut next_check = 0usize;
    let mut corrupt = None;
    let layout = loop {
        let buf = match fill(br) {
            Ok(b) => b,
            Err(Fail::Io(e)) => return Err(read_error(e)),
            Err(Fail::Corrupt(e)) => {
                corrupt = Some(e);
                break settled_layout(&head);
            }
        };
        if buf.is_empty() {
            break settled_layout(&head);
        }
        if head.is_empty()
            && let Some(layout) = sniff_layout(buf, buf.len() >= SNIFF_MAX_BYTES)
        {
            break layout;
        }
        let take = buf.len().min(SNIFF_MAX_BYTES - head.len());
        head.extend_from_slice(&buf[..take]);
        br.consume(take);
        if head.len() >= SNIFF_MAX_BYTES {
            break settled_layout(&head);
        }
        // Looking again only when the bytes have doubled keeps slow pipes linear.
        if head.len() >= next_check {
            next_check = head.len().saturating_mul(2).max(4096);
            if let Some(layout) = sniff_layout(&head, false) {
                break layout;
            }
        }
    };
    stats.layout = layout;

    let mut splitter = Splitter::new(layout, max);
    let mut newlines = 0u64;
    let mut last_byte = b'\n';
    let mut feed = |chunk: &[u8], splitter: &mut Splitter, stats: &mut SourceStats| {
        stats.bytes += chunk.len() as u64;
        if layout == Layout::Documents {
            newlines += memchr::memchr_iter(b'\n', chunk).count() as u64;
        }
        if let Some(&b) = chunk.last() {
            last_byte = b;
        }
        splitter.feed(chunk, &mut |m| emit(m, stats));
    };
    if !head.is_empty() {
        feed(&head, &mut splitter, &mut stats);
    }
    drop(head);
    if corrupt.is_none() {
        loop {
            let buf = match fill(br) {
                Ok(b) => b,
                Err(Fail::Io(e)) => return Err(read_error(e)),
                Err(Fail::Corrupt(e)) => {
                    corrupt = Some(e);
                    break;
                }
            };
            if buf.is_empty() {
                break;
            }
            let n = buf.len();
            feed(buf, &mut splitter, &mut stats);
            br.consume(n);
        }
    }
    splitter.finish(&mut |m| emit(m, &mut stats));
    let counted = match layout {
        Layout::JsonLines => splitter.line - 1,
        Layout::Documents => newlines,
    };
    stats.lines = counted + u64::from(last_byte != b'\n');
    if let Some(e) = corrupt {
        emit(unreadable(splitter.line, splitter.offset, &e), &mut stats);
    }
    Ok(stats)
}

fn unreadable(line: u64, offset: u64, e: &io::Error) -> Message<'static> {
    Message {
        line,
        offset,
        bytes: &[],
        kind: MessageKind::Unreadable {
            detail: format!("unreadable compressed data: {e}"),
        },
    }
}

/// Builds the message for `bytes`, or `None` for a blank line.
fn message(line: u64, offset: u64, bytes: &[u8], skip_blank: bool) -> Option<Message<'_>> {
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
        offset,
        bytes,
        kind: MessageKind::Complete,
    })
}

/// The bytes of a message that spans read buffers.
struct Pending {
    buf: Vec<u8>,
    /// Line and input offset where the message starts.
    line: u64,
    offset: u64,
    /// A message grown past the limit, streamed on.
    stream: Option<Streamer>,
}

impl Pending {
    fn new() -> Self {
        Pending {
            buf: Vec::new(),
            line: 0,
            offset: 0,
            stream: None,
        }
    }

    fn is_empty(&self) -> bool {
        self.buf.is_empty() && self.stream.is_none()
    }

    /// Adds `part` to the message (starting it at `line`/`offset` when it is new), handing it
    /// to a [`Streamer`] once it grows past `max`. `counted` is how much of the message counts
    /// toward `max` with `part` added: all of it, except the blanks after a document's close,
    /// which are no part of it if it ends there (they are held until it is known whether it
    /// does, as the streamer holds the blanks after a container's closing bracket).
    fn append(
        &mut self,
        part: &[u8],
        line: u64,
        offset: u64,
        max: usize,
        counted: u64,
        f: &mut dyn FnMut(Message<'_>),
    ) {
        if self.is_empty() {
            self.line = line;
            self.offset = offset;
        }
        if let Some(stream) = &mut self.stream {
            stream.feed(part, f);
        } else if counted <= max as u64 {
            self.buf.extend_from_slice(part);
        } else {
            let head = std::mem::take(&mut self.buf);
            self.stream = Some(Streamer::start(max, self.line, self.offset, head, part, f));
        }
    }

    /// Hands on the message, ending with `tail` (in the current chunk), and clears it.
    fn finish(
        &mut self,
        tail: &[u8],
        max: usize,
        skip_blank: bool,
        f: &mut dyn FnMut(Message<'_>),
    ) {
        if let Some(mut stream) = self.stream.take() {
            stream.feed(tail, f);
            stream.finish(f);
        } else if self.buf.len() + tail.len() > max {
            let head = std::mem::take(&mut self.buf);
            Streamer::start(max, self.line, self.offset, head, tail, f).finish(f);
        } else {
            self.buf.extend_from_slice(tail);
            if let Some(m) = message(self.line, self.offset, &self.buf, skip_blank) {
                f(m);
            }
        }
        self.buf.clear();
    }
}

/// Splits a byte stream, fed in chunks of any size, into messages.
struct Splitter {
    layout: Layout,
    max: usize,
    /// Current line number.
    line: u64,
    /// Input offset of the next byte fed.
    offset: u64,
    pending: Pending,
    /// Documents: whether a document is in progress, and its scanning state.
    active: bool,
    start_line: u64,
    start_offset: u64,
    depth: usize,
    in_string: bool,
    escaped: bool,
    scalar: bool,
    /// Whether the document is a string on its own.
    string_doc: bool,
    /// The document's brackets closed: it ends there unless what follows goes on with it.
    closing: bool,
    /// Length of the document where its brackets closed.
    closed_len: u64,
    /// Length of the document so far.
    len: u64,
    /// Whether the input's first bytes (a byte-order mark) were looked at.
    started: bool,
}

impl Splitter {
    fn new(layout: Layout, max: usize) -> Self {
        Splitter {
            layout,
            max,
            line: 1,
            offset: 0,
            pending: Pending::new(),
            active: false,
            start_line: 1,
            start_offset: 0,
            depth: 0,
            in_string: false,
            escaped: false,
            scalar: false,
            string_doc: false,
            closing: false,
            closed_len: 0,
            len: 0,
            started: false,
        }
    }

    fn feed(&mut self, mut chunk: &[u8], f: &mut dyn FnMut(Message<'_>)) {
        if !self.started {
            // A byte-order mark is skipped (the first chunk holds the whole of it: the layout
            // was told from at least that many bytes).
            self.started = true;
            if let Some(rest) = chunk.strip_prefix(&[0xef, 0xbb, 0xbf]) {
                chunk = rest;
                self.offset += 3;
            }
        }
        match self.layout {
            Layout::JsonLines => self.feed_lines(chunk, f),
            Layout::Documents => self.feed_documents(chunk, f),
        }
        self.offset += chunk.len() as u64;
    }

    fn finish(&mut self, f: &mut dyn FnMut(Message<'_>)) {
        match self.layout {
            Layout::JsonLines => {
                if !self.pending.is_empty() {
                    self.pending.finish(&[], self.max, true, f);
                }
            }
            Layout::Documents => {
                if self.closing {
                    self.end_closed(&[], f);
                } else if self.active {
                    self.end_document(&[], f);
                }
            }
        }
    }

    fn feed_lines(&mut self, chunk: &[u8], f: &mut dyn FnMut(Message<'_>)) {
        let mut pos = 0;
        while let Some(i) = memchr(b'\n', &chunk[pos..]) {
            let end = pos + i;
            let part = &chunk[pos..end];
            let offset = self.offset + pos as u64;
            if self.pending.is_empty() {
                if part.len() <= self.max {
                    if let Some(m) = message(self.line, offset, part, true) {
                        f(m);
                    }
                } else {
                    Streamer::start(self.max, self.line, offset, Vec::new(), part, f).finish(f);
                }
            } else {
                self.pending.finish(part, self.max, true, f);
            }
            self.line += 1;
            pos = end + 1;
        }
        if pos < chunk.len() {
            let counted = (self.pending.buf.len() + chunk.len() - pos) as u64;
            self.pending.append(
                &chunk[pos..],
                self.line,
                self.offset + pos as u64,
                self.max,
                counted,
                f,
            );
        }
    }

    /// Ends the document in progress, whose last part in the current chunk is `tail`.
    fn end_document(&mut self, tail: &[u8], f: &mut dyn FnMut(Message<'_>)) {
        self.active = false;
        self.closing = false;
        if self.pending.is_empty() {
            if tail.len() <= self.max {
                if let Some(m) = message(self.start_line, self.start_offset, tail, false) {
                    f(m);
                }
            } else {
                Streamer::start(
                    self.max,
                    self.start_line,
                    self.start_offset,
                    Vec::new(),
                    tail,
                    f,
                )
                .finish(f);
            }
        } else {
            self.pending.finish(tail, self.max, false, f);
        }
    }

    /// Starts a document with the byte at `i` of the current chunk.
    fn start_document(&mut self, i: usize) {
        self.active = true;
        self.closing = false;
        self.start_line = self.line;
        self.start_offset = self.offset + i as u64;
        self.depth = 0;
        self.in_string = false;
        self.escaped = false;
        self.scalar = false;
        self.string_doc = false;
        self.len = 0;
    }

    fn feed_documents(&mut self, chunk: &[u8], f: &mut dyn FnMut(Message<'_>)) {
        let mut i = 0;
        // Start of the current document's bytes within this chunk.
        let mut seg = 0;
        while i < chunk.len() {
            let b = chunk[i];
            if self.closing {
                match b {
                    b'\n' => self.line += 1,
                    b' ' | b'\t' | b'\r' => {}
                    b']' | b'}' => self.closed_len = self.len + (i + 1 - seg) as u64,
                    b'{' | b'[' => {
                        // The document ended where it closed; the byte starts the next one.
                        self.end_closed(&chunk[seg..i], f);
                        continue;
                    }
                    // Anything else after the document closed (a comma, junk): its brackets were
                    // not matched (a broken container), and it goes on with this byte.
                    _ => {
                        self.closing = false;
                        continue;
                    }
                }
                i += 1;
                continue;
            }
            if !self.active {
                match b {
                    b'\n' => self.line += 1,
                    b' ' | b'\t' | b'\r' => {}
                    _ => {
                        self.start_document(i);
                        seg = i;
                        match b {
                            b'{' | b'[' => self.depth = 1,
                            b'"' => {
                                self.in_string = true;
                                self.string_doc = true;
                            }
                            b'}' | b']' => {
                                // A stray closing bracket is a document of its own (rejected).
                                self.end_document(&chunk[seg..=i], f);
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
                    b' ' | b'\t' | b'\r' | b'\n' | b'{' | b'[' | b'}' | b']' | b'"' | b','
                ) {
                    // The delimiter belongs to what follows: look at it again.
                    self.end_document(&chunk[seg..i], f);
                } else {
                    i += 1;
                }
                continue;
            }
            if self.in_string {
                if self.escaped {
                    self.escaped = false;
                    if b != b'\n' {
                        i += 1;
                        continue;
                    }
                }
                match memchr3(b'"', b'\\', b'\n', &chunk[i..]) {
                    None => i = chunk.len(),
                    Some(p) => {
                        let at = i + p;
                        i = at + 1;
                        match chunk[at] {
                            b'\\' => self.escaped = true,
                            b'\n' => {
                                // A line break ends a string (JSON strings cannot hold one).
                                self.in_string = false;
                                self.line += 1;
                                if self.string_doc {
                                    self.end_document(&chunk[seg..at], f);
                                }
                            }
                            _ => {
                                self.in_string = false;
                                if self.string_doc {
                                    self.end_document(&chunk[seg..=at], f);
                                }
                            }
                        }
                    }
                }
                continue;
            }
            match b {
                b'"' => self.in_string = true,
                b'{' | b'[' => self.depth += 1,
                b'}' | b']' => {
                    self.depth = self.depth.saturating_sub(1);
                    if self.depth == 0 {
                        self.closing = true;
                        self.closed_len = self.len + (i + 1 - seg) as u64;
                    }
                }
                b'\n' => self.line += 1,
                _ => {}
            }
            i += 1;
        }
        if self.active {
            let part = &chunk[seg..];
            self.len += part.len() as u64;
            // Blanks after the document's close count only if it goes on past them.
            let counted = if self.closing {
                self.closed_len
            } else {
                self.len
            };
            self.pending.append(
                part,
                self.start_line,
                self.start_offset,
                self.max,
                counted,
                f,
            );
        }
    }

    /// Ends the document whose brackets closed at its length `closed_len`; `rest` is its part
    /// in the current chunk, with the white space after the close (which is dropped).
    fn end_closed(&mut self, rest: &[u8], f: &mut dyn FnMut(Message<'_>)) {
        let closed = self.closed_len;
        let from_chunk = usize::try_from(closed.saturating_sub(self.len))
            .unwrap_or(usize::MAX)
            .min(rest.len());
        if closed < self.len {
            match &mut self.pending.stream {
                None => self
                    .pending
                    .buf
                    .truncate(usize::try_from(closed).unwrap_or(usize::MAX)),
                // What followed the close in earlier chunks was streamed on already.
                Some(stream) => stream.end_at(closed),
            }
        }
        self.end_document(&rest[..from_chunk], f);
    }
}

/// How many bytes of a streamed container are gathered before a piece of whole elements is
/// handed on, for a message limit of `max`.
fn piece_bytes(max: usize) -> usize {
    (max / 2).clamp(1, 16 << 20)
}

/// Streams a message (a line or a document) too long to hold. A container (a JSON array, or an
/// object whose first member is a `Records` array) is handed on in pieces of whole elements,
/// each wrapped in brackets as an array of its own, so that no record is lost to the size of
/// its container; an element itself too long, or anything else, is one oversize message that
/// keeps its first [`KEPT_BYTES`], its full size and its offset.
///
/// The container ends where the decoder would end it: a delivery's other members (after its
/// `Records` array) hold no record, and what follows the container in the message (another
/// document, junk) is a message of its own, as the decoder reads the rest of a message.
struct Streamer {
    max: usize,
    state: StreamState,
    /// Bytes not handed on yet (elements mode: from an element boundary on).
    buf: Vec<u8>,
    /// Line and input offset of `buf[0]`.
    line: u64,
    offset: u64,
    /// How the container's elements open (their first keys, learned from whole ones; a few
    /// kinds at most).
    shapes: Vec<Vec<u8>>,
    /// Whether the container is a delivery (its elements sit one level deeper).
    delivery: bool,
    /// How many bytes `buf` holds when whole elements are next looked for.
    next_cut: usize,
    /// How many bytes of the message the streamer was given.
    fed: u64,
}

enum StreamState {
    /// Not a container: one oversize message of `size` bytes; `buf` keeps the first bytes.
    Whole { size: u64 },
    /// Gathering whole elements.
    Elements,
    /// An element too long to hold: `buf` keeps its first bytes.
    Element {
        size: u64,
        line: u64,
        offset: u64,
        matcher: Matcher,
    },
    /// Past a delivery's `Records` array: its other members, up to its closing brace.
    Members(Members),
    /// Past the container: what follows it in the message, from its first byte that is not
    /// white space, gathered in `buf` as a message of its own, or streamed on once it is too long
    /// to hold.
    After(Option<Box<Streamer>>),
}

impl Streamer {
    /// Starts streaming a message at `line`/`offset` whose bytes so far are `head` and then
    /// `part`.
    fn start(
        max: usize,
        line: u64,
        offset: u64,
        mut head: Vec<u8>,
        part: &[u8],
        f: &mut dyn FnMut(Message<'_>),
    ) -> Self {
        let mut s = Streamer {
            max,
            state: StreamState::Whole { size: 0 },
            buf: Vec::new(),
            line,
            offset,
            shapes: Vec::new(),
            delivery: false,
            next_cut: piece_bytes(max),
            fed: (head.len() + part.len()) as u64,
        };
        // The first bytes tell a container; up to the limit of them are looked at.
        let fill = max.saturating_sub(head.len()).min(part.len());
        head.extend_from_slice(&part[..fill]);
        s.begin(&head, f);
        drop(head);
        s.take(&part[fill..], f);
        s
    }

    /// Looks at the message's first bytes: where a container's elements start.
    fn begin(&mut self, prefix: &[u8], f: &mut dyn FnMut(Message<'_>)) {
        use crate::event::scan::{skip_ws_from, string_scan};
        let start = skip_ws_from(prefix, 0);
        let elements = match prefix.get(start) {
            Some(b'[') => Some(start + 1),
            Some(b'{') => {
                let key = skip_ws_from(prefix, start + 1);
                let (key_end, closed) = if prefix.get(key) == Some(&b'"') {
                    string_scan(prefix, key)
                } else {
                    (key, false)
                };
                let colon = skip_ws_from(prefix, key_end);
                let open = skip_ws_from(prefix, colon + 1);
                (closed
                    && &prefix[key..key_end] == b"\"Records\""
                    && prefix.get(colon) == Some(&b':')
                    && prefix.get(open) == Some(&b'['))
                .then(|| {
                    self.delivery = true;
                    open + 1
                })
            }
            _ => None,
        };
        match elements {
            Some(at) => {
                self.state = StreamState::Elements;
                self.line += memchr::memchr_iter(b'\n', &prefix[..at]).count() as u64;
                self.offset += at as u64;
                self.take(&prefix[at..], f);
            }
            None => {
                self.state = StreamState::Whole {
                    size: prefix.len() as u64,
                };
                self.buf = prefix[..prefix.len().min(KEPT_BYTES)].to_vec();
            }
        }
    }

    /// Goes on with the next bytes of the message.
    fn feed(&mut self, part: &[u8], f: &mut dyn FnMut(Message<'_>)) {
        self.fed += part.len() as u64;
        self.take(part, f);
    }

    fn take(&mut self, mut part: &[u8], f: &mut dyn FnMut(Message<'_>)) {
        while !part.is_empty() {
            match &mut self.state {
                StreamState::Whole { size } => {
                    *size += part.len() as u64;
                    let room = KEPT_BYTES.saturating_sub(self.buf.len());
                    self.buf.extend_from_slice(&part[..part.len().min(room)]);
                    return;
                }
                StreamState::Element {
                    size,
                    matcher,
                    line,
                    offset,
                } => match matcher.boundary(part) {
                    None => {
                        *size += part.len() as u64;
                        let room = KEPT_BYTES.saturating_sub(self.buf.len());
                        self.buf.extend_from_slice(&part[..part.len().min(room)]);
                        return;
                    }
                    Some(at) => {
                        *size += at as u64;
                        let room = KEPT_BYTES.saturating_sub(self.buf.len());
                        self.buf.extend_from_slice(&part[..at.min(room)]);
                        f(Message {
                            line: *line,
                            offset: *offset,
                            bytes: &self.buf,
                            kind: MessageKind::Oversize {
                                size: *size,
                                limit: self.max,
                            },
                        });
                        self.line = *line + matcher.newlines;
                        self.offset = *offset + *size;
                        self.buf.clear();
                        self.state = StreamState::Elements;
                        self.next_cut = piece_bytes(self.max);
                        // The boundary itself starts the elements that follow.
                        part = &part[at..];
                    }
                },
                StreamState::Members(members) => match members.end(part) {
                    None => {
                        self.skip(part.len(), part);
                        return;
                    }
                    Some(at) => {
                        self.skip(at, part);
                        self.state = StreamState::After(None);
                        part = &part[at..];
                    }
                },
                StreamState::After(Some(next)) => {
                    next.feed(part, f);
                    return;
                }
                StreamState::After(None) => {
                    if self.buf.is_empty() {
                        // White space before what follows is no part of it.
                        let blank = part
                            .iter()
                            .take_while(|&&b| crate::event::scan::is_ws(b))
                            .count();
                        self.skip(blank, part);
                        part = &part[blank..];
                        if part.is_empty() {
                            return;
                        }
                    }
                    // Blanks at the end count only once something follows them: the message
                    // ends without them (the blanks after a document's close, read in the same
                    // chunk, are held until the document is known to end there).
                    let is_ws = crate::event::scan::is_ws;
                    let counted = match part.iter().rposition(|&b| !is_ws(b)) {
                        Some(last) => self.buf.len() + last + 1,
                        None => self
                            .buf
                            .iter()
                            .rposition(|&b| !is_ws(b))
                            .map_or(0, |l| l + 1),
                    };
                    if counted <= self.max {
                        self.buf.extend_from_slice(part);
                    } else {
                        let head = std::mem::take(&mut self.buf);
                        let next = Streamer::start(self.max, self.line, self.offset, head, part, f);
                        self.state = StreamState::After(Some(Box::new(next)));
                    }
                    return;
                }
                StreamState::Elements => {
                    // Pieces are cut when the bytes reach set sizes, so that where they are cut
                    // depends on the content only.
                    let take = part
                        .len()
                        .min(self.next_cut.saturating_sub(self.buf.len()).max(1));
                    self.buf.extend_from_slice(&part[..take]);
                    part = &part[take..];
                    if self.buf.len() >= self.next_cut {
                        self.cut(f);
                    }
                }
            }
        }
    }

    /// Walks the elements gathered so far (elements mode): where a piece of whole elements can be
    /// cut (0 for nowhere), and where the container ends, when it does in `buf`. `last` says
    /// that `buf` holds the rest of the message.
    fn walk(&mut self, last: bool) -> (usize, Closing) {
        use crate::event::scan::{find_signature, signature, skip_ws_from};
        let buf = &self.buf;
        let mut pos = skip_ws_from(buf, 0);
        let mut cut = 0;
        while pos < buf.len() {
            match buf[pos] {
                b',' => {
                    pos = skip_ws_from(buf, pos + 1);
                    continue;
                }
                b']' => match closes(buf, pos, self.delivery, last) {
                    Some(true) => return (cut, Closing::At(pos)),
                    None => return (cut, Closing::Undecided),
                    Some(false) => {}
                },
                _ => {}
            }
            let ext = element_extent(buf, pos, self.delivery, last);
            let own = signature(&buf[pos..ext.end]);
            if ext.complete {
                if let Some(sig) = own
                    && self.shapes.len() < 8
                    && !self.shapes.iter().any(|s| s == sig)
                {
                    self.shapes.push(sig.to_vec());
                }
                pos = skip_ws_from(buf, ext.next);
                // Pieces are cut before an object only: junk split at a comma stays whole.
                if signature(&buf[pos..]).is_some() {
                    cut = pos;
                }
                continue;
            }
            if ext.undecided {
                return (cut, Closing::Undecided);
            }
            // Broken, or cut by the end of the bytes: the next element that opens like the
            // others (or like this one) starts a new piece.
            let next = self
                .shapes
                .iter()
                .map(Vec::as_slice)
                .chain(own)
                .filter_map(|sig| find_signature(buf, pos + 1, sig))
                .min();
            match next {
                Some(next) => {
                    cut = next;
                    pos = next;
                }
                None => break,
            }
        }
        (cut, Closing::No)
    }

    /// Hands on the elements before the container's closing bracket at `at` of `buf`, and goes
    /// on past the bracket: with a delivery's other members, then with what follows.
    fn close(&mut self, at: usize, f: &mut dyn FnMut(Message<'_>)) {
        let separators = |b: &u8| *b == b',' || crate::event::scan::is_ws(*b);
        if self.buf[..at].iter().all(separators) {
            self.discard(at);
        } else {
            self.emit_piece(at, f);
        }
        self.discard(1);
        self.state = if self.delivery {
            StreamState::Members(Members::default())
        } else {
            StreamState::After(None)
        };
        let rest = std::mem::take(&mut self.buf);
        self.take(&rest, f);
    }

    /// Hands on the whole elements gathered so far (elements mode).
    fn cut(&mut self, f: &mut dyn FnMut(Message<'_>)) {
        let (cut, closing) = self.walk(false);
        let piece = piece_bytes(self.max);
        match closing {
            Closing::At(at) => return self.close(at, f),
            Closing::Undecided if cut == 0 => {
                // The bytes after a closing bracket tell whether it ends the container.
                self.next_cut = self.buf.len() + piece;
                return;
            }
            Closing::Undecided | Closing::No => {}
        }
        if cut == 0 {
            // Separators before the first element hold no record: they are no piece of their own.
            let lead = self
                .buf
                .iter()
                .take_while(|&&b| b == b',' || crate::event::scan::is_ws(b))
                .count();
            self.discard(lead);
        }
        if cut > 0 {
            self.emit_piece(cut, f);
            self.next_cut = self.buf.len() + piece;
        } else if self.buf.len() <= self.max {
            self.next_cut = self.buf.len() + piece;
        } else {
            // One element longer than the limit: keep its first bytes, find where it ends.
            let mut matcher = Matcher::default();
            if let Some(at) = matcher.boundary(&self.buf) {
                // The matcher ends it earlier than the element scan did (a stray closing
                // bracket): hand on what came before, the decoder sorts it out.
                self.emit_piece(at.max(1), f);
                self.next_cut = self.buf.len() + piece;
                return;
            }
            let size = self.buf.len() as u64;
            self.buf.truncate(KEPT_BYTES);
            self.state = StreamState::Element {
                size,
                line: self.line,
                offset: self.offset,
                matcher,
            };
        }
    }

    /// Ends a message held whole at `len` bytes from its start: what the streamer was fed past
    /// it (blanks after a document's close, read in the same chunks as the document) is no part
    /// of it. A container streamed in pieces leaves such blanks out at its end anyway.
    fn end_at(&mut self, len: u64) {
        let excess = self.fed.saturating_sub(len);
        if excess == 0 {
            return;
        }
        self.fed = len;
        match &mut self.state {
            StreamState::Whole { size } | StreamState::Element { size, .. } => {
                *size = size.saturating_sub(excess);
                let kept = usize::try_from(*size).unwrap_or(usize::MAX);
                self.buf.truncate(kept);
            }
            StreamState::Elements | StreamState::After(None) => {
                let kept = self
                    .buf
                    .len()
                    .saturating_sub(usize::try_from(excess).unwrap_or(usize::MAX));
                self.buf.truncate(kept);
            }
            StreamState::After(Some(next)) => next.end_at(next.fed.saturating_sub(excess)),
            StreamState::Members(_) => {}
        }
    }

    /// Goes past the first `n` bytes of `part` (not kept).
    fn skip(&mut self, n: usize, part: &[u8]) {
        self.line += memchr::memchr_iter(b'\n', &part[..n]).count() as u64;
        self.offset += n as u64;
    }

    /// Drops the first `n` bytes of `buf` (no record among them).
    fn discard(&mut self, n: usize) {
        self.line += memchr::memchr_iter(b'\n', &self.buf[..n]).count() as u64;
        self.offset += n as u64;
        self.buf.drain(..n);
    }

    /// Hands on `buf[..cut]` as a piece, wrapped as an array.
    fn emit_piece(&mut self, cut: usize, f: &mut dyn FnMut(Message<'_>)) {
        let mut bytes = Vec::with_capacity(cut + 2);
        bytes.push(b'[');
        bytes.extend_from_slice(&self.buf[..cut]);
        bytes.push(b']');
        f(Message {
            line: self.line,
            offset: self.offset.saturating_sub(1),
            bytes: &bytes,
            kind: MessageKind::Complete,
        });
        self.line += memchr::memchr_iter(b'\n', &self.buf[..cut]).count() as u64;
        self.offset += cut as u64;
        self.buf.drain(..cut);
    }

    /// Hands on the rest at the end of the message.
    fn finish(mut self, f: &mut dyn FnMut(Message<'_>)) {
        if matches!(self.state, StreamState::Elements)
            && let (_, Closing::At(at)) = self.walk(true)
        {
            self.close(at, f);
        }
        match self.state {
            // A delivery's members hold no record.
            StreamState::Members(_) => {}
            StreamState::After(Some(next)) => next.finish(f),
            StreamState::After(None) => {
                let mut end = self.buf.len();
                while end > 0 && crate::event::scan::is_ws(self.buf[end - 1]) {
                    end -= 1;
                }
                if end > 0 {
                    f(Message {
                        line: self.line,
                        offset: self.offset,
                        bytes: &self.buf[..end],
                        kind: MessageKind::Complete,
                    });
                }
            }
            StreamState::Whole { size } => f(Message {
                line: self.line,
                offset: self.offset,
                bytes: &self.buf,
                kind: MessageKind::Oversize {
                    size,
                    limit: self.max,
                },
            }),
            StreamState::Element {
                size, line, offset, ..
            } => f(Message {
                line,
                offset,
                bytes: &self.buf,
                kind: MessageKind::Oversize {
                    size,
                    limit: self.max,
                },
            }),
            StreamState::Elements => {
                // The container's own end (`]`, and `}` for a delivery) is left out: the piece
                // gets brackets of its own.
                let mut end = self.buf.len();
                let trim = |end: &mut usize, buf: &[u8]| {
                    while *end > 0 && crate::event::scan::is_ws(buf[*end - 1]) {
                        *end -= 1;
                    }
                };
                trim(&mut end, &self.buf);
                if self.delivery && end > 0 && self.buf[end - 1] == b'}' {
                    end -= 1;
                    trim(&mut end, &self.buf);
                }
                if end > 0 && self.buf[end - 1] == b']' {
                    end -= 1;
                }
                // Separators alone (the comma after an element too long to hold) are no piece.
                let separators = |b: &u8| *b == b',' || crate::event::scan::is_ws(*b);
                if !self.buf[..end].iter().all(separators) {
                    self.buf.truncate(end);
                    self.emit_piece(end, f);
                }
            }
        }
    }
}

/// Where a container being streamed ends.
enum Closing {
    /// At its closing bracket, at this position of the gathered bytes.
    At(usize),
    /// Not within the gathered bytes.
    No,
    /// Perhaps at a closing bracket that the bytes after it will tell.
    Undecided,
}

/// Whether the `]` at `at` of `buf` closes the container, as the decoder tells (the end of the
/// message or another document follows; for a delivery's `Records`, also the delivery's `}` or
/// its next member); `None` when the bytes that tell are not gathered yet and `last` does not
/// say that the message ends with `buf`.
fn closes(buf: &[u8], at: usize, delivery: bool, last: bool) -> Option<bool> {
    use crate::event::scan::skip_ws_from;
    let next = skip_ws_from(buf, at + 1);
    match buf.get(next) {
        None => last.then_some(true),
        Some(b'{' | b'[') => Some(true),
        Some(b'}') => Some(delivery),
        Some(b',') if delivery => match buf.get(skip_ws_from(buf, next + 1)) {
            None => last.then_some(false),
            Some(b) => Some(*b == b'"'),
        },
        Some(_) => Some(false),
    }
}

/// The extent of an element in gathered bytes, as the streamer sees it.
struct ElementExtent {
    end: usize,
    next: usize,
    /// Whether the element is whole: a comma follows it (`next` is past it), or the
    /// container's closing bracket (`next` is at it).
    complete: bool,
    /// Whether a closing bracket follows it that the bytes after it will tell about.
    undecided: bool,
}

/// Where the element at `start` of `buf` ends: its value and any junk up to the comma or the
/// closing bracket (see [`closes`]) after it. A closing bracket that does not close the
/// container (followed by a comma and an object, say) was not matched and is junk.
fn element_extent(buf: &[u8], start: usize, delivery: bool, last: bool) -> ElementExtent {
    use crate::event::scan::{skip_ws_from, value_end};
    let incomplete = ElementExtent {
        end: buf.len(),
        next: buf.len(),
        complete: false,
        undecided: false,
    };
    let Some(mut end) = value_end(buf, start) else {
        return incomplete;
    };
    loop {
        let q = skip_ws_from(buf, end);
        let whole = |next| ElementExtent {
            end,
            next,
            complete: true,
            undecided: false,
        };
        match buf.get(q) {
            None => return incomplete,
            Some(b',') => return whole(q + 1),
            Some(b']') => match closes(buf, q, delivery, last) {
                Some(true) => return whole(q),
                None => {
                    return ElementExtent {
                        undecided: true,
                        ..incomplete
                    };
                }
                Some(false) => end = q + 1,
            },
            Some(_) => match value_end(buf, q) {
                Some(e) => end = e,
                None => return incomplete,
            },
        }
    }
}

/// Scans the members a delivery has after its `Records` array (`,"key":value` each), fed in
/// parts, for the brace that ends the delivery, as the decoder reads them.
#[derive(Default)]
struct Members {
    step: MemberStep,
    depth: usize,
    in_string: bool,
    escaped: bool,
}

#[derive(Default, Clone, Copy, PartialEq)]
enum MemberStep {
    /// Before a comma (another member) or the closing brace.
    #[default]
    Separator,
    Key,
    Colon,
    /// Before the value.
    Value,
    /// In a string, object or array value (`depth` deep).
    Nested,
    /// In a number or another bare word.
    Scalar,
}

impl Members {
    /// Scans `bytes`: where what follows the delivery starts in them (past its closing brace,
    /// or at the first byte that is no member), if it does.
    fn end(&mut self, bytes: &[u8]) -> Option<usize> {
        use crate::event::scan::is_ws;
        let mut i = 0;
        while i < bytes.len() {
            let b = bytes[i];
            if self.in_string {
                // A line break ends a string, as in the decoder's scan.
                if self.escaped {
                    self.escaped = false;
                    if b != b'\n' {
                        i += 1;
                        continue;
                    }
                }
                match b {
                    b'\\' => self.escaped = true,
                    b'"' | b'\n' => {
                        self.in_string = false;
                        self.step = match self.step {
                            MemberStep::Key => MemberStep::Colon,
                            MemberStep::Nested if self.depth == 0 => MemberStep::Separator,
                            step => step,
                        };
                    }
                    _ => {}
                }
                i += 1;
                continue;
            }
            match self.step {
                _ if is_ws(b) && self.step != MemberStep::Scalar => {}
                MemberStep::Separator => match b {
                    b',' => self.step = MemberStep::Key,
                    b'}' => return Some(i + 1),
                    _ => return Some(i),
                },
                MemberStep::Key if b == b'"' => self.in_string = true,
                MemberStep::Colon if b == b':' => self.step = MemberStep::Value,
                MemberStep::Key | MemberStep::Colon => return Some(i),
                MemberStep::Value => match b {
                    b'"' => {
                        self.in_string = true;
                        self.step = MemberStep::Nested;
                    }
                    b'{' | b'[' => {
                        self.depth = 1;
                        self.step = MemberStep::Nested;
                    }
                    // A stray closing bracket or comma is a value of one byte to the decoder.
                    b'}' | b']' | b',' => self.step = MemberStep::Separator,
                    _ => self.step = MemberStep::Scalar,
                },
                MemberStep::Nested => match b {
                    b'"' => self.in_string = true,
                    b'{' | b'[' => self.depth += 1,
                    b'}' | b']' => {
                        self.depth -= 1;
                        if self.depth == 0 {
                            self.step = MemberStep::Separator;
                        }
                    }
                    _ => {}
                },
                MemberStep::Scalar => {
                    if is_ws(b) || matches!(b, b'{' | b'[' | b'}' | b']' | b'"' | b',') {
                        // The delimiter belongs to what follows: look at it again.
                        self.step = MemberStep::Separator;
                        continue;
                    }
                }
            }
            i += 1;
        }
        None
    }
}

/// Finds the end of a value fed in parts: the first comma or closing bracket outside strings
/// and brackets.
#[derive(Default)]
struct Matcher {
    depth: usize,
    in_string: bool,
    escaped: bool,
    newlines: u64,
}

impl Matcher {
    /// Scans `bytes`; the position of the boundary, if it is in them.
    fn boundary(&mut self, bytes: &[u8]) -> Option<usize> {
        let mut i = 0;
        while i < bytes.len() {
            let b = bytes[i];
            if b == b'\n' {
                self.newlines += 1;
                self.in_string = false;
                self.escaped = false;
                i += 1;
                continue;
            }
            if self.in_string {
                if self.escaped {
                    self.escaped = false;
                } else if b == b'\\' {
                    self.escaped = true;
                } else if b == b'"' {
                    self.in_string = false;
                }
                i += 1;
                continue;
            }
            match b {
                b'"' => self.in_string = true,
                b'{' | b'[' => self.depth += 1,
                b'}' | b']' if self.depth > 0 => self.depth -= 1,
                b',' | b']' if self.depth == 0 => return Some(i),
                _ => {}
            }
            i += 1;
        }
        None
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
        // An array on one line is a line like any other.
        let (msgs, stats) = collect(b"[{\"a\":1}]\n} junk 42 {\"b\"", 1000);
        assert_eq!(stats.layout, Layout::JsonLines);
        let got: Vec<_> = msgs.iter().map(|(l, b, _)| (*l, b.as_str())).collect();
        assert_eq!(got, [(1, "[{\"a\":1}]"), (2, "} junk 42 {\"b\"")]);
        // Over several lines it is a document; what follows it up to the next object or array
        // is taken as part of it (the decoder rejects it as junk).
        let (msgs, stats) = collect(b"[\n{\"a\":1}\n]\n} junk 42 {\"b\"", 1000);
        assert_eq!(stats.layout, Layout::Documents);
        let got: Vec<_> = msgs.iter().map(|(l, b, _)| (*l, b.as_str())).collect();
        assert_eq!(got, [(1, "[\n{\"a\":1}\n]\n} junk 42 {\"b\"")]);
        let (msgs, _) = collect(b"[\n{\"a\":1}\n] \n {\"b\":\n2}\n", 1000);
        let got: Vec<_> = msgs.iter().map(|(l, b, _)| (*l, b.as_str())).collect();
        assert_eq!(got, [(1, "[\n{\"a\":1}\n]"), (4, "{\"b\":\n2}")]);
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

    /// Told from the first bytes of an input, the layout is the one told from all of it, or
    /// none yet: never an answer that the bytes still to come would change.
    #[test]
    fn the_layout_told_from_a_prefix_is_the_final_one() {
        let junk = format!("  \"pad\": \"{}\",\n", "x".repeat(40));
        let inputs = [
            format!("[\n{}{{\"a\":1}}\n{{\"b\":2}}\n", junk.repeat(3)),
            format!("[\n{}]\n", junk.repeat(3)),
            format!("{{\n{}\n", junk.repeat(20)),
            "{\"a\":\n1}\n{\"b\":2}\n".to_owned(),
            "{\"a\":1}\n{\"b\":2}\n".to_owned(),
            "[1,\n2\n".to_owned(),
            "\u{feff}[\n  x\n{}\n".to_owned(),
        ];
        for input in &inputs {
            let bytes = input.as_bytes();
            let settled = settled_layout(bytes);
            for end in 0..=bytes.len() {
                if let Some(layout) = sniff_layout(&bytes[..end], false) {
                    assert_eq!(layout, settled, "{input:?} told at {end}");
                }
            }
        }
        assert_eq!(settled_layout(inputs[0].as_bytes()), Layout::JsonLines);
        assert_eq!(settled_layout(inputs[1].as_bytes()), Layout::Documents);
    }

    /// Documents of the limit's length and around it, and what follows a streamed delivery,
    /// each followed by blanks: the same messages, whole or oversize, however the bytes are cut.
    #[test]
    fn blanks_after_a_document_do_not_count_toward_the_limit() {
        const MAX: usize = 40;
        let sized = |n: usize| format!("{{\"p\": \"{}\"}}", "x".repeat(n - 9));
        let record = format!("{{\"agent_id\": \"{}\"}}", "a".repeat(60));
        let mut input = String::new();
        for n in [MAX - 1, MAX, MAX + 1] {
            input += &format!("{}\n \r\n\t", sized(n));
            input += &format!("{{\"Records\":[{record}]}} x{}\n  \n", sized(n - 1));
        }
        input += &sized(MAX);
        input += "\n\n";
        let input = input.as_bytes();
        let split = |size: usize| {
            let mut out = Vec::new();
            let mut s = Splitter::new(Layout::Documents, MAX);
            for chunk in input.chunks(size) {
                s.feed(chunk, &mut |m| out.push((m.line, m.bytes.to_vec(), m.kind)));
            }
            s.finish(&mut |m| out.push((m.line, m.bytes.to_vec(), m.kind)));
            out
        };
        let whole = split(input.len());
        let complete = |n: usize| {
            whole
                .iter()
                .filter(|m| m.1.len() == n && m.2 == MessageKind::Complete)
                .count()
        };
        // The documents of MAX - 1 and MAX bytes, and what follows the deliveries when it is
        // no longer than MAX, are whole; the rest is oversize.
        assert_eq!(complete(MAX - 1), 2, "{whole:?}");
        assert_eq!(complete(MAX), 3, "{whole:?}");
        for size in 1..input.len() {
            assert_eq!(split(size), whole, "chunk size {size}");
        }
    }

    #[test]
    fn chunking_does_not_change_documents() {
        // Junk after a document goes with it up to the next object or array; a string cut by a
        // line break ends there.
        let input: &[u8] = b"{\n \"a\": [1, {\"b\": \"x\\\"y\"}],\n \"c\": \"\\\\\"\n}\n  [\n]\n\"s\" 7 {\"t\": \"cut\n}\n[1]\n";
        let mut whole = Vec::new();
        let mut s = Splitter::new(Layout::Documents, 1000);
        s.feed(input, &mut |m| whole.push((m.line, m.bytes.to_vec())));
        s.finish(&mut |m| whole.push((m.line, m.bytes.to_vec())));
        let lines: Vec<_> = whole.iter().map(|(l, _)| *l).collect();
        assert_eq!(lines, [1, 5, 9]);
        assert_eq!(whole[2].1, b"[1]");
        for size in 1..input.len() {
            let mut parts = Vec::new();
            let mut s = Splitter::new(Layout::Documents, 1000);
            for chunk in input.chunks(size) {
                s.feed(chunk, &mut |m| parts.push((m.line, m.bytes.to_vec())));
            }
            s.finish(&mut |m| parts.push((m.line, m.bytes.to_vec())));
            assert_eq!(parts, whole, "chunk size {size}");
        }
    }
}
