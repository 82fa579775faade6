//! CreateTopics (key 19), versions 2–7, flexible from 5. Schema: Kafka 4.1
//! `CreateTopicsRequest.json` / `CreateTopicsResponse.json`.
//!
//! Version quirks:
//! * v0–1 were removed in Kafka 4.0 but old clients (segmentio/kafka-go 0.2) still send v0:
//!   v1 adds the request's `validate_only` and the response's `error_message`, v2 the
//!   response's `throttle_time_ms` (Kafka 3.x schemas).
//! * v4 lets `num_partitions` / `replication_factor` be -1 ("broker default") even without
//!   manual assignments; the wire layout is unchanged.
//! * v5 is the first flexible version and the response gains `num_partitions`,
//!   `replication_factor`, a nullable `configs` array and the tagged field 0
//!   `topic_config_error_code`, which we emit only when non-zero (a tagged field at its
//!   default is never written).
//! * v6 only adds the THROTTLING_QUOTA_EXCEEDED error; v7 adds `topic_id` to the response.
//!
//! Fields a version does not carry decode to their Kafka defaults (`num_partitions` and
//! `replication_factor` -1, `topic_id` all zero, `configs` empty) and are not encoded.
//! Decoding checks the version range and returns [`DecodeError::Unsupported`] outside it;
//! it does not check that the body was consumed entirely (the caller owns the frame).

use super::wire::{DecodeError, DecodeResult, Reader, Writer};
use super::ErrorCode;

/// Kafka API key of CreateTopics.
pub const API_KEY: i16 = 19;
/// Lowest version we advertise.
pub const MIN_VERSION: i16 = 0;
/// Highest version we advertise.
pub const MAX_VERSION: i16 = 7;
/// First flexible (KIP-482) version.
pub const FLEXIBLE_FROM: i16 = 5;

/// Tag of `CreatableTopicResult.topic_config_error_code` (v5+).
const TAG_TOPIC_CONFIG_ERROR_CODE: u32 = 0;

fn check_version(version: i16) -> DecodeResult<bool> {
    if !(MIN_VERSION..=MAX_VERSION).contains(&version) {
        return Err(DecodeError::Unsupported {
            api_key: API_KEY,
            api_version: version,
        });
    }
    Ok(version >= FLEXIBLE_FROM)
}

/// CreateTopics request body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreateTopicsRequest {
    pub topics: Vec<CreatableTopic>,
    /// How long to wait for the topics to be created (default 60000).
    pub timeout_ms: i32,
    /// Check only; create nothing.
    pub validate_only: bool,
}

/// One topic to create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreatableTopic {
    pub name: String,
    /// -1 with manual assignments or for the broker default.
    pub num_partitions: i32,
    /// -1 with manual assignments or for the broker default.
    pub replication_factor: i16,
    /// Manual assignment; empty for automatic.
    pub assignments: Vec<CreatableReplicaAssignment>,
    pub configs: Vec<CreatableTopicConfig>,
}

/// Manual replica placement of one partition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreatableReplicaAssignment {
    pub partition_index: i32,
    pub broker_ids: Vec<i32>,
}

/// One topic config override in a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreatableTopicConfig {
    pub name: String,
    pub value: Option<String>,
}

/// CreateTopics response body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreateTopicsResponse {
    pub throttle_time_ms: i32,
    pub topics: Vec<CreatableTopicResult>,
}

/// The result for one topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreatableTopicResult {
    pub name: String,
    /// v7+; all zero otherwise.
    pub topic_id: [u8; 16],
    pub error_code: ErrorCode,
    pub error_message: Option<String>,
    /// v5+, tagged field 0: why `configs` is absent. Written only when non-zero.
    pub topic_config_error_code: ErrorCode,
    /// v5+ (default -1).
    pub num_partitions: i32,
    /// v5+ (default -1).
    pub replication_factor: i16,
    /// v5+, nullable (null when the caller may not describe configs).
    pub configs: Option<Vec<CreatableTopicConfigs>>,
}

/// One effective config of a created topic (v5+ response).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreatableTopicConfigs {
    pub name: String,
    pub value: Option<String>,
    pub read_only: bool,
    /// Default -1.
    pub config_source: i8,
    pub is_sensitive: bool,
}

