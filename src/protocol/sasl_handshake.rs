//! SaslHandshake (key 17), versions 0–1, never flexible (Kafka 4.1 schema).
//!
//! Names the SASL mechanism a SASL listener's connection will use. After v0 the SASL tokens
//! follow as raw frames; after v1 they travel in SaslAuthenticate requests.

use super::codec::{kafka_api, kafka_struct};

kafka_api!(key 17, versions 0..=1, flexible i16::MAX,
    SaslHandshakeRequest, SaslHandshakeResponse,
    oracle SaslHandshakeRequest, SaslHandshakeResponse from 0);

kafka_struct! {
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct SaslHandshakeRequest {
        pub mechanism: String [0..],
    }
}

kafka_struct! {
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct SaslHandshakeResponse {
        pub error_code: i16 [0..],
        pub mechanisms: Vec<String> [0..],
    }
}
