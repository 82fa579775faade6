//! Hand-written Kafka wire pieces for the raw-TCP tests, independent of ringmq's codec.
//!
//! Only what the tests send and read: request frames with header v1 (or v2 for flexible
//! versions), Produce v3, a RecordBatch v2 with one record, and readers for the Produce v3 and
//! ApiVersions v0 responses. Layouts follow the Kafka protocol guide and the JSON schemas in
//! apache/kafka `clients/src/main/resources/common/message/`.

/// Big-endian writer for request bodies.
#[derive(Default)]
pub struct Writer {
    pub buf: Vec<u8>,
}

impl Writer {
    pub fn i8(&mut self, v: i8) -> &mut Self {
        self.buf.push(v as u8);
        self
    }
    pub fn i16(&mut self, v: i16) -> &mut Self {
        self.buf.extend_from_slice(&v.to_be_bytes());
        self
    }
    pub fn i32(&mut self, v: i32) -> &mut Self {
        self.buf.extend_from_slice(&v.to_be_bytes());
        self
    }
    pub fn i64(&mut self, v: i64) -> &mut Self {
        self.buf.extend_from_slice(&v.to_be_bytes());
        self
    }
    /// STRING: i16 length, then UTF-8 bytes.
    pub fn string(&mut self, s: &str) -> &mut Self {
        self.i16(s.len() as i16);
        self.buf.extend_from_slice(s.as_bytes());
        self
    }
    /// BYTES: i32 length, then the bytes.
    pub fn bytes(&mut self, b: &[u8]) -> &mut Self {
        self.i32(b.len() as i32);
        self.buf.extend_from_slice(b);
        self
    }
    /// UNSIGNED_VARINT (LEB128).
    pub fn uvarint(&mut self, mut v: u64) -> &mut Self {
        while v >= 0x80 {
            self.buf.push((v as u8) | 0x80);
            v >>= 7;
        }
        self.buf.push(v as u8);
        self
    }
    /// VARINT / VARLONG: zig-zag, then LEB128.
    pub fn varint(&mut self, v: i64) -> &mut Self {
        self.uvarint(((v << 1) ^ (v >> 63)) as u64)
    }
    pub fn raw(&mut self, b: &[u8]) -> &mut Self {
        self.buf.extend_from_slice(b);
        self
    }
}

/// A whole request frame: size prefix, header v1 (v2 adds an empty tagged-field section when
/// `flexible`), then `body`.
pub fn request_frame(
    api_key: i16,
    api_version: i16,
    correlation_id: i32,
    client_id: Option<&str>,
    flexible: bool,
    body: &[u8],
) -> Vec<u8> {
    let mut w = Writer::default();
    w.i16(api_key).i16(api_version).i32(correlation_id);
    match client_id {
        Some(id) => w.string(id),
        None => w.i16(-1),
    };
    if flexible {
        w.uvarint(0);
    }
    w.raw(body);
    let mut frame = (w.buf.len() as i32).to_be_bytes().to_vec();
    frame.extend_from_slice(&w.buf);
    frame
}

pub const PRODUCE: i16 = 0;
pub const METADATA: i16 = 3;
pub const API_VERSIONS: i16 = 18;
pub const UNSUPPORTED_VERSION: i16 = 35;
pub const CORRUPT_MESSAGE: i16 = 2;

/// Produce v3 (non-flexible) whose topic array claims `i32::MAX` entries and carries none:
/// 10 header bytes (client id null) + 12 body bytes.
pub fn produce_v3_huge_topic_count() -> Vec<u8> {
    let mut body = Writer::default();
    body.i16(-1) // transactional_id: null
        .i16(-1) // acks
        .i32(30_000) // timeout_ms
        .i32(i32::MAX); // topics: 2^31-1 entries claimed, none present
    request_frame(PRODUCE, 3, 7, None, false, &body.buf)
}

/// Produce v9 (flexible) with a compact topic array claiming `2^31 - 1` entries.
pub fn produce_v9_huge_topic_count() -> Vec<u8> {
    let mut body = Writer::default();
    body.uvarint(0) // transactional_id: compact nullable string, null
        .i16(-1)
        .i32(30_000)
        .uvarint(i32::MAX as u64 + 1); // compact array length is N + 1
    request_frame(PRODUCE, 9, 8, None, true, &body.buf)
}

/// A complete Metadata v1 request for all topics (null topic array).
pub fn metadata_v1_all_topics(correlation_id: i32) -> Vec<u8> {
    let mut body = Writer::default();
    body.i32(-1);
    request_frame(
        METADATA,
        1,
        correlation_id,
        Some("raw-test"),
        false,
        &body.buf,
    )
}