fn read_i32_array(r: &mut Reader, flexible: bool, field: &'static str) -> DecodeResult<Vec<i32>> {
    let n = r.array_len(flexible, 4, field)?;
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        out.push(r.i32(field)?);
    }
    Ok(out)
}

fn write_i32_array(w: &mut Writer, values: &[i32], flexible: bool) {
    w.array_len(values.len(), flexible);
    for v in values {
        w.i32(*v);
    }
}

fn end_struct(r: &mut Reader, flexible: bool) -> DecodeResult<()> {
    if flexible {
        r.skip_tagged_fields()?;
    }
    Ok(())
}

fn end_struct_w(w: &mut Writer, flexible: bool) {
    if flexible {
        w.empty_tagged_fields();
    }
}

impl CreateTopicsRequest {
    /// Decode the body at `version`; a version outside the advertised range is
    /// [`DecodeError::Unsupported`]. Trailing bytes are left in `r` for the caller.
    pub fn decode(r: &mut Reader, version: i16) -> DecodeResult<Self> {
        let flexible = check_version(version)?;
        let n = r.array_len(flexible, 8, "topics")?;
        let mut topics = Vec::with_capacity(n);
        for _ in 0..n {
            topics.push(CreatableTopic::decode(r, flexible)?);
        }
        let timeout_ms = r.i32("timeout_ms")?;
        let validate_only = version >= 1 && r.bool("validate_only")?;
        end_struct(r, flexible)?;
        Ok(CreateTopicsRequest {
            topics,
            timeout_ms,
            validate_only,
        })
    }

    /// Encode the body at `version` (which must be in the advertised range); fields the
    /// version does not carry are left out.
    pub fn encode(&self, w: &mut Writer, version: i16) {
        let flexible = version >= FLEXIBLE_FROM;
        w.array_len(self.topics.len(), flexible);
        for t in &self.topics {
            t.encode(w, flexible);
        }
        w.i32(self.timeout_ms);
        if version >= 1 {
            w.bool(self.validate_only);
        }
        end_struct_w(w, flexible);
    }
}

impl CreatableTopic {
    fn decode(r: &mut Reader, flexible: bool) -> DecodeResult<Self> {
        let name = r.string(flexible, "topics.name")?;
        let num_partitions = r.i32("topics.num_partitions")?;
        let replication_factor = r.i16("topics.replication_factor")?;
        let n = r.array_len(flexible, 5, "topics.assignments")?;
        let mut assignments = Vec::with_capacity(n);
        for _ in 0..n {
            let partition_index = r.i32("assignments.partition_index")?;
            let broker_ids = read_i32_array(r, flexible, "assignments.broker_ids")?;
            end_struct(r, flexible)?;
            assignments.push(CreatableReplicaAssignment {
                partition_index,
                broker_ids,
            });
        }
        let n = r.array_len(flexible, 2, "topics.configs")?;
        let mut configs = Vec::with_capacity(n);
        for _ in 0..n {
            let name = r.string(flexible, "configs.name")?;
            let value = r.nullable_string(flexible, "configs.value")?;
            end_struct(r, flexible)?;
            configs.push(CreatableTopicConfig { name, value });
        }
        end_struct(r, flexible)?;
        Ok(CreatableTopic {
            name,
            num_partitions,
            replication_factor,
            assignments,
            configs,
        })
    }

    fn encode(&self, w: &mut Writer, flexible: bool) {
        w.string(&self.name, flexible);
        w.i32(self.num_partitions);
        w.i16(self.replication_factor);
        w.array_len(self.assignments.len(), flexible);
        for a in &self.assignments {
            w.i32(a.partition_index);
            write_i32_array(w, &a.broker_ids, flexible);
            end_struct_w(w, flexible);
        }
        w.array_len(self.configs.len(), flexible);
        for c in &self.configs {
            w.string(&c.name, flexible);
            w.nullable_string(c.value.as_deref(), flexible);
            end_struct_w(w, flexible);
        }
        end_struct_w(w, flexible);
    }
}

