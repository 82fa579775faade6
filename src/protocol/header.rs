//! Request header v1/v2 and response header v0/v1.
//!
//! Dispatch works in two steps: [`peek_api`] reads (api_key, api_version) from the first four
//! bytes of a frame body, the caller looks up whether that version is flexible
//! ([`super::api::request_header_version`]), then [`RequestHeader::decode`] reads the rest.
//! Two quirks are encoded here so nobody has to remember them:
//! * `client_id` keeps its i16 length even in the flexible header v2 (so any broker can read
//!   the start of any request);
//! * ApiVersions responses always use header v0, even at flexible versions (KIP-511: a client
//!   must read the reply before it knows what the broker speaks).

use super::api;
use super::api_versions;
use super::wire::{DecodeError, DecodeResult, Reader, Writer};

/// The header in front of every request body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestHeader {
    pub api_key: i16,
    pub api_version: i16,
    pub correlation_id: i32,
    pub client_id: Option<String>,
}

/// (api_key, api_version) from the start of a frame body (after the size prefix), without
/// consuming anything. `None` if fewer than four bytes are there.
pub fn peek_api(frame: &[u8]) -> Option<(i16, i16)> {
    let b = frame.get(..4)?;
    Some((
        i16::from_be_bytes([b[0], b[1]]),
        i16::from_be_bytes([b[2], b[3]]),
    ))
}

impl RequestHeader {
    /// Decode a header whose version (1 = non-flexible, 2 = flexible) the caller chose.
    pub fn decode(r: &mut Reader, header_version: i16) -> DecodeResult<Self> {
        if !(1..=2).contains(&header_version) {
            return Err(DecodeError::Invalid(
                "request header version must be 1 or 2",
            ));
        }
        let api_key = r.i16("api_key")?;
        let api_version = r.i16("api_version")?;
        let correlation_id = r.i32("correlation_id")?;
        // client_id: always an i16-length nullable string, even in header v2.
        let client_id = r.nullable_string(false, "client_id")?;
        r.tags_if(header_version >= 2)?;
        Ok(RequestHeader {
            api_key,
            api_version,
            correlation_id,
            client_id,
        })
    }

    /// Decode a header, choosing its version from the api table. An API ringmq does not serve
    /// at all is `Unsupported` (its header layout is unknown); a served API at an unsupported
    /// version decodes, so the caller can answer UNSUPPORTED_VERSION with the correlation id.
    pub fn decode_any(r: &mut Reader) -> DecodeResult<Self> {
        let mut peek = r.clone();
        let api_key = peek.i16("api_key")?;
        let api_version = peek.i16("api_version")?;
        let header_version =
            api::request_header_version(api_key, api_version).ok_or(DecodeError::Unsupported {
                api_key,
                api_version,
            })?;
        Self::decode(r, header_version)
    }

    /// Encode as header v1 or v2 (client side).
    pub fn encode(&self, w: &mut Writer, header_version: i16) {
        w.i16(self.api_key);
        w.i16(self.api_version);
        w.i32(self.correlation_id);
        w.nullable_string(self.client_id.as_deref(), false);
        w.tags_if(header_version >= 2);
    }

    /// The header version this request needs (1 if the API is unknown to the table).
    pub fn header_version(&self) -> i16 {
        api::request_header_version(self.api_key, self.api_version).unwrap_or(1)
    }
}

/// The header in front of every response body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResponseHeader {
    pub correlation_id: i32,
}

/// Response header version for a request: 0 for non-flexible versions and for every
/// ApiVersions response, 1 for flexible versions. Unknown APIs get 0.
pub fn response_header_version(api_key: i16, api_version: i16) -> i16 {
    if api_key == api_versions::API_KEY {
        return 0;
    }
    match api::request_header_version(api_key, api_version) {
        Some(2) => 1,
        _ => 0,
    }
}

