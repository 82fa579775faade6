//! Bounds-checked primitives of the Kafka wire format. No I/O.
//!
//! [`Reader`] never trusts a length or a count from the wire: before it allocates for an
//! array it checks the count against the bytes that remain (each element needs at least one
//! byte), so a 14-byte frame that claims 2^31 elements is an error, not an allocation.
//! Byte fields come out as zero-copy [`Bytes`] slices of the frame.
//!
//! [`Writer`] builds a response as a list of parts, so record bytes held by the log can be
//! appended by reference ([`Writer::put_shared`]) and written to the socket with a vectored
//! write instead of being copied into the response buffer.

use bytes::{BufMut, Bytes, BytesMut};
use std::fmt;

/// A decoding failure. Any of these closes the connection (or, for a body, answers
/// INVALID_REQUEST where the API allows it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DecodeError {
    /// The frame ended before the field did.
    Truncated { field: &'static str },
    /// A length or count is negative (where null is not allowed) or exceeds what remains.
    BadLength { field: &'static str, len: i64 },
    /// A varint ran over its maximum width.
    BadVarint,
    /// A string is not UTF-8.
    BadUtf8 { field: &'static str },
    /// (api_key, api_version) we do not serve.
    Unsupported { api_key: i16, api_version: i16 },
    /// Anything else that makes the request invalid.
    Invalid(&'static str),
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DecodeError::Truncated { field } => write!(f, "frame ends inside field {field}"),
            DecodeError::BadLength { field, len } => write!(f, "bad length {len} for {field}"),
            DecodeError::BadVarint => write!(f, "varint too long"),
            DecodeError::BadUtf8 { field } => write!(f, "field {field} is not UTF-8"),
            DecodeError::Unsupported {
                api_key,
                api_version,
            } => {
                write!(f, "unsupported api key {api_key} version {api_version}")
            }
            DecodeError::Invalid(why) => write!(f, "invalid request: {why}"),
        }
    }
}

impl std::error::Error for DecodeError {}

pub type DecodeResult<T> = Result<T, DecodeError>;

/// Refuse a version outside `min..=max` of `api_key` before decoding a body.
pub fn check_version(api_key: i16, api_version: i16, min: i16, max: i16) -> DecodeResult<()> {
    if api_version < min || api_version > max {
        return Err(DecodeError::Unsupported {
            api_key,
            api_version,
        });
    }
    Ok(())
}

/// Cursor over one frame. Cheap to clone (the frame is reference counted).
#[derive(Clone)]
pub struct Reader {
    buf: Bytes,
    pos: usize,
}

impl Reader {
    pub fn new(buf: Bytes) -> Self {
        Reader { buf, pos: 0 }
    }
    pub fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }
    pub fn position(&self) -> usize {
        self.pos
    }
    fn take(&mut self, n: usize, field: &'static str) -> DecodeResult<&[u8]> {
        if self.remaining() < n {
            return Err(DecodeError::Truncated { field });
        }
        let s = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }
    /// Zero-copy slice of the next `n` bytes.
    pub fn bytes_exact(&mut self, n: usize, field: &'static str) -> DecodeResult<Bytes> {
        if self.remaining() < n {
            return Err(DecodeError::Truncated { field });
        }
        let s = self.buf.slice(self.pos..self.pos + n);
        self.pos += n;
        Ok(s)
    }
    pub fn i8(&mut self, field: &'static str) -> DecodeResult<i8> {
        Ok(self.take(1, field)?[0] as i8)
    }
    pub fn bool(&mut self, field: &'static str) -> DecodeResult<bool> {
        Ok(self.i8(field)? != 0)
    }
    pub fn i16(&mut self, field: &'static str) -> DecodeResult<i16> {
        let b = self.take(2, field)?;
        Ok(i16::from_be_bytes([b[0], b[1]]))
    }
    pub fn i32(&mut self, field: &'static str) -> DecodeResult<i32> {
        let b = self.take(4, field)?;
        Ok(i32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }
    pub fn u32(&mut self, field: &'static str) -> DecodeResult<u32> {
        Ok(self.i32(field)? as u32)
    }
    pub fn i64(&mut self, field: &'static str) -> DecodeResult<i64> {
        let b = self.take(8, field)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(i64::from_be_bytes(a))
    }
    pub fn uuid(&mut self, field: &'static str) -> DecodeResult<[u8; 16]> {
        let b = self.take(16, field)?;
        let mut a = [0u8; 16];
        a.copy_from_slice(b);
        Ok(a)
    }
    /// Unsigned LEB128 varint (at most 5 bytes for 32 bits).
    pub fn uvarint(&mut self, field: &'static str) -> DecodeResult<u32> {
        let mut value: u32 = 0;
        for i in 0..5 {
            let byte = self.take(1, field)?[0];
            value |= u32::from(byte & 0x7f) << (7 * i);
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(DecodeError::BadVarint)
    }
    /// Zig-zag signed varlong (64 bits).
    pub fn varlong(&mut self, field: &'static str) -> DecodeResult<i64> {
        let mut raw: u64 = 0;
        for i in 0..10 {
            let byte = self.take(1, field)?[0];
            raw |= u64::from(byte & 0x7f) << (7 * i);
            if byte & 0x80 == 0 {
                return Ok(((raw >> 1) as i64) ^ -((raw & 1) as i64));
            }
        }
        Err(DecodeError::BadVarint)
    }

    fn checked_len(&self, len: i64, field: &'static str) -> DecodeResult<usize> {
        if len < 0 || len as u64 > self.remaining() as u64 {
            return Err(DecodeError::BadLength { field, len });
        }
        Ok(len as usize)
    }
    /// Length of a string or bytes field; `None` means null. Flexible versions use compact
    /// (uvarint length + 1) encoding, others an i16 (strings) or i32 (bytes) length.
    fn nullable_len(
        &mut self,
        flexible: bool,
        wide: bool,
        field: &'static str,
    ) -> DecodeResult<Option<usize>> {
        let len: i64 = if flexible {
            i64::from(self.uvarint(field)?) - 1
        } else if wide {
            i64::from(self.i32(field)?)
        } else {
            i64::from(self.i16(field)?)
        };
        if len == -1 {
            return Ok(None);
        }
        self.checked_len(len, field).map(Some)
    }
    pub fn nullable_string(
        &mut self,
        flexible: bool,
        field: &'static str,
    ) -> DecodeResult<Option<String>> {
        match self.nullable_len(flexible, false, field)? {
            None => Ok(None),
            Some(n) => {
                let b = self.take(n, field)?;
                std::str::from_utf8(b)
                    .map(|s| Some(s.to_owned()))
                    .map_err(|_| DecodeError::BadUtf8 { field })
            }
        }
    }
    pub fn string(&mut self, flexible: bool, field: &'static str) -> DecodeResult<String> {
        self.nullable_string(flexible, field)?
            .ok_or(DecodeError::BadLength { field, len: -1 })
    }
    /// Bytes field (i32 length, or compact) as a zero-copy slice; `None` is null.
    pub fn nullable_bytes(
        &mut self,
        flexible: bool,
        field: &'static str,
    ) -> DecodeResult<Option<Bytes>> {
        match self.nullable_len(flexible, true, field)? {
            None => Ok(None),
            Some(n) => self.bytes_exact(n, field).map(Some),
        }
    }
    pub fn bytes(&mut self, flexible: bool, field: &'static str) -> DecodeResult<Bytes> {
        self.nullable_bytes(flexible, field)?
            .ok_or(DecodeError::BadLength { field, len: -1 })
    }
    /// Array element count; `None` is a null array. The count is checked against the bytes
    /// remaining at `min_element_bytes` each, so it is safe to pass to `Vec::with_capacity`.
    pub fn nullable_array_len(
        &mut self,
        flexible: bool,
        min_element_bytes: usize,
        field: &'static str,
    ) -> DecodeResult<Option<usize>> {
        let len: i64 = if flexible {
            i64::from(self.uvarint(field)?) - 1
        } else {
            i64::from(self.i32(field)?)
        };
        if len == -1 {
            return Ok(None);
        }
        let need = (len as i128) * (min_element_bytes.max(1) as i128);
        if len < 0 || need > self.remaining() as i128 {
            return Err(DecodeError::BadLength { field, len });
        }
        Ok(Some(len as usize))
    }
    /// Read a tagged-field section (flexible versions only): uvarint count, then
    /// (tag, size, bytes) each, handing each (tag, data) to `f`.
    pub fn tagged_fields(
        &mut self,
        mut f: impl FnMut(u32, Bytes) -> DecodeResult<()>,
    ) -> DecodeResult<()> {
        let count = self.uvarint("tagged_fields")?;
        for _ in 0..count {
            let tag = self.uvarint("tag")?;
            let size = self.uvarint("tag_size")?;
            let n = self.checked_len(i64::from(size), "tag_data")?;
            let data = self.bytes_exact(n, "tag_data")?;
            f(tag, data)?;
        }
        Ok(())
    }

    /// A non-null array whose elements are decoded by `element`. Null is refused; the count
    /// is checked against the remaining bytes first (see [`Reader::nullable_array_len`]).
    pub fn array<T>(
        &mut self,
        flexible: bool,
        min_element_bytes: usize,
        field: &'static str,
        element: impl FnMut(&mut Reader) -> DecodeResult<T>,
    ) -> DecodeResult<Vec<T>> {
        self.nullable_array(flexible, min_element_bytes, field, element)?
            .ok_or(DecodeError::BadLength { field, len: -1 })
    }
    /// A nullable array whose elements are decoded by `element`; `None` is null.
    pub fn nullable_array<T>(
        &mut self,
        flexible: bool,
        min_element_bytes: usize,
        field: &'static str,
        mut element: impl FnMut(&mut Reader) -> DecodeResult<T>,
    ) -> DecodeResult<Option<Vec<T>>> {
        let Some(n) = self.nullable_array_len(flexible, min_element_bytes, field)? else {
            return Ok(None);
        };
        let mut items = Vec::with_capacity(n);
        for _ in 0..n {
            items.push(element(self)?);
        }
        Ok(Some(items))
    }
    /// Skip the tagged-field section of a struct if the version is flexible (unknown tags
    /// are ignored).
    pub fn tags_if(&mut self, flexible: bool) -> DecodeResult<()> {
        if flexible {
            self.tagged_fields(|_, _| Ok(()))?;
        }
        Ok(())
    }
}

/// Builds a response as a list of parts: bytes encoded here plus shared slices appended by
/// reference. [`Writer::finish`] returns the parts for a vectored write.
#[derive(Default)]
pub struct Writer {
    cur: BytesMut,
    parts: Vec<Bytes>,
    len: usize,
}

impl Writer {
    pub fn new() -> Self {
        Writer {
            cur: BytesMut::with_capacity(256),
            parts: Vec::new(),
            len: 0,
        }
    }
    /// Total bytes written so far, shared parts included.
    pub fn len(&self) -> usize {
        self.len
    }
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
    pub fn i8(&mut self, v: i8) {
        self.cur.put_i8(v);
        self.len += 1;
    }
    pub fn bool(&mut self, v: bool) {
        self.i8(i8::from(v));
    }
    pub fn i16(&mut self, v: i16) {
        self.cur.put_i16(v);
        self.len += 2;
    }
    pub fn i32(&mut self, v: i32) {
        self.cur.put_i32(v);
        self.len += 4;
    }
    pub fn u32(&mut self, v: u32) {
        self.cur.put_u32(v);
        self.len += 4;
    }
    pub fn i64(&mut self, v: i64) {
        self.cur.put_i64(v);
        self.len += 8;
    }
    pub fn uuid(&mut self, v: &[u8; 16]) {
        self.raw(v);
    }
    pub fn raw(&mut self, v: &[u8]) {
        self.cur.put_slice(v);
        self.len += v.len();
    }
    pub fn uvarint(&mut self, mut v: u32) {
        loop {
            let byte = (v & 0x7f) as u8;
            v >>= 7;
            if v == 0 {
                self.cur.put_u8(byte);
                self.len += 1;
                return;
            }
            self.cur.put_u8(byte | 0x80);
            self.len += 1;
        }
    }
    fn len_prefix(&mut self, len: Option<usize>, flexible: bool, wide: bool) {
        match (len, flexible) {
            (None, true) => self.uvarint(0),
            (Some(n), true) => self.uvarint(n as u32 + 1),
            (None, false) if wide => self.i32(-1),
            (None, false) => self.i16(-1),
            (Some(n), false) if wide => self.i32(n as i32),
            (Some(n), false) => self.i16(n as i16),
        }
    }
    pub fn string(&mut self, s: &str, flexible: bool) {
        self.len_prefix(Some(s.len()), flexible, false);
        self.raw(s.as_bytes());
    }
    pub fn nullable_string(&mut self, s: Option<&str>, flexible: bool) {
        match s {
            Some(s) => self.string(s, flexible),
            None => self.len_prefix(None, flexible, false),
        }
    }
    pub fn bytes(&mut self, b: &[u8], flexible: bool) {
        self.len_prefix(Some(b.len()), flexible, true);
        self.raw(b);
    }
    pub fn nullable_bytes(&mut self, b: Option<&[u8]>, flexible: bool) {
        match b {
            Some(b) => self.bytes(b, flexible),
            None => self.len_prefix(None, flexible, true),
        }
    }
    /// A bytes field made of shared chunks (record batches from the log or from the caller):
    /// one length prefix for their total length (i32, or compact), then each chunk by
    /// reference. Nothing is copied.
    pub fn bytes_shared(&mut self, chunks: &[Bytes], flexible: bool) {
        let total = chunks.iter().map(Bytes::len).sum();
        self.len_prefix(Some(total), flexible, true);
        for chunk in chunks {
            self.put_shared(chunk.clone());
        }
    }
    /// Array with each element written by `element` (i32 count, or compact).
    pub fn array<T>(
        &mut self,
        items: &[T],
        flexible: bool,
        mut element: impl FnMut(&mut Writer, &T),
    ) {
        self.len_prefix(Some(items.len()), flexible, true);
        for item in items {
            element(self, item);
        }
    }
    /// Nullable array; `None` is written as null.
    pub fn nullable_array<T>(
        &mut self,
        items: Option<&[T]>,
        flexible: bool,
        element: impl FnMut(&mut Writer, &T),
    ) {
        match items {
            Some(items) => self.array(items, flexible, element),
            None => self.len_prefix(None, flexible, true),
        }
    }
    /// An empty tagged-field section if the version is flexible (a hand-written codec emits
    /// no tagged field: every optional one it knows would hold its default, which Kafka omits).
    pub fn tags_if(&mut self, flexible: bool) {
        if flexible {
            self.uvarint(0);
        }
    }
    /// Append shared bytes by reference (no copy): record batches from the log.
    pub fn put_shared(&mut self, b: Bytes) {
        if b.is_empty() {
            return;
        }
        if !self.cur.is_empty() {
            self.parts.push(self.cur.split().freeze());
        }
        self.len += b.len();
        self.parts.push(b);
    }
    /// The encoded parts, in order. Their lengths sum to [`Writer::len`].
    pub fn finish(mut self) -> Vec<Bytes> {
        if !self.cur.is_empty() {
            self.parts.push(self.cur.split().freeze());
        }
        self.parts
    }
    /// Everything as one contiguous buffer (copies; for tests and small responses).
    pub fn finish_contiguous(self) -> Bytes {
        let parts = self.finish();
        let mut all = BytesMut::new();
        for p in parts {
            all.extend_from_slice(&p);
        }
        all.freeze()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uvarints_round_trip() {
        for v in [0u32, 1, 127, 128, 300, u32::MAX] {
            let mut w = Writer::new();
            w.uvarint(v);
            let mut r = Reader::new(w.finish_contiguous());
            assert_eq!(r.uvarint("v").unwrap(), v);
        }
    }

    #[test]
    fn huge_array_count_is_refused_before_allocation() {
        let mut r = Reader::new(Bytes::from_static(&[0x7f, 0xff, 0xff, 0xff, 0, 0]));
        assert!(matches!(
            r.nullable_array_len(false, 1, "topics"),
            Err(DecodeError::BadLength { .. })
        ));
        let mut r = Reader::new(Bytes::from_static(&[0xff, 0xff, 0xff, 0xff, 0x0f]));
        assert!(r.nullable_array_len(true, 1, "topics").is_err());
    }

    #[test]
    fn strings_and_bytes_both_encodings() {
        for flexible in [false, true] {
            let mut w = Writer::new();
            w.string("hello", flexible);
            w.nullable_string(None, flexible);
            w.bytes(b"xyz", flexible);
            w.nullable_bytes(None, flexible);
            let mut r = Reader::new(w.finish_contiguous());
            assert_eq!(r.string(flexible, "s").unwrap(), "hello");
            assert_eq!(r.nullable_string(flexible, "n").unwrap(), None);
            assert_eq!(&r.bytes(flexible, "b").unwrap()[..], b"xyz");
            assert_eq!(r.nullable_bytes(flexible, "nb").unwrap(), None);
            assert_eq!(r.remaining(), 0);
        }
    }

    #[test]
    fn string_longer_than_frame_is_error() {
        let mut r = Reader::new(Bytes::from_static(&[0x00, 0x10, b'a']));
        assert!(r.string(false, "s").is_err());
    }

    #[test]
    fn shared_parts_keep_order_and_length() {
        let mut w = Writer::new();
        w.i32(1);
        w.put_shared(Bytes::from_static(b"abc"));
        w.i16(2);
        assert_eq!(w.len(), 9);
        let parts = w.finish();
        assert_eq!(parts.len(), 3);
        assert_eq!(&parts[1][..], b"abc");
    }
}
