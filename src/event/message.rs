//! A message of an input, as framing hands it to the decoder.

/// How much of an oversize message is kept: the first 64 KiB.
pub const KEPT_BYTES: usize = 64 << 10;

/// What a message holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MessageKind {
    /// The whole message.
    Complete,
    /// A message over the limit; `bytes` holds its first [`KEPT_BYTES`].
    Oversize {
        /// Full size in bytes.
        size: u64,
        /// The limit it exceeded.
        limit: usize,
    },
    /// Data that could not be read (e.g. corrupt compressed data); `bytes` is empty. The input
    /// ends here.
    Unreadable {
        /// What went wrong.
        detail: String,
    },
}

/// One message of an input.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Message<'a> {
    /// 1-based line number where the message starts.
    pub line: u64,
    /// Byte offset of the message from the start of the input (after decompression). For a
    /// piece of a container too long to hold, which is handed on wrapped in brackets of its
    /// own, the offset of the opening bracket it would have: the offset of an element is this
    /// offset plus the element's offset in the message either way.
    pub offset: u64,
    /// The message bytes (without the line break), or a prefix of them (see `kind`).
    pub bytes: &'a [u8],
    /// Whether the message is whole.
    pub kind: MessageKind,
}
