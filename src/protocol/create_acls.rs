//! CreateAcls (key 30), versions 1–3, flexible from 2. Schema: Kafka 4.1
//! `CreateAclsRequest.json` / `CreateAclsResponse.json`. v0 (no pattern type) was removed in
//! Kafka 4.0; v1–3 carry the same fields. One result per creation, in request order.

use super::codec::{kafka_api, kafka_struct};

kafka_api!(key 30, versions 1..=3, flexible 2,
    CreateAclsRequest, CreateAclsResponse,
    oracle CreateAclsRequest, CreateAclsResponse from 1);

kafka_struct! {
    /// CreateAcls request body.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct CreateAclsRequest {
        pub creations: Vec<AclCreation> [0..],
    }
}

kafka_struct! {
    /// One ACL to create; the codes are `auth::acl`'s enums.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct AclCreation {
        pub resource_type: i8 [0..],
        pub resource_name: String [0..],
        pub resource_pattern_type: i8 [0..],
        pub principal: String [0..],
        pub host: String [0..],
        pub operation: i8 [0..],
        pub permission_type: i8 [0..],
    }
}

kafka_struct! {
    /// CreateAcls response body.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct CreateAclsResponse {
        pub throttle_time_ms: i32 [0..],
        pub results: Vec<AclCreationResult> [0..],
    }
}

kafka_struct! {
    /// The result of one creation.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct AclCreationResult {
        pub error_code: i16 [0..],
        pub error_message: Option<String> [0..],
    }
}