/// ApiVersions at `version` with a v3-style body (header v2, compact client software strings).
pub fn api_versions_request(version: i16, correlation_id: i32) -> Vec<u8> {
    let mut body = Writer::default();
    body.uvarint(9)
        .raw(b"raw-test") // client_software_name, compact string
        .uvarint(4)
        .raw(b"0.1") // client_software_version
        .uvarint(0); // tagged fields
    request_frame(
        API_VERSIONS,
        version,
        correlation_id,
        Some("raw-test"),
        true,
        &body.buf,
    )
}

/// A RecordBatch v2 holding one uncompressed record, with a correct CRC-32C.
pub fn record_batch(key: &[u8], value: &[u8], timestamp_ms: i64) -> Vec<u8> {
    record_batch_timed(key, value, timestamp_ms, timestamp_ms, 0)
}

/// [`record_batch`] with the header's baseTimestamp and maxTimestamp and the record's
/// timestampDelta as given (a client may write any of them).
pub fn record_batch_timed(
    key: &[u8],
    value: &[u8],
    base_timestamp_ms: i64,
    max_timestamp_ms: i64,
    timestamp_delta: i64,
) -> Vec<u8> {
    let mut record = Writer::default();
    record
        .i8(0) // attributes
        .varint(timestamp_delta) // timestampDelta
        .varint(0) // offsetDelta
        .varint(key.len() as i64)
        .raw(key)
        .varint(value.len() as i64)
        .raw(value)
        .varint(0); // header count
    let mut records = Writer::default();
    records.varint(record.buf.len() as i64).raw(&record.buf);

    let mut after_crc = Writer::default();
    after_crc
        .i16(0) // attributes: no compression, CreateTime
        .i32(0) // lastOffsetDelta
        .i64(base_timestamp_ms) // baseTimestamp
        .i64(max_timestamp_ms) // maxTimestamp
        .i64(-1) // producerId
        .i16(-1) // producerEpoch
        .i32(-1) // baseSequence
        .i32(1) // recordsCount
        .raw(&records.buf);
    let crc = crc32c::crc32c(&after_crc.buf);

    let batch_length = 4 + 1 + 4 + after_crc.buf.len(); // leader epoch + magic + crc + rest
    let mut batch = Writer::default();
    batch
        .i64(0) // baseOffset
        .i32(batch_length as i32)
        .i32(-1) // partitionLeaderEpoch
        .i8(2) // magic
        .raw(&crc.to_be_bytes())
        .raw(&after_crc.buf);
    batch.buf
}

/// Offset of the CRC field inside a RecordBatch v2.
pub const BATCH_CRC_OFFSET: usize = 17;

/// Produce v3, acks=-1, one topic, one partition, `records` as the partition's record set.
pub fn produce_v3(correlation_id: i32, topic: &str, partition: i32, records: &[u8]) -> Vec<u8> {
    let mut body = Writer::default();
    body.i16(-1) // transactional_id
        .i16(-1) // acks
        .i32(30_000) // timeout_ms
        .i32(1) // topics
        .string(topic)
        .i32(1) // partitions
        .i32(partition)
        .bytes(records);
    request_frame(
        PRODUCE,
        3,
        correlation_id,
        Some("raw-test"),
        false,
        &body.buf,
    )
}

/// Big-endian reader that panics (failing the test) on short input.
pub struct Reader<'a> {
    pub buf: &'a [u8],
    pub pos: usize,
}

impl<'a> Reader<'a> {
    pub fn new(buf: &'a [u8]) -> Reader<'a> {
        Reader { buf, pos: 0 }
    }
    pub fn take(&mut self, n: usize) -> &'a [u8] {
        assert!(
            self.pos + n <= self.buf.len(),
            "short response: need {n} bytes at {} of {}",
            self.pos,
            self.buf.len()
        );
        let s = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        s
    }
    pub fn i16(&mut self) -> i16 {
        i16::from_be_bytes(self.take(2).try_into().expect("2 bytes"))
    }
    pub fn i32(&mut self) -> i32 {
        i32::from_be_bytes(self.take(4).try_into().expect("4 bytes"))
    }
    pub fn i64(&mut self) -> i64 {
        i64::from_be_bytes(self.take(8).try_into().expect("8 bytes"))
    }
    pub fn string(&mut self) -> String {
        let n = self.i16();
        assert!(n >= 0, "null string where a string was expected");
        String::from_utf8_lossy(self.take(n as usize)).into_owned()
    }
    pub fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }
}

/// One partition of a Produce v3 response.
#[derive(Debug, PartialEq, Eq)]
pub struct ProducePartition {
    pub topic: String,
    pub partition: i32,
    pub error_code: i16,
    pub base_offset: i64,
}

