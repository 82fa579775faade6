//! DescribeConfigs (key 32), versions 0–4, flexible from 4. Schema: Kafka 4.1
//! `DescribeConfigsRequest.json` / `DescribeConfigsResponse.json` (v1–4) and Kafka 3.9's
//! (v0, removed in Kafka 4.0 but still sent by older clients).
//!
//! Version quirks:
//! * v0 has no `include_synonyms` (decodes to `false`) and, per config, an `is_default` flag
//!   where v1 has `config_source` and the `synonyms` array. v0 encodes `is_default` as
//!   `config_source == DEFAULT_CONFIG (5)`, leaves synonyms out, and decodes `is_default` to
//!   source 5 or UNKNOWN (0), as Kafka's own down-conversion does.
//! * v2 only changes throttling behaviour.
//! * v3 adds `include_documentation` to the request and `config_type` (default 0) and a
//!   nullable `documentation` to each config.
//! * v4 is the first flexible version.
//!
//! `configuration_keys` is nullable: null asks for every config of the resource (Java's
//! AlterConfigs read-modify-write relies on getting all of them, defaults included). Fields
//! a version does not carry decode to their defaults (`false`, 0, `None`).

use super::wire::{DecodeError, DecodeResult, Reader, Writer};
use super::ErrorCode;

/// Kafka API key of DescribeConfigs.
pub const API_KEY: i16 = 32;
/// Kafka's ConfigSource DEFAULT_CONFIG: what v0's `is_default` stands for.
pub const SOURCE_DEFAULT: i8 = 5;
/// Lowest version we advertise.
pub const MIN_VERSION: i16 = 0;
/// Highest version we advertise.
pub const MAX_VERSION: i16 = 4;
/// First flexible (KIP-482) version.
pub const FLEXIBLE_FROM: i16 = 4;

fn check_version(version: i16) -> DecodeResult<bool> {
    if !(MIN_VERSION..=MAX_VERSION).contains(&version) {
        return Err(DecodeError::Unsupported {
            api_key: API_KEY,
            api_version: version,
        });
    }
    Ok(version >= FLEXIBLE_FROM)
}

/// DescribeConfigs request body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DescribeConfigsRequest {
    pub resources: Vec<DescribeConfigsResource>,
    pub include_synonyms: bool,
    /// v3+.
    pub include_documentation: bool,
}

/// One resource whose configs are asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DescribeConfigsResource {
    /// 2 = topic, 4 = broker, 8 = broker logger (Kafka's ConfigResource.Type).
    pub resource_type: i8,
    pub resource_name: String,
    /// The keys to describe, or null for all of them.
    pub configuration_keys: Option<Vec<String>>,
}

/// DescribeConfigs response body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DescribeConfigsResponse {
    pub throttle_time_ms: i32,
    pub results: Vec<DescribeConfigsResult>,
}

/// The configs of one resource.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DescribeConfigsResult {
    pub error_code: ErrorCode,
    pub error_message: Option<String>,
    pub resource_type: i8,
    pub resource_name: String,
    pub configs: Vec<DescribeConfigsResourceResult>,
}

/// One config entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DescribeConfigsResourceResult {
    pub name: String,
    pub value: Option<String>,
    pub read_only: bool,
    /// Where the value comes from (1 dynamic topic … 5 static broker, 6 default).
    pub config_source: i8,
    pub is_sensitive: bool,
    pub synonyms: Vec<DescribeConfigsSynonym>,
    /// v3+: BOOLEAN=1, STRING, INT, SHORT, LONG, DOUBLE, LIST, CLASS, PASSWORD; 0 unknown.
    pub config_type: i8,
    /// v3+.
    pub documentation: Option<String>,
}

/// One synonym of a config (a value for the same key at another level).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DescribeConfigsSynonym {
    pub name: String,
    pub value: Option<String>,
    pub source: i8,
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

