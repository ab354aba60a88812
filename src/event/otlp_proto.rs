//! The protobuf encoding of a trace export request, read in place.
//!
//! `opentelemetry-proto`'s prost types allocate a string or a buffer for every key, value, name
//! and id of every span before the decoder looks at one of them. These types borrow them from the
//! message instead, reading the members the decoder uses with the semantics prost gives them (the
//! last of a repeated scalar wins, a repeated embedded message is merged, strings are UTF-8) and
//! checking the members it does not use as prost checks them (wire types, lengths, UTF-8).
//!
//! A message that is not plainly read here (attribute values that are arrays or key-value lists,
//! resource entity references, groups, a malformed varint, key or length, a wire type prost would
//! refuse) makes [`parse`] return `None`: the caller then decodes it with `opentelemetry-proto`'s
//! types, whose judgement (and error) stands. So what is read here is always what prost reads.

/// An `ExportTraceServiceRequest`.
#[derive(Debug, Default)]
pub(super) struct Request<'a> {
    pub resource_spans: Vec<ResourceSpans<'a>>,
}

/// The spans of one resource.
#[derive(Debug, Default)]
pub(super) struct ResourceSpans<'a> {
    pub resource: Option<Resource<'a>>,
    pub scope_spans: Vec<ScopeSpans<'a>>,
}

/// A resource: its attributes.
#[derive(Debug, Default)]
pub(super) struct Resource<'a> {
    pub attributes: Vec<KeyValue<'a>>,
}

/// The spans of one instrumentation scope.
#[derive(Debug, Default)]
pub(super) struct ScopeSpans<'a> {
    pub spans: Vec<Span<'a>>,
}

/// A span.
#[derive(Debug, Default)]
pub(super) struct Span<'a> {
    pub trace_id: &'a [u8],
    pub span_id: &'a [u8],
    pub parent_span_id: &'a [u8],
    pub name: &'a str,
    pub start_time_unix_nano: u64,
    pub end_time_unix_nano: u64,
    pub attributes: Vec<KeyValue<'a>>,
    pub status: Option<Status>,
}

/// A span's status: its code.
#[derive(Debug, Default)]
pub(super) struct Status {
    pub code: i32,
}

/// An attribute: its key, and its value when that is a string.
#[derive(Debug, Default)]
pub(super) struct KeyValue<'a> {
    pub key: &'a str,
    pub value: Option<&'a str>,
}

/// Why a message is not read in place (prost is asked instead).
#[derive(Debug)]
struct NotInPlace;

type Read<T> = Result<T, NotInPlace>;

/// The protobuf wire types.
const VARINT: u8 = 0;
const FIXED64: u8 = 1;
const LEN: u8 = 2;
const FIXED32: u8 = 5;

/// A cursor over one message's bytes.
struct Wire<'a> {
    buf: &'a [u8],
}

impl<'a> Wire<'a> {
    fn new(buf: &'a [u8]) -> Self {
        Wire { buf }
    }

    /// The next field: its number and wire type, `None` at the end of the message.
    fn field(&mut self) -> Read<Option<(u32, u8)>> {
        if self.buf.is_empty() {
            return Ok(None);
        }
        // A key is a 32-bit varint: the field number, then three bits of wire type.
        let key = u32::try_from(self.varint()?).map_err(|_| NotInPlace)?;
        if key >> 3 == 0 {
            return Err(NotInPlace);
        }
        Ok(Some((key >> 3, (key & 7) as u8)))
    }

    fn varint(&mut self) -> Read<u64> {
        let mut value = 0u64;
        for (i, &b) in self.buf.iter().enumerate().take(10) {
            // The tenth byte holds the top bit of 64 only.
            if i == 9 && b > 1 {
                return Err(NotInPlace);
            }
            value |= u64::from(b & 0x7f) << (7 * i);
            if b < 0x80 {
                self.buf = &self.buf[i + 1..];
                return Ok(value);
            }
        }
        Err(NotInPlace)
    }