impl ResponseHeader {
    pub fn encode(&self, w: &mut Writer, header_version: i16) {
        w.i32(self.correlation_id);
        w.tags_if(header_version >= 1);
    }

    pub fn decode(r: &mut Reader, header_version: i16) -> DecodeResult<Self> {
        let correlation_id = r.i32("correlation_id")?;
        r.tags_if(header_version >= 1)?;
        Ok(ResponseHeader { correlation_id })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::{fetch, metadata, produce};
    use bytes::Bytes;

    fn header(api_key: i16, api_version: i16) -> RequestHeader {
        RequestHeader {
            api_key,
            api_version,
            correlation_id: 42,
            client_id: Some("rdkafka".into()),
        }
    }

    #[test]
    fn v1_known_bytes() {
        let mut w = Writer::new();
        header(3, 4).encode(&mut w, 1);
        let b = w.finish_contiguous();
        let expected: &[u8] = &[
            0, 3, 0, 4, 0, 0, 0, 42, 0, 7, b'r', b'd', b'k', b'a', b'f', b'k', b'a',
        ];
        assert_eq!(&b[..], expected);
        assert_eq!(peek_api(&b), Some((3, 4)));
    }

    #[test]
    fn v2_keeps_i16_client_id_and_adds_tags() {
        let mut w = Writer::new();
        header(18, 3).encode(&mut w, 2);
        let b = w.finish_contiguous();
        assert_eq!(&b[8..10], &[0, 7]);
        assert_eq!(b[b.len() - 1], 0);
        let mut r = Reader::new(b);
        assert_eq!(RequestHeader::decode_any(&mut r).unwrap(), header(18, 3));
        assert_eq!(r.remaining(), 0);
    }

    #[test]
    fn decode_any_picks_header_version_from_table() {
        for (key, version) in [
            (metadata::API_KEY, 8),
            (metadata::API_KEY, 9),
            (fetch::API_KEY, 12),
            (18, 7),
        ] {
            let h = RequestHeader {
                client_id: None,
                ..header(key, version)
            };
            let mut w = Writer::new();
            h.encode(&mut w, h.header_version());
            // A body byte after the header must stay unread.
            w.i8(99);
            let mut r = Reader::new(w.finish_contiguous());
            assert_eq!(RequestHeader::decode_any(&mut r).unwrap(), h);
            assert_eq!(r.remaining(), 1);
        }
    }

    #[test]
    fn unknown_api_and_truncation_are_errors() {
        let mut r = Reader::new(Bytes::from_static(&[
            0x03, 0xe7, 0, 0, 0, 0, 0, 1, 0xff, 0xff,
        ]));
        assert!(matches!(
            RequestHeader::decode_any(&mut r),
            Err(DecodeError::Unsupported { .. })
        ));
        let mut w = Writer::new();
        header(produce::API_KEY, 9).encode(&mut w, 2);
        let b = w.finish_contiguous();
        for len in 0..b.len() {
            assert!(
                RequestHeader::decode_any(&mut Reader::new(b.slice(..len))).is_err(),
                "{len}"
            );
        }
        assert_eq!(peek_api(&b[..3]), None);
    }

    #[test]
    fn response_header_versions() {
        assert_eq!(response_header_version(api_versions::API_KEY, 3), 0);
        assert_eq!(response_header_version(api_versions::API_KEY, 4), 0);
        assert_eq!(response_header_version(metadata::API_KEY, 8), 0);
        assert_eq!(response_header_version(metadata::API_KEY, 9), 1);
        assert_eq!(response_header_version(produce::API_KEY, 9), 1);
        assert_eq!(response_header_version(fetch::API_KEY, 11), 0);
        assert_eq!(response_header_version(999, 3), 0);
        for v in 0..=1 {
            let mut w = Writer::new();
            ResponseHeader { correlation_id: 7 }.encode(&mut w, v);
            let b = w.finish_contiguous();
            assert_eq!(b.len(), 4 + v as usize);
            let mut r = Reader::new(b);
            assert_eq!(ResponseHeader::decode(&mut r, v).unwrap().correlation_id, 7);
            assert_eq!(r.remaining(), 0);
        }
    }

    #[test]
    fn oracle_agrees_on_headers() {
        use crate::protocol::api::testkit::{encode, oracle_agrees};
        for v in 1..=2 {
            let b = encode(&header(3, 12), v, RequestHeader::encode);
            oracle_agrees::<kafka_protocol::messages::RequestHeader>(&b, v);
            let b = encode(
                &RequestHeader {
                    client_id: None,
                    ..header(0, 9)
                },
                v,
                RequestHeader::encode,
            );
            oracle_agrees::<kafka_protocol::messages::RequestHeader>(&b, v);
        }
        for v in 0..=1 {
            let b = encode(
                &ResponseHeader { correlation_id: -5 },
                v,
                ResponseHeader::encode,
            );
            oracle_agrees::<kafka_protocol::messages::ResponseHeader>(&b, v);
        }
    }

    /// The whole path a broker takes for one Produce request: frame check, peek, header,
    /// body. Every strict prefix of the frame is Incomplete, and decoding a truncated body
    /// (bypassing the frame check) is an error, never a panic.
    #[test]
    fn framed_produce_request_end_to_end_and_truncated() {
        use crate::protocol::frame::{check_frame, into_frame, FrameStatus};
        use crate::protocol::produce::{PartitionProduceData, ProduceRequest, TopicProduceData};
        let body = ProduceRequest {
            transactional_id: None,
            acks: -1,
            timeout_ms: 1000,
            topic_data: vec![TopicProduceData {
                name: "t".into(),
                partition_data: vec![PartitionProduceData {
                    index: 0,
                    records: Some(Bytes::from_static(&[7; 70])),
                }],
            }],
        };
        for version in [3, 9, 12] {
            let h = header(produce::API_KEY, version);
            let mut w = Writer::new();
            h.encode(&mut w, h.header_version());
            body.encode(&mut w, version);
            let frame: Vec<u8> = into_frame(w)
                .unwrap()
                .iter()
                .flat_map(|p| p.to_vec())
                .collect();
            for len in 0..frame.len() {
                assert!(matches!(
                    check_frame(&frame[..len], 1 << 20),
                    FrameStatus::Incomplete { .. }
                ));
            }
            let FrameStatus::Complete { frame_len } = check_frame(&frame, 1 << 20) else {
                panic!("whole frame not complete");
            };
            assert_eq!(frame_len, frame.len());
            let frame = Bytes::from(frame).slice(4..);
            assert_eq!(peek_api(&frame), Some((produce::API_KEY, version)));
            let decode = |bytes: Bytes| -> DecodeResult<(RequestHeader, ProduceRequest)> {
                let mut r = Reader::new(bytes);
                let h = RequestHeader::decode_any(&mut r)?;
                Ok((h.clone(), ProduceRequest::decode(&mut r, h.api_version)?))
            };
            assert_eq!(decode(frame.clone()).unwrap(), (h, body.clone()));
            for len in 0..frame.len() {
                assert!(decode(frame.slice(..len)).is_err(), "v{version} len {len}");
            }
        }
    }

    #[test]
    fn random_bytes_never_panic_header_decoders() {
        let mut rng = crate::protocol::api::testkit::XorShift(42);
        for _ in 0..5000 {
            let len = (rng.next() % 40) as usize;
            let mut buf: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
            if len >= 4 {
                // Steer towards served APIs so the tagged-field path is reached too.
                buf[0] = 0;
                buf[1] = (rng.next() % 4) as u8;
            }
            let b = Bytes::from(buf);
            let _ = RequestHeader::decode_any(&mut Reader::new(b.clone()));
            let _ = RequestHeader::decode(&mut Reader::new(b.clone()), 2);
            let _ = ResponseHeader::decode(&mut Reader::new(b), 1);
        }
    }
}
