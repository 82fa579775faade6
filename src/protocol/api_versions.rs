//! ApiVersions (key 18), versions 0–4, flexible from 3 (Kafka 4.1 schema).
//!
//! The reply lists [`super::api::advertised`], so what we advertise is exactly what the API
//! modules declare. Two compatibility rules live here:
//! * the v3+ body has tagged fields (SupportedFeatures, FinalizedFeaturesEpoch, …); we never
//!   emit them (the table does not list them), because default-valued tags broke librdkafka
//!   before 2.2.0;
//! * KIP-511: a request at a version we do not serve gets UNSUPPORTED_VERSION encoded with the
//!   v0 body ([`ApiVersionsResponse::unsupported_fallback`]), which every client can read.
//!
//! The response header is always v0 (see [`super::header::response_header_version`]).

use super::api;
use super::codec::{kafka_api, kafka_struct};
use super::error_code::ErrorCode;
use super::wire::{DecodeResult, Reader};

kafka_api!(key 18, versions 0..=4, flexible 3,
    ApiVersionsRequest, ApiVersionsResponse,
    oracle ApiVersionsRequest, ApiVersionsResponse from 0);

kafka_struct! {
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct ApiVersionsRequest {
        pub client_software_name: String [3..],
        pub client_software_version: String [3..],
    }
}

kafka_struct! {
    /// One (api_key, min, max) row of the reply.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub struct ApiVersion {
        pub api_key: i16 [0..],
        pub min_version: i16 [0..],
        pub max_version: i16 [0..],
    }
}

kafka_struct! {
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct ApiVersionsResponse {
        pub error_code: i16 [0..],
        pub api_keys: Vec<ApiVersion> [0..],
        pub throttle_time_ms: i32 [1..],
    }
}

impl ApiVersionsResponse {
    /// The normal reply: every served API with its advertised range.
    pub fn from_advertised() -> Self {
        let api_keys = api::advertised()
            .iter()
            .map(|&(api_key, min_version, max_version)| ApiVersion {
                api_key,
                min_version,
                max_version,
            })
            .collect();
        ApiVersionsResponse {
            error_code: ErrorCode::NONE.0,
            api_keys,
            throttle_time_ms: 0,
        }
    }

    /// KIP-511 reply to an ApiVersions request at a version we do not serve: error
    /// UNSUPPORTED_VERSION plus the full table (the client reads our ApiVersions range from
    /// it and retries). Encode it with version 0 and response header v0.
    pub fn unsupported_fallback() -> Self {
        ApiVersionsResponse {
            error_code: ErrorCode::UNSUPPORTED_VERSION.0,
            ..Self::from_advertised()
        }
    }

    /// Client side, KIP-511 aware: if the error code is UNSUPPORTED_VERSION the body is in the
    /// v0 schema whatever version was asked, so it is decoded as v0 (the caller then retries
    /// with the highest version both sides share). Returns the version actually decoded.
    pub fn decode_with_fallback(r: &mut Reader, version: i16) -> DecodeResult<(Self, i16)> {
        let error_code = r.clone().i16("error_code")?;
        let version = if error_code == ErrorCode::UNSUPPORTED_VERSION.0 {
            0
        } else {
            version
        };
        Ok((Self::decode(r, version)?, version))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::api::testkit::*;
    use bytes::Bytes;

    fn small_response() -> ApiVersionsResponse {
        ApiVersionsResponse {
            error_code: 0,
            api_keys: vec![ApiVersion {
                api_key: 18,
                min_version: 0,
                max_version: 4,
            }],
            throttle_time_ms: 0,
        }
    }

    #[test]
    fn v0_response_known_bytes() {
        let b = encode(&small_response(), 0, ApiVersionsResponse::encode);
        assert_eq!(&b[..], &[0, 0, 0, 0, 0, 1, 0, 18, 0, 0, 0, 4]);
    }

    #[test]
    fn v3_response_known_bytes_has_no_feature_tags() {
        let b = encode(&small_response(), 3, ApiVersionsResponse::encode);
        let expected: &[u8] = &[
            0, 0, // error_code
            2, // compact array: 1 element
            0, 18, 0, 0, 0, 4, 0, // key, min, max, no tags
            0, 0, 0, 0, // throttle_time_ms
            0, // no tagged fields at all
        ];
        assert_eq!(&b[..], expected);
    }

    #[test]
    fn fallback_is_v0_readable_and_lists_api_versions() {
        let fb = ApiVersionsResponse::unsupported_fallback();
        assert_eq!(fb.error_code, 35);
        let b = encode(&fb, 0, ApiVersionsResponse::encode);
        let (back, version) =
            ApiVersionsResponse::decode_with_fallback(&mut Reader::new(b.clone()), 3).unwrap();
        assert_eq!(version, 0);
        assert_eq!(back, decode_all(b, 0, ApiVersionsResponse::decode).unwrap());
        assert!(back
            .api_keys
            .iter()
            .any(|k| k.api_key == API_KEY && k.max_version == MAX_VERSION));
    }

    #[test]
    fn unknown_tags_are_skipped_and_bad_versions_refused() {
        // v3 request with one unknown tag (tag 5, 2 bytes).
        let b = Bytes::from_static(&[2, b'a', 2, b'1', 1, 5, 2, 0xaa, 0xbb]);
        let req = decode_all(b, 3, ApiVersionsRequest::decode).unwrap();
        assert_eq!(req.client_software_name, "a");
        assert!(ApiVersionsRequest::decode(&mut Reader::new(Bytes::new()), 5).is_err());
        assert!(ApiVersionsResponse::decode(&mut Reader::new(Bytes::new()), -1).is_err());
    }

    /// What librdkafka sends first: ApiVersions v3 with header v2 and client software fields.
    #[test]
    fn librdkafka_style_v3_request_known_bytes() {
        use crate::protocol::header::RequestHeader;
        let mut wire = vec![0, 18, 0, 3, 0, 0, 0, 1, 0, 7];
        wire.extend_from_slice(b"rdkafka");
        wire.push(0); // header tags
        wire.push(11);
        wire.extend_from_slice(b"librdkafka");
        wire.push(6);
        wire.extend_from_slice(b"2.0.2");
        wire.push(0); // body tags
        let mut r = Reader::new(Bytes::from(wire));
        let h = RequestHeader::decode_any(&mut r).unwrap();
        assert_eq!((h.api_key, h.api_version, h.correlation_id), (18, 3, 1));
        assert_eq!(h.client_id.as_deref(), Some("rdkafka"));
        let req = ApiVersionsRequest::decode(&mut r, h.api_version).unwrap();
        assert_eq!(req.client_software_name, "librdkafka");
        assert_eq!(req.client_software_version, "2.0.2");
        assert_eq!(r.remaining(), 0);
    }
}