impl CreateTopicsResponse {
    /// Decode the body at `version`; a version outside the advertised range is
    /// [`DecodeError::Unsupported`]. Trailing bytes are left in `r` for the caller.
    pub fn decode(r: &mut Reader, version: i16) -> DecodeResult<Self> {
        let flexible = check_version(version)?;
        let throttle_time_ms = if version >= 2 {
            r.i32("throttle_time_ms")?
        } else {
            0
        };
        let n = r.array_len(flexible, 5, "topics")?;
        let mut topics = Vec::with_capacity(n);
        for _ in 0..n {
            topics.push(CreatableTopicResult::decode(r, version)?);
        }
        end_struct(r, flexible)?;
        Ok(CreateTopicsResponse {
            throttle_time_ms,
            topics,
        })
    }

    /// Encode the body at `version` (which must be in the advertised range); fields the
    /// version does not carry are left out.
    pub fn encode(&self, w: &mut Writer, version: i16) {
        let flexible = version >= FLEXIBLE_FROM;
        if version >= 2 {
            w.i32(self.throttle_time_ms);
        }
        w.array_len(self.topics.len(), flexible);
        for t in &self.topics {
            t.encode(w, version);
        }
        end_struct_w(w, flexible);
    }
}

impl CreatableTopicResult {
    fn decode(r: &mut Reader, version: i16) -> DecodeResult<Self> {
        let flexible = version >= FLEXIBLE_FROM;
        let name = r.string(flexible, "topics.name")?;
        let topic_id = if version >= 7 {
            r.uuid("topics.topic_id")?
        } else {
            [0; 16]
        };
        let error_code = ErrorCode(r.i16("topics.error_code")?);
        let error_message = if version >= 1 {
            r.nullable_string(flexible, "topics.error_message")?
        } else {
            None
        };
        let mut result = CreatableTopicResult {
            name,
            topic_id,
            error_code,
            error_message,
            topic_config_error_code: ErrorCode::NONE,
            num_partitions: -1,
            replication_factor: -1,
            configs: Some(Vec::new()),
        };
        if !flexible {
            return Ok(result);
        }
        result.num_partitions = r.i32("topics.num_partitions")?;
        result.replication_factor = r.i16("topics.replication_factor")?;
        result.configs = match r.nullable_array_len(true, 5, "topics.configs")? {
            None => None,
            Some(n) => Some(decode_result_configs(r, n)?),
        };
        let mut config_error = ErrorCode::NONE;
        r.tagged_fields(|tag, data| {
            if tag == TAG_TOPIC_CONFIG_ERROR_CODE {
                let data: [u8; 2] = data[..]
                    .try_into()
                    .map_err(|_| DecodeError::Invalid("topic_config_error_code is not 2 bytes"))?;
                config_error = ErrorCode(i16::from_be_bytes(data));
            }
            Ok(())
        })?;
        result.topic_config_error_code = config_error;
        Ok(result)
    }

    fn encode(&self, w: &mut Writer, version: i16) {
        let flexible = version >= FLEXIBLE_FROM;
        w.string(&self.name, flexible);
        if version >= 7 {
            w.uuid(&self.topic_id);
        }
        w.i16(self.error_code.0);
        if version >= 1 {
            w.nullable_string(self.error_message.as_deref(), flexible);
        }
        if !flexible {
            return;
        }
        w.i32(self.num_partitions);
        w.i16(self.replication_factor);
        match &self.configs {
            None => w.null_array(true),
            Some(configs) => {
                w.array_len(configs.len(), true);
                for c in configs {
                    c.encode(w);
                }
            }
        }
        if self.topic_config_error_code.is_error() {
            w.uvarint(1);
            w.uvarint(TAG_TOPIC_CONFIG_ERROR_CODE);
            w.uvarint(2);
            w.i16(self.topic_config_error_code.0);
        } else {
            w.empty_tagged_fields();
        }
    }
}

/// The v5+ (always flexible) per-topic config entries.
fn decode_result_configs(r: &mut Reader, n: usize) -> DecodeResult<Vec<CreatableTopicConfigs>> {
    let mut configs = Vec::with_capacity(n);
    for _ in 0..n {
        let name = r.string(true, "configs.name")?;
        let value = r.nullable_string(true, "configs.value")?;
        let read_only = r.bool("configs.read_only")?;
        let config_source = r.i8("configs.config_source")?;
        let is_sensitive = r.bool("configs.is_sensitive")?;
        r.skip_tagged_fields()?;
        configs.push(CreatableTopicConfigs {
            name,
            value,
            read_only,
            config_source,
            is_sensitive,
        });
    }
    Ok(configs)
}

