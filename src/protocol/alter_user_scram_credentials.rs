//! AlterUserScramCredentials (key 51), version 0, flexible (Kafka 4.1 schema).
//!
//! Deletes and upserts SCRAM credentials. An upsertion carries the salt, the iteration
//! count and the SaltedPassword (PBKDF2 output): the password itself never travels; the
//! broker derives and stores StoredKey and ServerKey.

use super::codec::{kafka_api, kafka_struct};
use bytes::Bytes;

kafka_api!(key 51, versions 0..=0, flexible 0,
    AlterUserScramCredentialsRequest, AlterUserScramCredentialsResponse,
    oracle AlterUserScramCredentialsRequest, AlterUserScramCredentialsResponse from 0);

kafka_struct! {
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct AlterUserScramCredentialsRequest {
        pub deletions: Vec<ScramCredentialDeletion> [0..],
        pub upsertions: Vec<ScramCredentialUpsertion> [0..],
    }
}

kafka_struct! {
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct ScramCredentialDeletion {
        pub name: String [0..],
        pub mechanism: i8 [0..],
    }
}

kafka_struct! {
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct ScramCredentialUpsertion {
        pub name: String [0..],
        pub mechanism: i8 [0..],
        pub iterations: i32 [0..],
        pub salt: Bytes [0..],
        pub salted_password: Bytes [0..],
    }
}

kafka_struct! {
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct AlterUserScramCredentialsResponse {
        pub throttle_time_ms: i32 [0..],
        pub results: Vec<AlterUserScramCredentialsResult> [0..],
    }
}

kafka_struct! {
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct AlterUserScramCredentialsResult {
        pub user: String [0..],
        pub error_code: i16 [0..],
        pub error_message: Option<String> [0..],
    }
}
