//! DescribeAcls (key 29), versions 1–3, flexible from 2. Schema: Kafka 4.1
//! `DescribeAclsRequest.json` / `DescribeAclsResponse.json`. The request is one filter
//! (`auth::acl::AclFilter`); the response groups the matching ACLs by resource pattern.

use super::codec::{kafka_api, kafka_struct};

kafka_api!(key 29, versions 1..=3, flexible 2,
    DescribeAclsRequest, DescribeAclsResponse,
    oracle DescribeAclsRequest, DescribeAclsResponse from 1);

kafka_struct! {
    /// DescribeAcls request body: one filter; null strings match any value.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct DescribeAclsRequest {
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
    /// DescribeAcls response body.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct DescribeAclsResponse {
        pub throttle_time_ms: i32 [0..],
        pub error_code: i16 [0..],
        pub error_message: Option<String> [0..],
        pub resources: Vec<DescribeAclsResource> [0..],
    }
}

kafka_struct! {
    /// One resource pattern and its ACLs.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct DescribeAclsResource {
        pub resource_type: i8 [0..],
        pub resource_name: String [0..],
        pub pattern_type: i8 [0..],
        pub acls: Vec<AclDescription> [0..],
    }
}

kafka_struct! {
    /// One ACL of a resource pattern.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct AclDescription {
        pub principal: String [0..],
        pub host: String [0..],
        pub operation: i8 [0..],
        pub permission_type: i8 [0..],
    }
}