impl DescribeConfigsRequest {
    /// Decode the body at `version`; a version outside the advertised range is
    /// [`DecodeError::Unsupported`]. Trailing bytes are left in `r` for the caller.
    pub fn decode(r: &mut Reader, version: i16) -> DecodeResult<Self> {
        let flexible = check_version(version)?;
        let n = r.array_len(flexible, 3, "resources")?;
        let mut resources = Vec::with_capacity(n);
        for _ in 0..n {
            let resource_type = r.i8("resources.resource_type")?;
            let resource_name = r.string(flexible, "resources.resource_name")?;
            let configuration_keys =
                match r.nullable_array_len(flexible, 1, "configuration_keys")? {
                    None => None,
                    Some(m) => {
                        let mut keys = Vec::with_capacity(m);
                        for _ in 0..m {
                            keys.push(r.string(flexible, "configuration_keys")?);
                        }
                        Some(keys)
                    }
                };
            end_struct(r, flexible)?;
            resources.push(DescribeConfigsResource {
                resource_type,
                resource_name,
                configuration_keys,
            });
        }
        let include_synonyms = if version >= 1 {
            r.bool("include_synonyms")?
        } else {
            false
        };
        let include_documentation = if version >= 3 {
            r.bool("include_documentation")?
        } else {
            false
        };
        end_struct(r, flexible)?;
        Ok(DescribeConfigsRequest {
            resources,
            include_synonyms,
            include_documentation,
        })
    }

    /// Encode the body at `version` (which must be in the advertised range); fields the
    /// version does not carry are left out.
    pub fn encode(&self, w: &mut Writer, version: i16) {
        let flexible = version >= FLEXIBLE_FROM;
        w.array_len(self.resources.len(), flexible);
        for res in &self.resources {
            w.i8(res.resource_type);
            w.string(&res.resource_name, flexible);
            match &res.configuration_keys {
                None => w.null_array(flexible),
                Some(keys) => {
                    w.array_len(keys.len(), flexible);
                    for k in keys {
                        w.string(k, flexible);
                    }
                }
            }
            end_struct_w(w, flexible);
        }
        if version >= 1 {
            w.bool(self.include_synonyms);
        }
        if version >= 3 {
            w.bool(self.include_documentation);
        }
        end_struct_w(w, flexible);
    }
}

impl DescribeConfigsResponse {
    /// Decode the body at `version`; a version outside the advertised range is
    /// [`DecodeError::Unsupported`]. Trailing bytes are left in `r` for the caller.
    pub fn decode(r: &mut Reader, version: i16) -> DecodeResult<Self> {
        let flexible = check_version(version)?;
        let throttle_time_ms = r.i32("throttle_time_ms")?;
        let n = r.array_len(flexible, 6, "results")?;
        let mut results = Vec::with_capacity(n);
        for _ in 0..n {
            let error_code = ErrorCode(r.i16("results.error_code")?);
            let error_message = r.nullable_string(flexible, "results.error_message")?;
            let resource_type = r.i8("results.resource_type")?;
            let resource_name = r.string(flexible, "results.resource_name")?;
            let m = r.array_len(flexible, 6, "results.configs")?;
            let mut configs = Vec::with_capacity(m);
            for _ in 0..m {
                configs.push(DescribeConfigsResourceResult::decode(r, version)?);
            }
            end_struct(r, flexible)?;
            results.push(DescribeConfigsResult {
                error_code,
                error_message,
                resource_type,
                resource_name,
                configs,
            });
        }
        end_struct(r, flexible)?;
        Ok(DescribeConfigsResponse {
            throttle_time_ms,
            results,
        })
    }

    /// Encode the body at `version` (which must be in the advertised range); fields the
    /// version does not carry are left out.
    pub fn encode(&self, w: &mut Writer, version: i16) {
        let flexible = version >= FLEXIBLE_FROM;
        w.i32(self.throttle_time_ms);
        w.array_len(self.results.len(), flexible);
        for res in &self.results {
            w.i16(res.error_code.0);
            w.nullable_string(res.error_message.as_deref(), flexible);
            w.i8(res.resource_type);
            w.string(&res.resource_name, flexible);
            w.array_len(res.configs.len(), flexible);
            for c in &res.configs {
                c.encode(w, version);
            }
            end_struct_w(w, flexible);
        }
        end_struct_w(w, flexible);
    }
}