    fn take(&mut self, n: usize) -> Read<&'a [u8]> {
        if n > self.buf.len() {
            return Err(NotInPlace);
        }
        let (head, rest) = self.buf.split_at(n);
        self.buf = rest;
        Ok(head)
    }

    fn fixed64(&mut self, wire: u8) -> Read<u64> {
        expect(wire, FIXED64)?;
        let b = self.take(8)?;
        Ok(u64::from_le_bytes(b.try_into().map_err(|_| NotInPlace)?))
    }

    fn fixed32(&mut self, wire: u8) -> Read<()> {
        expect(wire, FIXED32)?;
        self.take(4).map(|_| ())
    }

    fn number(&mut self, wire: u8) -> Read<u64> {
        expect(wire, VARINT)?;
        self.varint()
    }

    fn bytes(&mut self, wire: u8) -> Read<&'a [u8]> {
        expect(wire, LEN)?;
        let n = usize::try_from(self.varint()?).map_err(|_| NotInPlace)?;
        self.take(n)
    }

    fn string(&mut self, wire: u8) -> Read<&'a str> {
        std::str::from_utf8(self.bytes(wire)?).map_err(|_| NotInPlace)
    }

    /// Skips a field the schema does not have, as prost does (groups are left to prost).
    fn skip(&mut self, wire: u8) -> Read<()> {
        match wire {
            VARINT => self.varint().map(|_| ()),
            FIXED64 => self.take(8).map(|_| ()),
            LEN => self.bytes(wire).map(|_| ()),
            FIXED32 => self.take(4).map(|_| ()),
            _ => Err(NotInPlace),
        }
    }
}

fn expect(wire: u8, want: u8) -> Read<()> {
    if wire == want {
        Ok(())
    } else {
        Err(NotInPlace)
    }
}

/// Reads an OTLP protobuf export request in place; `None` when prost must judge it.
pub(super) fn parse(bytes: &[u8]) -> Option<Request<'_>> {
    // A request not read in place is read by prost, whose error is the one reported.
    request(bytes).ok()
}

/// Hands `each` every field of the message `bytes`: the cursor, its number and wire type.
/// `each` reads the field's value (or skips it) before the next is read.
fn fields<'a>(
    bytes: &'a [u8],
    mut each: impl FnMut(&mut Wire<'a>, u32, u8) -> Read<()>,
) -> Read<()> {
    let mut w = Wire::new(bytes);
    while let Some((tag, wire)) = w.field()? {
        each(&mut w, tag, wire)?;
    }
    Ok(())
}

fn request(bytes: &[u8]) -> Read<Request<'_>> {
    let mut req = Request::default();
    fields(bytes, |w, tag, wire| {
        match tag {
            1 => req.resource_spans.push(resource_spans(w.bytes(wire)?)?),
            _ => w.skip(wire)?,
        }
        Ok(())
    })?;
    Ok(req)
}

fn resource_spans(bytes: &[u8]) -> Read<ResourceSpans<'_>> {
    let mut rs = ResourceSpans::default();
    fields(bytes, |w, tag, wire| {
        match tag {
            // A repeated embedded message is merged into the one before.
            1 => resource(w.bytes(wire)?, rs.resource.get_or_insert_default())?,
            2 => rs.scope_spans.push(scope_spans(w.bytes(wire)?)?),
            3 => w.string(wire).map(|_| ())?,
            _ => w.skip(wire)?,
        }
        Ok(())
    })?;
    Ok(rs)
}

fn resource<'a>(bytes: &'a [u8], into: &mut Resource<'a>) -> Read<()> {
    fields(bytes, |w, tag, wire| {
        match tag {
            1 => into.attributes.push(key_value(w.bytes(wire)?)?),
            2 => w.number(wire).map(|_| ())?,
            // Entity references: left to prost.
            3 => return Err(NotInPlace),
            _ => w.skip(wire)?,
        }
        Ok(())
    })
}

fn scope_spans(bytes: &[u8]) -> Read<ScopeSpans<'_>> {
    let mut ss = ScopeSpans::default();
    fields(bytes, |w, tag, wire| {
        match tag {
            1 => scope(w.bytes(wire)?)?,
            2 => ss.spans.push(span(w.bytes(wire)?)?),
            3 => w.string(wire).map(|_| ())?,
            _ => w.skip(wire)?,
        }
        Ok(())
    })?;
    Ok(ss)
}

