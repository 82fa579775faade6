//! SaslAuthenticate (key 36), versions 0–2, flexible from 2 (Kafka 4.1 schema).
//!
//! Carries one SASL token each way. v1 adds the KIP-368 session lifetime to the answer.

use super::codec::{kafka_api, kafka_struct};
use bytes::Bytes;

kafka_api!(key 36, versions 0..=2, flexible 2,
    SaslAuthenticateRequest, SaslAuthenticateResponse,
    oracle SaslAuthenticateRequest, SaslAuthenticateResponse from 0);

kafka_struct! {
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct SaslAuthenticateRequest {
        pub auth_bytes: Bytes [0..],
    }
}

kafka_struct! {
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct SaslAuthenticateResponse {
        pub error_code: i16 [0..],
        pub error_message: Option<String> [0..],
        pub auth_bytes: Bytes [0..],
        pub session_lifetime_ms: i64 [1..],
    }
}
