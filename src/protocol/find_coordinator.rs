//! FindCoordinator (key 10), versions 0–4, flexible from 3 (Kafka 4.1 schema).
//!
//! v0–3 ask for one key and get one coordinator back in top-level fields; v4 (KIP-699) batches
//! keys and answers with a `coordinators` array. Both shapes live in one struct each; fields
//! a version lacks hold their defaults. v5–6 (share-group keys) are not served.

use super::wire::{check_version, DecodeResult, Reader, Writer};

/// Kafka API key of FindCoordinator.
pub const API_KEY: i16 = 10;
/// Lowest version we advertise.
pub const MIN_VERSION: i16 = 0;
/// Highest version we advertise.
pub const MAX_VERSION: i16 = 4;
/// First flexible (KIP-482) version.
pub const FLEXIBLE_FROM: i16 = 3;

/// `key_type` of a consumer group.
pub const KEY_TYPE_GROUP: i8 = 0;
/// `key_type` of a transactional id.
pub const KEY_TYPE_TRANSACTION: i8 = 1;

fn flexible(version: i16) -> bool {
    version >= FLEXIBLE_FROM
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FindCoordinatorRequest {
    /// v0–3; "" from v4.
    pub key: String,
    /// v1+; 0 = group.
    pub key_type: i8,
    /// v4+.
    pub coordinator_keys: Vec<String>,
}

impl FindCoordinatorRequest {
    pub fn decode(r: &mut Reader, version: i16) -> DecodeResult<Self> {
        check_version(API_KEY, version, MIN_VERSION, MAX_VERSION)?;
        let flex = flexible(version);
        let key = if version <= 3 {
            r.string(flex, "key")?
        } else {
            String::new()
        };
        let key_type = if version >= 1 {
            r.i8("key_type")?
        } else {
            KEY_TYPE_GROUP
        };
        let coordinator_keys = if version >= 4 {
            r.array(flex, 1, "coordinator_keys", |r| {
                r.string(flex, "coordinator_key")
            })?
        } else {
            Vec::new()
        };
        r.tags_if(flex)?;
        Ok(FindCoordinatorRequest {
            key,
            key_type,
            coordinator_keys,
        })
    }

    pub fn encode(&self, w: &mut Writer, version: i16) {
        let flex = flexible(version);
        if version <= 3 {
            w.string(&self.key, flex);
        }
        if version >= 1 {
            w.i8(self.key_type);
        }
        if version >= 4 {
            w.array(&self.coordinator_keys, flex, |w, k| w.string(k, flex));
        }
        w.tags_if(flex);
    }

    /// The keys asked for, whatever the version: `[key]` before v4.
    pub fn keys(&self, version: i16) -> Vec<&str> {
        if version >= 4 {
            self.coordinator_keys.iter().map(String::as_str).collect()
        } else {
            vec![self.key.as_str()]
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FindCoordinatorResponse {
    /// v1+.
    pub throttle_time_ms: i32,
    /// v0–3.
    pub error_code: i16,
    /// v1–3.
    pub error_message: Option<String>,
    /// v0–3.
    pub node_id: i32,
    /// v0–3.
    pub host: String,
    /// v0–3.
    pub port: i32,
    /// v4+.
    pub coordinators: Vec<Coordinator>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Coordinator {
    pub key: String,
    pub node_id: i32,
    pub host: String,
    pub port: i32,
    pub error_code: i16,
    pub error_message: Option<String>,
}

impl FindCoordinatorResponse {
    /// Answer for `keys` (as from [`FindCoordinatorRequest::keys`]) at `version`: each key
    /// gets `coordinator`'s address and error. Before v4 only the first key is answered.
    pub fn for_keys(version: i16, keys: &[&str], coordinator: &Coordinator) -> Self {
        if version >= 4 {
            let coordinators = keys
                .iter()
                .map(|k| Coordinator {
                    key: (*k).to_owned(),
                    ..coordinator.clone()
                })
                .collect();
            return FindCoordinatorResponse {
                coordinators,
                ..Self::single(coordinator)
            };
        }
        Self::single(coordinator)
    }

    fn single(c: &Coordinator) -> Self {
        FindCoordinatorResponse {
            throttle_time_ms: 0,
            error_code: c.error_code,
            error_message: c.error_message.clone(),
            node_id: c.node_id,
            host: c.host.clone(),
            port: c.port,
            coordinators: Vec::new(),
        }
    }

    pub fn encode(&self, w: &mut Writer, version: i16) {
        let flex = flexible(version);
        if version >= 1 {
            w.i32(self.throttle_time_ms);
        }
        if version <= 3 {
            w.i16(self.error_code);
            if version >= 1 {
                w.nullable_string(self.error_message.as_deref(), flex);
            }
            w.i32(self.node_id);
            w.string(&self.host, flex);
            w.i32(self.port);
        } else {
            w.array(&self.coordinators, flex, |w, c| {
                w.string(&c.key, flex);
                w.i32(c.node_id);
                w.string(&c.host, flex);
                w.i32(c.port);
                w.i16(c.error_code);
                w.nullable_string(c.error_message.as_deref(), flex);
                w.tags_if(flex);
            });
        }
        w.tags_if(flex);
    }

    pub fn decode(r: &mut Reader, version: i16) -> DecodeResult<Self> {
        check_version(API_KEY, version, MIN_VERSION, MAX_VERSION)?;
        let flex = flexible(version);
        let mut resp = FindCoordinatorResponse {
            throttle_time_ms: if version >= 1 {
                r.i32("throttle_time_ms")?
            } else {
                0
            },
            error_code: 0,
            error_message: None,
            node_id: 0,
            host: String::new(),
            port: 0,
            coordinators: Vec::new(),
        };
        if version <= 3 {
            resp.error_code = r.i16("error_code")?;
            if version >= 1 {
                resp.error_message = r.nullable_string(flex, "error_message")?;
            }
            resp.node_id = r.i32("node_id")?;
            resp.host = r.string(flex, "host")?;
            resp.port = r.i32("port")?;
        } else {
            resp.coordinators = r.array(flex, 14, "coordinators", |r| {
                let c = Coordinator {
                    key: r.string(flex, "key")?,
                    node_id: r.i32("node_id")?,
                    host: r.string(flex, "host")?,
                    port: r.i32("port")?,
                    error_code: r.i16("error_code")?,
                    error_message: r.nullable_string(flex, "error_message")?,
                };
                r.tags_if(flex)?;
                Ok(c)
            })?;
        }
        r.tags_if(flex)?;
        Ok(resp)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::api::testkit::*;
    use bytes::Bytes;
    use kafka_protocol::messages as kp;

    fn sample_request() -> FindCoordinatorRequest {
        FindCoordinatorRequest {
            key: "group-a".into(),
            key_type: KEY_TYPE_TRANSACTION,
            coordinator_keys: vec!["group-a".into(), "group-b".into()],
        }
    }

    fn coordinator() -> Coordinator {
        Coordinator {
            key: String::new(),
            node_id: 1,
            host: "localhost".into(),
            port: 9092,
            error_code: 0,
            error_message: Some("fine".into()),
        }
    }

    #[test]
    fn round_trips_every_version() {
        for v in MIN_VERSION..=MAX_VERSION {
            let (got, b) = round_trip(
                &sample_request(),
                v,
                FindCoordinatorRequest::encode,
                FindCoordinatorRequest::decode,
            );
            assert_eq!(
                got.keys(v),
                if v >= 4 {
                    vec!["group-a", "group-b"]
                } else {
                    vec!["group-a"]
                }
            );
            assert_eq!(
                got.key_type,
                if v >= 1 {
                    KEY_TYPE_TRANSACTION
                } else {
                    KEY_TYPE_GROUP
                }
            );
            truncations_fail(&b, v, FindCoordinatorRequest::decode);
            oracle_agrees::<kp::FindCoordinatorRequest>(&b, v);

            let resp =
                FindCoordinatorResponse::for_keys(v, &sample_request().keys(v), &coordinator());
            let (got, b) = round_trip(
                &resp,
                v,
                FindCoordinatorResponse::encode,
                FindCoordinatorResponse::decode,
            );
            if v >= 4 {
                assert_eq!(got.coordinators.len(), 2);
                assert_eq!(got.coordinators[1].key, "group-b");
                assert_eq!(got.coordinators[1].port, 9092);
            } else {
                assert_eq!(
                    (got.node_id, got.host.as_str(), got.port),
                    (1, "localhost", 9092)
                );
                assert_eq!(got.error_message.is_some(), v >= 1);
            }
            truncations_fail(&b, v, FindCoordinatorResponse::decode);
            oracle_agrees::<kp::FindCoordinatorResponse>(&b, v);
        }
    }

    #[test]
    fn random_bytes_never_panic_any_decoder() {
        let seeds: Vec<Bytes> = (0..=4)
            .flat_map(|v| {
                let resp = FindCoordinatorResponse::for_keys(v, &["g"], &coordinator());
                [
                    encode(&sample_request(), v, FindCoordinatorRequest::encode),
                    encode(&resp, v, FindCoordinatorResponse::encode),
                ]
            })
            .collect();
        random_bytes_never_panic(&seeds, 0..=4, FindCoordinatorRequest::decode, 2000);
        random_bytes_never_panic(&seeds, 0..=4, FindCoordinatorResponse::decode, 2000);
    }
}