impl DescribeConfigsResourceResult {
    fn decode(r: &mut Reader, version: i16) -> DecodeResult<Self> {
        let flexible = version >= FLEXIBLE_FROM;
        let name = r.string(flexible, "configs.name")?;
        let value = r.nullable_string(flexible, "configs.value")?;
        let read_only = r.bool("configs.read_only")?;
        if version == 0 {
            let is_default = r.bool("configs.is_default")?;
            let is_sensitive = r.bool("configs.is_sensitive")?;
            return Ok(DescribeConfigsResourceResult {
                name,
                value,
                read_only,
                config_source: if is_default { SOURCE_DEFAULT } else { 0 },
                is_sensitive,
                synonyms: Vec::new(),
                config_type: 0,
                documentation: None,
            });
        }
        let config_source = r.i8("configs.config_source")?;
        let is_sensitive = r.bool("configs.is_sensitive")?;
        let n = r.array_len(flexible, 3, "configs.synonyms")?;
        let mut synonyms = Vec::with_capacity(n);
        for _ in 0..n {
            let name = r.string(flexible, "synonyms.name")?;
            let value = r.nullable_string(flexible, "synonyms.value")?;
            let source = r.i8("synonyms.source")?;
            end_struct(r, flexible)?;
            synonyms.push(DescribeConfigsSynonym {
                name,
                value,
                source,
            });
        }
        let (config_type, documentation) = if version >= 3 {
            (
                r.i8("configs.config_type")?,
                r.nullable_string(flexible, "configs.documentation")?,
            )
        } else {
            (0, None)
        };
        end_struct(r, flexible)?;
        Ok(DescribeConfigsResourceResult {
            name,
            value,
            read_only,
            config_source,
            is_sensitive,
            synonyms,
            config_type,
            documentation,
        })
    }