/// Parses a Produce v3 response frame (header v0): returns the correlation id and partitions.
pub fn parse_produce_v3_response(frame: &[u8]) -> (i32, Vec<ProducePartition>) {
    let mut r = Reader::new(frame);
    let correlation_id = r.i32();
    let mut out = Vec::new();
    let topics = r.i32();
    for _ in 0..topics {
        let topic = r.string();
        let partitions = r.i32();
        for _ in 0..partitions {
            let partition = r.i32();
            let error_code = r.i16();
            let base_offset = r.i64();
            let _log_append_time_ms = r.i64();
            out.push(ProducePartition {
                topic: topic.clone(),
                partition,
                error_code,
                base_offset,
            });
        }
    }
    let _throttle_time_ms = r.i32();
    assert_eq!(r.remaining(), 0, "trailing bytes in Produce v3 response");
    (correlation_id, out)
}

/// An ApiVersions v0 response: correlation id, error code, (api_key, min, max) list.
pub fn parse_api_versions_v0_response(frame: &[u8]) -> (i32, i16, Vec<(i16, i16, i16)>) {
    let mut r = Reader::new(frame);
    let correlation_id = r.i32();
    let error_code = r.i16();
    let n = r.i32();
    assert!((0..=1000).contains(&n), "api key count {n}");
    let keys = (0..n).map(|_| (r.i16(), r.i16(), r.i16())).collect();
    assert_eq!(
        r.remaining(),
        0,
        "trailing bytes after the v0 ApiVersions body"
    );
    (correlation_id, error_code, keys)
}

/// ApiVersions v3 response: header v0 (no tagged fields, KIP-511 quirk), flexible body.
pub fn parse_api_versions_v3_response(frame: &[u8]) -> (i32, i16, Vec<(i16, i16, i16)>) {
    let mut r = Reader::new(frame);
    let corr = r.i32();
    let error_code = r.i16();
    let n = uvarint(&mut r)
        .checked_sub(1)
        .expect("api_keys is not null");
    assert!(n <= 1000, "api key count {n}");
    let mut keys = Vec::new();
    for _ in 0..n {
        keys.push((r.i16(), r.i16(), r.i16()));
        skip_tagged_fields(&mut r);
    }
    let _throttle_time_ms = r.i32();
    skip_tagged_fields(&mut r);
    assert_eq!(
        r.remaining(),
        0,
        "trailing bytes: is there a tagged field in the header?"
    );
    (corr, error_code, keys)
}

pub fn uvarint(r: &mut Reader<'_>) -> u64 {
    let mut v = 0u64;
    for shift in (0..35).step_by(7) {
        let b = r.take(1)[0];
        v |= u64::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            return v;
        }
    }
    panic!("uvarint longer than 5 bytes");
}

pub fn skip_tagged_fields(r: &mut Reader<'_>) {
    for _ in 0..uvarint(r) {
        let _tag = uvarint(r);
        let size = uvarint(r) as usize;
        r.take(size);
    }
}

/// One RecordBatch found in a segment file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchSpan {
    /// File position of the batch's first byte.
    pub position: usize,
    /// Whole batch size: 12 + batchLength.
    pub size: usize,
    pub base_offset: i64,
    pub last_offset_delta: i32,
}

impl BatchSpan {
    pub fn next_offset(&self) -> i64 {
        self.base_offset + i64::from(self.last_offset_delta) + 1
    }
}

/// Walks RecordBatch v2 frames from the start of `log`, stopping at the first one that is
/// incomplete, has a non-positive length, wrong magic or a CRC-32C mismatch (or at zero
/// padding). Returns the valid batches in file order.
pub fn scan_batches(log: &[u8]) -> Vec<BatchSpan> {
    let mut out = Vec::new();
    let mut pos = 0usize;
    while log.len() - pos >= 61 {
        let h = &log[pos..];
        let base_offset = i64::from_be_bytes(h[0..8].try_into().expect("8"));
        let batch_length = i32::from_be_bytes(h[8..12].try_into().expect("4"));
        if batch_length < 49 || h[16] != 2 {
            break;
        }
        let size = 12 + batch_length as usize;
        if size > h.len() {
            break;
        }
        let crc = u32::from_be_bytes(h[17..21].try_into().expect("4"));
        if crc32c::crc32c(&h[21..size]) != crc {
            break;
        }
        let last_offset_delta = i32::from_be_bytes(h[23..27].try_into().expect("4"));
        out.push(BatchSpan {
            position: pos,
            size,
            base_offset,
            last_offset_delta,
        });
        pos += size;
    }
    out
}
