//! InitProducerId (key 22), versions 0–5, flexible from 2 (Kafka 4.1 schema).
//!
//! An idempotent producer (null `transactional_id`) asks for a producer id and epoch; from v3
//! it may pass its current (id, epoch) to bump the epoch instead of getting a new id. v6
//! (KIP-939 two-phase commit) is not served.

use super::codec::{kafka_api, kafka_struct};

kafka_api!(key 22, versions 0..=5, flexible 2,
    InitProducerIdRequest, InitProducerIdResponse,
    oracle InitProducerIdRequest, InitProducerIdResponse from 0);

kafka_struct! {
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct InitProducerIdRequest {
        /// `None` for an idempotent (non-transactional) producer.
        pub transactional_id: Option<String> [0..],
        pub transaction_timeout_ms: i32 [0..],
        /// −1 when absent.
        pub producer_id: i64 [3.., default -1],
        /// −1 when absent.
        pub producer_epoch: i16 [3.., default -1],
    }
}

kafka_struct! {
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub struct InitProducerIdResponse {
        pub throttle_time_ms: i32 [0..],
        pub error_code: i16 [0..],
        pub producer_id: i64 [0..],
        pub producer_epoch: i16 [0..],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::api::testkit::*;
    use bytes::Bytes;
    use kafka_protocol::messages as kp;

    fn sample_request() -> InitProducerIdRequest {
        InitProducerIdRequest {
            transactional_id: Some("tx-1".into()),
            transaction_timeout_ms: 60_000,
            producer_id: 1000,
            producer_epoch: 3,
        }
    }

    const SAMPLE_RESPONSE: InitProducerIdResponse = InitProducerIdResponse {
        throttle_time_ms: 0,
        error_code: 0,
        producer_id: 4000,
        producer_epoch: 0,
    };

    #[test]
    fn round_trips_every_version() {
        let idempotent = InitProducerIdRequest {
            transactional_id: None,
            ..sample_request()
        };
        for v in MIN_VERSION..=MAX_VERSION {
            for req in [sample_request(), idempotent.clone()] {
                let (got, b) = round_trip(
                    &req,
                    v,
                    InitProducerIdRequest::encode,
                    InitProducerIdRequest::decode,
                );
                assert_eq!(got.transactional_id, req.transactional_id);
                assert_eq!(got.producer_id, if v >= 3 { 1000 } else { -1 });
                truncations_fail(&b, v, InitProducerIdRequest::decode);
                oracle_agrees::<kp::InitProducerIdRequest>(&b, v);
            }
            let (got, b) = round_trip(
                &SAMPLE_RESPONSE,
                v,
                InitProducerIdResponse::encode,
                InitProducerIdResponse::decode,
            );
            assert_eq!(got, SAMPLE_RESPONSE);
            truncations_fail(&b, v, InitProducerIdResponse::decode);
            oracle_agrees::<kp::InitProducerIdResponse>(&b, v);
        }
    }

    #[test]
    fn v0_request_known_bytes() {
        let b = encode(
            &InitProducerIdRequest {
                transactional_id: None,
                transaction_timeout_ms: 1,
                producer_id: -1,
                producer_epoch: -1,
            },
            0,
            InitProducerIdRequest::encode,
        );
        assert_eq!(&b[..], &[0xff, 0xff, 0, 0, 0, 1]);
    }

    #[test]
    fn random_bytes_never_panic_any_decoder() {
        let seeds: Vec<Bytes> = (0..=5)
            .flat_map(|v| {
                [
                    encode(&sample_request(), v, InitProducerIdRequest::encode),
                    encode(&SAMPLE_RESPONSE, v, InitProducerIdResponse::encode),
                ]
            })
            .collect();
        random_bytes_never_panic(&seeds, 0..=5, InitProducerIdRequest::decode, 2000);
        random_bytes_never_panic(&seeds, 0..=5, InitProducerIdResponse::decode, 2000);
    }
}