    fn encode(&self, w: &mut Writer, version: i16) {
        let flexible = version >= FLEXIBLE_FROM;
        w.string(&self.name, flexible);
        w.nullable_string(self.value.as_deref(), flexible);
        w.bool(self.read_only);
        if version == 0 {
            w.bool(self.config_source == SOURCE_DEFAULT);
            w.bool(self.is_sensitive);
            return;
        }
        w.i8(self.config_source);
        w.bool(self.is_sensitive);
        w.array_len(self.synonyms.len(), flexible);
        for s in &self.synonyms {
            w.string(&s.name, flexible);
            w.nullable_string(s.value.as_deref(), flexible);
            w.i8(s.source);
            end_struct_w(w, flexible);
        }
        if version >= 3 {
            w.i8(self.config_type);
            w.nullable_string(self.documentation.as_deref(), flexible);
        }
        end_struct_w(w, flexible);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn sample_request(version: i16) -> DescribeConfigsRequest {
        DescribeConfigsRequest {
            resources: vec![
                DescribeConfigsResource {
                    resource_type: 2,
                    resource_name: "orders".into(),
                    configuration_keys: None,
                },
                DescribeConfigsResource {
                    resource_type: 4,
                    resource_name: String::new(),
                    configuration_keys: Some(vec!["log.retention.ms".into(), String::new()]),
                },
                DescribeConfigsResource {
                    resource_type: 8,
                    resource_name: "1".into(),
                    configuration_keys: Some(vec![]),
                },
            ],
            include_synonyms: version >= 1,
            include_documentation: version >= 3,
        }
    }

    fn sample_response(version: i16) -> DescribeConfigsResponse {
        let v3 = version >= 3;
        let v0 = version == 0;
        let retention = DescribeConfigsResourceResult {
            name: "retention.ms".into(),
            value: Some("604800000".into()),
            read_only: false,
            config_source: 5,
            is_sensitive: false,
            synonyms: if v0 {
                vec![]
            } else {
                vec![
                    DescribeConfigsSynonym {
                        name: "log.retention.ms".into(),
                        value: Some("604800000".into()),
                        source: 4,
                    },
                    DescribeConfigsSynonym {
                        name: String::new(),
                        value: None,
                        source: 5,
                    },
                ]
            },
            config_type: if v3 { 5 } else { 0 },
            documentation: if v3 {
                Some("How long to keep data.".into())
            } else {
                None
            },
        };
        let secret = DescribeConfigsResourceResult {
            name: "ssl.key.password".into(),
            value: None,
            read_only: true,
            config_source: if v0 { 0 } else { -1 },
            is_sensitive: true,
            synonyms: vec![],
            config_type: if v3 { 9 } else { 0 },
            documentation: None,
        };
        DescribeConfigsResponse {
            throttle_time_ms: 0,
            results: vec![
                DescribeConfigsResult {
                    error_code: ErrorCode::NONE,
                    error_message: None,
                    resource_type: 2,
                    resource_name: "orders".into(),
                    configs: vec![retention, secret],
                },
                DescribeConfigsResult {
                    error_code: ErrorCode::UNKNOWN_TOPIC_OR_PARTITION,
                    error_message: Some("no such topic".into()),
                    resource_type: 2,
                    resource_name: String::new(),
                    configs: vec![],
                },
            ],
        }
    }

    fn encode_request(req: &DescribeConfigsRequest, version: i16) -> Bytes {
        let mut w = Writer::new();
        req.encode(&mut w, version);
        w.finish_contiguous()
    }

    fn encode_response(resp: &DescribeConfigsResponse, version: i16) -> Bytes {
        let mut w = Writer::new();
        resp.encode(&mut w, version);
        w.finish_contiguous()
    }

    #[test]
    fn request_round_trips_at_every_version() {
        for version in MIN_VERSION..=MAX_VERSION {
            let req = sample_request(version);
            let mut r = Reader::new(encode_request(&req, version));
            let decoded = DescribeConfigsRequest::decode(&mut r, version).unwrap();
            assert_eq!(decoded, req, "v{version}");
            assert_eq!(r.remaining(), 0, "v{version}");
        }
    }

    #[test]
    fn response_round_trips_at_every_version() {
        for version in MIN_VERSION..=MAX_VERSION {
            let resp = sample_response(version);
            let mut r = Reader::new(encode_response(&resp, version));
            let decoded = DescribeConfigsResponse::decode(&mut r, version).unwrap();
            assert_eq!(decoded, resp, "v{version}");
            assert_eq!(r.remaining(), 0, "v{version}");
        }
    }

    #[test]
    fn request_v1_known_bytes() {
        let req = DescribeConfigsRequest {
            resources: vec![DescribeConfigsResource {
                resource_type: 2,
                resource_name: "t".into(),
                configuration_keys: None,
            }],
            include_synonyms: false,
            include_documentation: false,
        };
        #[rustfmt::skip]
        let expected: &[u8] = &[
            0, 0, 0, 1,             // resources: 1
            2,                      // resource_type: topic
            0, 1, b't',             // resource_name
            0xff, 0xff, 0xff, 0xff, // configuration_keys: null
            0,                      // include_synonyms
        ];
        assert_eq!(&encode_request(&req, 1)[..], expected);
        let mut r = Reader::new(Bytes::from_static(expected));
        assert_eq!(DescribeConfigsRequest::decode(&mut r, 1).unwrap(), req);
    }

    #[test]
    fn response_v4_flexible_known_bytes() {
        let resp = DescribeConfigsResponse {
            throttle_time_ms: 0,
            results: vec![DescribeConfigsResult {
                error_code: ErrorCode::NONE,
                error_message: None,
                resource_type: 2,
                resource_name: "t".into(),
                configs: vec![DescribeConfigsResourceResult {
                    name: "a".into(),
                    value: Some("1".into()),
                    read_only: false,
                    config_source: 5,
                    is_sensitive: false,
                    synonyms: vec![],
                    config_type: 3,
                    documentation: None,
                }],
            }],
        };
        #[rustfmt::skip]
        let expected: &[u8] = &[
            0, 0, 0, 0,     // throttle_time_ms
            2,              // results: compact 1
            0, 0,           // error_code
            0,              // error_message: null
            2,              // resource_type
            2, b't',        // resource_name
            2,              // configs: compact 1
            2, b'a',        // name
            2, b'1',        // value
            0,              // read_only
            5,              // config_source
            0,              // is_sensitive
            1,              // synonyms: compact 0
            3,              // config_type: INT
            0,              // documentation: null
            0,              // config tagged fields
            0,              // result tagged fields
            0,              // top-level tagged fields
        ];
        assert_eq!(&encode_response(&resp, 4)[..], expected);
        let mut r = Reader::new(Bytes::from_static(expected));
        assert_eq!(DescribeConfigsResponse::decode(&mut r, 4).unwrap(), resp);
    }

    #[test]
    fn every_truncation_is_an_error() {
        for version in MIN_VERSION..=MAX_VERSION {
            let req = encode_request(&sample_request(version), version);
            for len in 0..req.len() {
                let mut r = Reader::new(req.slice(..len));
                let result = DescribeConfigsRequest::decode(&mut r, version);
                assert!(result.is_err(), "v{version} len {len}");
            }
            let resp = encode_response(&sample_response(version), version);
            for len in 0..resp.len() {
                let mut r = Reader::new(resp.slice(..len));
                let result = DescribeConfigsResponse::decode(&mut r, version);
                assert!(result.is_err(), "v{version} len {len}");
            }
        }
    }

    #[test]
    fn kafka_protocol_crate_agrees_at_every_version() {
        use kafka_protocol::messages as oracle;
        // The crate follows Kafka 4's schema, which no longer has v0.
        for version in 1..=MAX_VERSION {
            let req = encode_request(&sample_request(version), version);
            crate::protocol::api::testkit::oracle_agrees::<oracle::DescribeConfigsRequest>(
                &req, version,
            );
            let resp = encode_response(&sample_response(version), version);
            crate::protocol::api::testkit::oracle_agrees::<oracle::DescribeConfigsResponse>(
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
            let _ = DescribeConfigsRequest::decode(&mut Reader::new(bytes.clone()), version);
            let _ = DescribeConfigsResponse::decode(&mut Reader::new(bytes.clone()), version);
        }
    }

    #[test]
    fn random_and_mutated_bytes_never_panic() {
        let mut seed = 0xda94_2042_e4dd_58b5_u64;
        for _ in 0..4000 {
            let len = (xorshift(&mut seed) % 96) as usize;
            let bytes: Vec<u8> = (0..len).map(|_| xorshift(&mut seed) as u8).collect();
            decode_all(&Bytes::from(bytes));
        }
        let valid = [
            encode_request(&sample_request(4), 4),
            encode_response(&sample_response(3), 3),
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
    fn huge_resource_count_is_an_error() {
        let classic = Bytes::from_static(&[0x7f, 0xff, 0xff, 0xff, 0, 0]);
        assert!(matches!(
            DescribeConfigsRequest::decode(&mut Reader::new(classic), 1),
            Err(DecodeError::BadLength { .. })
        ));
        let compact = Bytes::from_static(&[0x80, 0x80, 0x80, 0x80, 0x08, 0, 0, 0]);
        assert!(matches!(
            DescribeConfigsRequest::decode(&mut Reader::new(compact), 4),
            Err(DecodeError::BadLength { .. })
        ));
        let resp = Bytes::from_static(&[0, 0, 0, 0, 0x7f, 0xff, 0xff, 0xff, 0, 0, 0, 0]);
        assert!(matches!(
            DescribeConfigsResponse::decode(&mut Reader::new(resp), 1),
            Err(DecodeError::BadLength { .. })
        ));
    }

    #[test]
    fn v0_request_has_no_include_synonyms() {
        let bytes = Bytes::from_static(&[0, 0, 0, 1, 2, 0, 1, b't', 0xff, 0xff, 0xff, 0xff]);
        let mut r = Reader::new(bytes.clone());
        let req = DescribeConfigsRequest::decode(&mut r, 0).unwrap();
        assert_eq!(r.remaining(), 0);
        assert!(!req.include_synonyms);
        assert_eq!(req.resources[0].configuration_keys, None);
        assert_eq!(encode_request(&req, 0), bytes);
    }

    #[test]
    fn v0_config_carries_is_default_instead_of_source_and_synonyms() {
        let config = DescribeConfigsResourceResult {
            name: "a".into(),
            value: Some("b".into()),
            read_only: true,
            config_source: SOURCE_DEFAULT,
            is_sensitive: false,
            synonyms: vec![DescribeConfigsSynonym {
                name: "s".into(),
                value: None,
                source: 4,
            }],
            config_type: 2,
            documentation: None,
        };
        let resp = DescribeConfigsResponse {
            throttle_time_ms: 0,
            results: vec![DescribeConfigsResult {
                error_code: ErrorCode::NONE,
                error_message: None,
                resource_type: 2,
                resource_name: "t".into(),
                configs: vec![config.clone()],
            }],
        };
        let bytes = encode_response(&resp, 0);
        let config_bytes: &[u8] = &[0, 1, b'a', 0, 1, b'b', 1, 1, 0];
        assert!(bytes.ends_with(config_bytes), "{bytes:?}");
        let decoded = DescribeConfigsResponse::decode(&mut Reader::new(bytes), 0).unwrap();
        let got = &decoded.results[0].configs[0];
        assert_eq!((got.config_source, got.synonyms.len()), (SOURCE_DEFAULT, 0));
        let mut dynamic = resp;
        dynamic.results[0].configs[0].config_source = 1;
        let bytes = encode_response(&dynamic, 0);
        assert!(bytes.ends_with(&[1, 0, 0]), "is_default false: {bytes:?}");
    }

    #[test]
    fn unsupported_version_is_an_error() {
        let bytes = encode_request(&sample_request(1), 1);
        for version in [-1, 5] {
            let err = DescribeConfigsRequest::decode(&mut Reader::new(bytes.clone()), version);
            assert!(matches!(
                err,
                Err(DecodeError::Unsupported { api_key: 32, .. })
            ));
        }
    }
}
