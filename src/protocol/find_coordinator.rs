//! FindCoordinator (key 10), versions 0–4, flexible from 3 (Kafka 4.1 schema).
//!
//! v0–3 ask for one key and get one coordinator back in top-level fields; v4 (KIP-699) batches
//! keys and answers with a `coordinators` array. Both shapes live in one struct each; fields
//! a version lacks hold their defaults. v5–6 (share-group keys) are not served.

use super::codec::{kafka_api, kafka_struct};

kafka_api!(key 10, versions 0..=4, flexible 3,
    FindCoordinatorRequest, FindCoordinatorResponse,
    oracle FindCoordinatorRequest, FindCoordinatorResponse from 0);

/// `key_type` of a consumer group.
pub const KEY_TYPE_GROUP: i8 = 0;
/// `key_type` of a transactional id.
pub const KEY_TYPE_TRANSACTION: i8 = 1;

kafka_struct! {
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct FindCoordinatorRequest {
        /// "" from v4.
        pub key: String [0..=3],
        pub key_type: i8 [1.., default KEY_TYPE_GROUP],
        pub coordinator_keys: Vec<String> [4..],
    }
}

impl FindCoordinatorRequest {
    /// The keys asked for, whatever the version: `[key]` before v4.
    pub fn keys(&self, version: i16) -> Vec<&str> {
        if version >= 4 {
            self.coordinator_keys.iter().map(String::as_str).collect()
        } else {
            vec![self.key.as_str()]
        }
    }
}

kafka_struct! {
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct FindCoordinatorResponse {
        pub throttle_time_ms: i32 [1..],
        pub error_code: i16 [0..=3],
        pub error_message: Option<String> [1..=3],
        pub node_id: i32 [0..=3],
        pub host: String [0..=3],
        pub port: i32 [0..=3],
        pub coordinators: Vec<Coordinator> [4..],
    }
}

kafka_struct! {
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct Coordinator {
        pub key: String [0..],
        pub node_id: i32 [0..],
        pub host: String [0..],
        pub port: i32 [0..],
        pub error_code: i16 [0..],
        pub error_message: Option<String> [0..],
    }
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