/// Checks an instrumentation scope.
fn scope(bytes: &[u8]) -> Read<()> {
    fields(bytes, |w, tag, wire| match tag {
        1 | 2 => w.string(wire).map(|_| ()),
        3 => key_value(w.bytes(wire)?).map(|_| ()),
        4 => w.number(wire).map(|_| ()),
        _ => w.skip(wire),
    })
}

fn span(bytes: &[u8]) -> Read<Span<'_>> {
    let mut s = Span::default();
    fields(bytes, |w, tag, wire| {
        match tag {
            1 => s.trace_id = w.bytes(wire)?,
            2 => s.span_id = w.bytes(wire)?,
            3 => w.string(wire).map(|_| ())?,
            4 => s.parent_span_id = w.bytes(wire)?,
            5 => s.name = w.string(wire)?,
            6 | 10 | 12 | 14 => w.number(wire).map(|_| ())?,
            7 => s.start_time_unix_nano = w.fixed64(wire)?,
            8 => s.end_time_unix_nano = w.fixed64(wire)?,
            9 => s.attributes.push(key_value(w.bytes(wire)?)?),
            11 => event(w.bytes(wire)?)?,
            13 => link(w.bytes(wire)?)?,
            15 => status(w.bytes(wire)?, s.status.get_or_insert_default())?,
            16 => w.fixed32(wire)?,
            _ => w.skip(wire)?,
        }
        Ok(())
    })?;
    Ok(s)
}

/// Checks a span event.
fn event(bytes: &[u8]) -> Read<()> {
    fields(bytes, |w, tag, wire| match tag {
        1 => w.fixed64(wire).map(|_| ()),
        2 => w.string(wire).map(|_| ()),
        3 => key_value(w.bytes(wire)?).map(|_| ()),
        4 => w.number(wire).map(|_| ()),
        _ => w.skip(wire),
    })
}

/// Checks a span link.
fn link(bytes: &[u8]) -> Read<()> {
    fields(bytes, |w, tag, wire| match tag {
        1 | 2 => w.bytes(wire).map(|_| ()),
        3 => w.string(wire).map(|_| ()),
        4 => key_value(w.bytes(wire)?).map(|_| ()),
        5 => w.number(wire).map(|_| ()),
        6 => w.fixed32(wire),
        _ => w.skip(wire),
    })
}

fn status(bytes: &[u8], into: &mut Status) -> Read<()> {
    fields(bytes, |w, tag, wire| {
        match tag {
            2 => w.string(wire).map(|_| ())?,
            // An enum is an int32: the low 32 bits of the varint, as prost reads it.
            3 => into.code = w.number(wire)? as i32,
            _ => w.skip(wire)?,
        }
        Ok(())
    })
}

/// What an attribute's value holds so far (a repeated value is merged into the one before, so
/// the last member of its `oneof` wins).
enum Value<'a> {
    Absent,
    String(&'a str),
    Other,
}

fn key_value(bytes: &[u8]) -> Read<KeyValue<'_>> {
    let mut key = "";
    let mut value = Value::Absent;
    fields(bytes, |w, tag, wire| {
        match tag {
            1 => key = w.string(wire)?,
            2 => any_value(w.bytes(wire)?, &mut value)?,
            3 => w.number(wire).map(|_| ())?,
            _ => w.skip(wire)?,
        }
        Ok(())
    })?;
    let value = match value {
        Value::String(s) => Some(s),
        Value::Absent | Value::Other => None,
    };
    Ok(KeyValue { key, value })
}

fn any_value<'a>(bytes: &'a [u8], into: &mut Value<'a>) -> Read<()> {
    fields(bytes, |w, tag, wire| {
        *into = match tag {
            1 => Value::String(w.string(wire)?),
            2 | 3 | 8 => w.number(wire).map(|_| Value::Other)?,
            4 => w.fixed64(wire).map(|_| Value::Other)?,
            7 => w.bytes(wire).map(|_| Value::Other)?,
            // Arrays and key-value lists: left to prost.
            5 | 6 => return Err(NotInPlace),
            _ => return w.skip(wire),
        };
        Ok(())
    })
}
