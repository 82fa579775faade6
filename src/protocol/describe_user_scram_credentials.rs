//! DescribeUserScramCredentials (key 50), version 0, flexible (Kafka 4.1 schema).
//!
//! Lists users' SCRAM mechanisms and iteration counts (never salts or keys). A null user
//! list means every user.

use super::codec::{kafka_api, kafka_struct};

kafka_api!(key 50, versions 0..=0, flexible 0,
    DescribeUserScramCredentialsRequest, DescribeUserScramCredentialsResponse,
    oracle DescribeUserScramCredentialsRequest, DescribeUserScramCredentialsResponse from 0);

kafka_struct! {
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct DescribeUserScramCredentialsRequest {
        pub users: Option<Vec<UserName>> [0..],
    }
}

kafka_struct! {
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct UserName {
        pub name: String [0..],
    }
}

kafka_struct! {
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct DescribeUserScramCredentialsResponse {
        pub throttle_time_ms: i32 [0..],
        pub error_code: i16 [0..],
        pub error_message: Option<String> [0..],
        pub results: Vec<DescribeUserScramCredentialsResult> [0..],
    }
}

kafka_struct! {
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct DescribeUserScramCredentialsResult {
        pub user: String [0..],
        pub error_code: i16 [0..],
        pub error_message: Option<String> [0..],
        pub credential_infos: Vec<CredentialInfo> [0..],
    }
}

kafka_struct! {
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct CredentialInfo {
        pub mechanism: i8 [0..],
        pub iterations: i32 [0..],
    }
}