impl CreatableTopicConfigs {
    fn encode(&self, w: &mut Writer) {
        w.string(&self.name, true);
        w.nullable_string(self.value.as_deref(), true);
        w.bool(self.read_only);
        w.i8(self.config_source);
        w.bool(self.is_sensitive);
        w.empty_tagged_fields();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn sample_request() -> CreateTopicsRequest {
        CreateTopicsRequest {
            topics: vec![
                CreatableTopic {
                    name: "orders".into(),
                    num_partitions: -1,
                    replication_factor: -1,
                    assignments: vec![
                        CreatableReplicaAssignment {
                            partition_index: 0,
                            broker_ids: vec![1, 2],
                        },
                        CreatableReplicaAssignment {
                            partition_index: 1,
                            broker_ids: vec![],
                        },
                    ],
                    configs: vec![
                        CreatableTopicConfig {
                            name: "cleanup.policy".into(),
                            value: Some("compact".into()),
                        },
                        CreatableTopicConfig {
                            name: "retention.ms".into(),
                            value: None,
                        },
                    ],
                },
                CreatableTopic {
                    name: String::new(),
                    num_partitions: 3,
                    replication_factor: 1,
                    assignments: vec![],
                    configs: vec![],
                },
            ],
            timeout_ms: 60_000,
            validate_only: true,
        }
    }

    fn sample_response(version: i16) -> CreateTopicsResponse {
        let flexible = version >= FLEXIBLE_FROM;
        let mut ok = CreatableTopicResult {
            name: "orders".into(),
            topic_id: if version >= 7 { [7; 16] } else { [0; 16] },
            error_code: ErrorCode::NONE,
            error_message: None,
            topic_config_error_code: ErrorCode::NONE,
            num_partitions: -1,
            replication_factor: -1,
            configs: Some(vec![]),
        };
        let mut failed = CreatableTopicResult {
            name: String::new(),
            error_code: ErrorCode::TOPIC_ALREADY_EXISTS,
            error_message: Some("exists".into()),
            ..ok.clone()
        };
        if flexible {
            ok.num_partitions = 3;
            ok.replication_factor = 1;
            ok.configs = Some(vec![
                CreatableTopicConfigs {
                    name: "cleanup.policy".into(),
                    value: Some("compact".into()),
                    read_only: false,
                    config_source: 1,
                    is_sensitive: false,
                },
                CreatableTopicConfigs {
                    name: "sasl.jaas.config".into(),
                    value: None,
                    read_only: true,
                    config_source: -1,
                    is_sensitive: true,
                },
            ]);
            failed.topic_config_error_code = ErrorCode(29);
            failed.configs = None;
        }
        if version < 1 {
            failed.error_message = None;
        }
        CreateTopicsResponse {
            throttle_time_ms: if version >= 2 { 12 } else { 0 },
            topics: vec![ok, failed],
        }
    }

    fn encode_request(req: &CreateTopicsRequest, version: i16) -> Bytes {
        let mut w = Writer::new();
        req.encode(&mut w, version);
        w.finish_contiguous()
    }

    fn encode_response(resp: &CreateTopicsResponse, version: i16) -> Bytes {
        let mut w = Writer::new();
        resp.encode(&mut w, version);
        w.finish_contiguous()
    }

    #[test]
    fn request_round_trips_at_every_version() {
        for version in MIN_VERSION..=MAX_VERSION {
            let mut req = sample_request();
            req.validate_only &= version >= 1;
            let mut r = Reader::new(encode_request(&req, version));
            assert_eq!(
                CreateTopicsRequest::decode(&mut r, version).unwrap(),
                req,
                "v{version}"
            );
            assert_eq!(r.remaining(), 0, "v{version}");
        }
    }

    #[test]
    fn response_round_trips_at_every_version() {
        for version in MIN_VERSION..=MAX_VERSION {
            let resp = sample_response(version);
            let mut r = Reader::new(encode_response(&resp, version));
            assert_eq!(
                CreateTopicsResponse::decode(&mut r, version).unwrap(),
                resp,
                "v{version}"
            );
            assert_eq!(r.remaining(), 0, "v{version}");
        }
    }

    #[test]
    fn request_v2_known_bytes() {
        let req = CreateTopicsRequest {
            topics: vec![CreatableTopic {
                name: "t".into(),
                num_partitions: 3,
                replication_factor: 1,
                assignments: vec![],
                configs: vec![CreatableTopicConfig {
                    name: "a".into(),
                    value: None,
                }],
            }],
            timeout_ms: 1000,
            validate_only: false,
        };
        #[rustfmt::skip]
        let expected: &[u8] = &[
            0, 0, 0, 1,             // topics: 1
            0, 1, b't',             // name
            0, 0, 0, 3,             // num_partitions
            0, 1,                   // replication_factor
            0, 0, 0, 0,             // assignments: 0
            0, 0, 0, 1,             // configs: 1
            0, 1, b'a',             // config name
            0xff, 0xff,             // config value: null
            0, 0, 0x03, 0xe8,       // timeout_ms
            0,                      // validate_only
        ];
        assert_eq!(&encode_request(&req, 2)[..], expected);
        let mut r = Reader::new(Bytes::from_static(expected));
        assert_eq!(CreateTopicsRequest::decode(&mut r, 2).unwrap(), req);
    }

    #[test]
    fn response_v5_tagged_config_error_known_bytes() {
        let resp = CreateTopicsResponse {
            throttle_time_ms: 0,
            topics: vec![CreatableTopicResult {
                name: "t".into(),
                topic_id: [0; 16],
                error_code: ErrorCode::NONE,
                error_message: None,
                topic_config_error_code: ErrorCode(29),
                num_partitions: 1,
                replication_factor: 1,
                configs: None,
            }],
        };
        #[rustfmt::skip]
        let expected: &[u8] = &[
            0, 0, 0, 0,     // throttle_time_ms
            2,              // topics: compact 1
            2, b't',        // name
            0, 0,           // error_code
            0,              // error_message: null
            0, 0, 0, 1,     // num_partitions
            0, 1,           // replication_factor
            0,              // configs: null
            1, 0, 2, 0, 29, // tagged: 1 field, tag 0, size 2, value 29
            0,              // top-level tagged fields
        ];
        assert_eq!(&encode_response(&resp, 5)[..], expected);
        let mut r = Reader::new(Bytes::from_static(expected));
        assert_eq!(CreateTopicsResponse::decode(&mut r, 5).unwrap(), resp);
    }

    #[test]
    fn zero_config_error_is_not_emitted() {
        let mut resp = sample_response(5);
        resp.topics.truncate(1);
        let bytes = encode_response(&resp, 5);
        // The topic's tagged-field section is the second-to-last byte and is empty.
        assert_eq!(bytes[bytes.len() - 2], 0);
    }

    /// v5 response with one topic whose tagged section is `tags`.
    fn response_v5_with_topic_tags(tags: &[u8]) -> Bytes {
        let mut bytes = vec![0, 0, 0, 0, 2, 2, b't', 0, 0, 0, 0, 0, 0, 1, 0, 1, 0];
        bytes.extend_from_slice(tags);
        bytes.push(0);
        Bytes::from(bytes)
    }

    #[test]
    fn response_tagged_fields_unknown_skipped_malformed_rejected() {
        // Unknown tag 5 (3 bytes) before tag 0 = 29: the unknown one is skipped.
        let bytes = response_v5_with_topic_tags(&[2, 5, 3, 1, 2, 3, 0, 2, 0, 29]);
        let mut r = Reader::new(bytes);
        let resp = CreateTopicsResponse::decode(&mut r, 5).unwrap();
        assert_eq!(resp.topics[0].topic_config_error_code, ErrorCode(29));
        assert_eq!(r.remaining(), 0);
        // Tag 0 must hold exactly an int16.
        let bytes = response_v5_with_topic_tags(&[1, 0, 3, 0, 29, 0]);
        let err = CreateTopicsResponse::decode(&mut Reader::new(bytes), 5);
        assert!(matches!(err, Err(DecodeError::Invalid(_))));
        // A tag claiming more bytes than the frame holds.
        let bytes = response_v5_with_topic_tags(&[1, 0, 0x7f]);
        assert!(CreateTopicsResponse::decode(&mut Reader::new(bytes), 5).is_err());
    }

    #[test]
    fn every_truncation_is_an_error() {
        for version in MIN_VERSION..=MAX_VERSION {
            let req = encode_request(&sample_request(), version);
            crate::protocol::api::testkit::truncations_fail(
                &req,
                version,
                CreateTopicsRequest::decode,
            );
            let resp = encode_response(&sample_response(version), version);
            crate::protocol::api::testkit::truncations_fail(
                &resp,
                version,
                CreateTopicsResponse::decode,
            );
        }
    }

    #[test]
    fn kafka_protocol_crate_agrees_at_every_version() {
        use kafka_protocol::messages as oracle;
        // The oracle has Kafka 4.1's schemas, which start at v2.
        for version in 2..=MAX_VERSION {
            let req = encode_request(&sample_request(), version);
            crate::protocol::api::testkit::oracle_agrees::<oracle::CreateTopicsRequest>(
                &req, version,
            );
            let resp = encode_response(&sample_response(version), version);
            crate::protocol::api::testkit::oracle_agrees::<oracle::CreateTopicsResponse>(
                &resp, version,
            );
        }
    }

    fn xorshift(state: &mut u64) -> u64 {
        let mut rng = crate::protocol::api::testkit::XorShift(*state);
        (rng.next(), *state = rng.0).0
    }

    fn decode_all(bytes: &Bytes) {
        for version in MIN_VERSION..=MAX_VERSION {
            let _ = CreateTopicsRequest::decode(&mut Reader::new(bytes.clone()), version);
            let _ = CreateTopicsResponse::decode(&mut Reader::new(bytes.clone()), version);
        }
    }

    #[test]
    fn random_and_mutated_bytes_never_panic() {
        let mut seed = 0x9e37_79b9_7f4a_7c15_u64;
        for _ in 0..4000 {
            let len = (xorshift(&mut seed) % 96) as usize;
            let bytes: Vec<u8> = (0..len).map(|_| xorshift(&mut seed) as u8).collect();
            decode_all(&Bytes::from(bytes));
        }
        let valid = [
            encode_request(&sample_request(), 5),
            encode_response(&sample_response(7), 7),
        ];
        for i in 0..4000 {
            let mut bytes = valid[i % 2].to_vec();
            for _ in 0..1 + xorshift(&mut seed) % 4 {
                let at = (xorshift(&mut seed) % bytes.len() as u64) as usize;
                bytes[at] = xorshift(&mut seed) as u8;
            }
            decode_all(&Bytes::from(bytes));
        }
    }

    #[test]
    fn huge_topic_count_is_an_error() {
        let classic = Bytes::from_static(&[0x7f, 0xff, 0xff, 0xff, 0, 0, 0, 0, 0]);
        assert!(matches!(
            CreateTopicsRequest::decode(&mut Reader::new(classic), 2),
            Err(DecodeError::BadLength { .. })
        ));
        let resp = Bytes::from_static(&[0, 0, 0, 0, 0x7f, 0xff, 0xff, 0xff, 0, 0, 0, 0]);
        assert!(matches!(
            CreateTopicsResponse::decode(&mut Reader::new(resp), 2),
            Err(DecodeError::BadLength { .. })
        ));
        let compact = Bytes::from_static(&[0x80, 0x80, 0x80, 0x80, 0x08, 0, 0, 0, 0]);
        assert!(matches!(
            CreateTopicsRequest::decode(&mut Reader::new(compact), 5),
            Err(DecodeError::BadLength { .. })
        ));
        let resp = Bytes::from_static(&[0, 0, 0, 0, 0x80, 0x80, 0x80, 0x80, 0x08, 0]);
        assert!(matches!(
            CreateTopicsResponse::decode(&mut Reader::new(resp), 5),
            Err(DecodeError::BadLength { .. })
        ));
    }

    #[test]
    fn unsupported_version_is_an_error() {
        let bytes = encode_request(&sample_request(), 2);
        for version in [-1, 8] {
            let err = CreateTopicsRequest::decode(&mut Reader::new(bytes.clone()), version);
            assert!(matches!(
                err,
                Err(DecodeError::Unsupported { api_key: 19, .. })
            ));
        }
    }
}
