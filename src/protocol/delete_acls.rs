//! DeleteAcls (key 31), versions 1–3, flexible from 2. Schema: Kafka 4.1
//! `DeleteAclsRequest.json` / `DeleteAclsResponse.json`. Each filter deletes every ACL it
//! matches; its result lists them.

use super::codec::{kafka_api, kafka_struct};

kafka_api!(key 31, versions 1..=3, flexible 2,
    DeleteAclsRequest, DeleteAclsResponse,
    oracle DeleteAclsRequest, DeleteAclsResponse from 1);

kafka_struct! {
    /// DeleteAcls request body.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct DeleteAclsRequest {
        pub filters: Vec<DeleteAclsFilter> [0..],
    }
}

kafka_struct! {
    /// One filter (as DescribeAcls's); null strings match any value.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct DeleteAclsFilter {
        pub resource_type_filter: i8 [0..],
        pub resource_name_filter: Option<String> [0..],
        pub pattern_type_filter: i8 [0..],
        pub principal_filter: Option<String> [0..],
        pub host_filter: Option<String> [0..],
        pub operation: i8 [0..],
        pub permission_type: i8 [0..],
    }
}

kafka_struct! {
    /// DeleteAcls response body.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct DeleteAclsResponse {
        pub throttle_time_ms: i32 [0..],
        pub filter_results: Vec<DeleteAclsFilterResult> [0..],
    }
}

kafka_struct! {
    /// The result of one filter.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct DeleteAclsFilterResult {
        pub error_code: i16 [0..],
        pub error_message: Option<String> [0..],
        pub matching_acls: Vec<DeleteAclsMatchingAcl> [0..],
    }
}

kafka_struct! {
    /// One deleted ACL.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct DeleteAclsMatchingAcl {
        pub error_code: i16 [0..],
        pub error_message: Option<String> [0..],
        pub resource_type: i8 [0..],
        pub resource_name: String [0..],
        pub pattern_type: i8 [0..],
        pub principal: String [0..],
        pub host: String [0..],
        pub operation: i8 [0..],
        pub permission_type: i8 [0..],
    }
}
