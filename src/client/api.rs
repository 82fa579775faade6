//! The requests the client sends, tied to their response types, and version negotiation.
//!
//! [`Api`] pairs a request body from `protocol` with its response decoder and the version
//! range this client can speak; [`VersionTable`] holds what the broker advertised in
//! ApiVersions, and [`VersionTable::pick`] chooses the highest version both sides know.

use super::ClientError;
use crate::protocol::api_versions::ApiVersionsResponse;
use crate::protocol::create_topics::{CreateTopicsRequest, CreateTopicsResponse};
use crate::protocol::fetch::{FetchRequest, FetchResponse};
use crate::protocol::list_offsets::{ListOffsetsRequest, ListOffsetsResponse};
use crate::protocol::metadata::{MetadataRequest, MetadataResponse};
use crate::protocol::produce::{ProduceRequest, ProduceResponse};
use crate::protocol::{
    alter_user_scram_credentials, describe_user_scram_credentials, sasl_authenticate,
    sasl_handshake,
};
use crate::protocol::{
    create_partitions, delete_groups, delete_topics, describe_cluster, describe_configs,
    describe_groups, find_coordinator, incremental_alter_configs, list_groups, offset_commit,
    offset_fetch,
};
use crate::protocol::{create_topics, fetch, list_offsets, metadata, produce};
use crate::protocol::{DecodeResult, Reader, Writer};

/// A request body this client sends, with its response type.
pub trait Api {
    const KEY: i16;
    /// Lowest version this client speaks.
    const MIN_VERSION: i16;
    /// Highest version this client speaks.
    const MAX_VERSION: i16;
    type Response;
    fn encode(&self, w: &mut Writer, version: i16);
    fn decode_response(r: &mut Reader, version: i16) -> DecodeResult<Self::Response>;
}

macro_rules! api {
    ($req:ty, $resp:ty, $module:ident, $min:expr) => {
        impl Api for $req {
            const KEY: i16 = $module::API_KEY;
            const MIN_VERSION: i16 = $min;
            const MAX_VERSION: i16 = $module::MAX_VERSION;
            type Response = $resp;
            fn encode(&self, w: &mut Writer, version: i16) {
                <$req>::encode(self, w, version)
            }
            fn decode_response(r: &mut Reader, version: i16) -> DecodeResult<$resp> {
                <$resp>::decode(r, version)
            }
        }
    };
}

api!(
    sasl_handshake::SaslHandshakeRequest,
    sasl_handshake::SaslHandshakeResponse,
    sasl_handshake,
    sasl_handshake::MIN_VERSION
);
api!(
    sasl_authenticate::SaslAuthenticateRequest,
    sasl_authenticate::SaslAuthenticateResponse,
    sasl_authenticate,
    sasl_authenticate::MIN_VERSION
);
api!(
    describe_user_scram_credentials::DescribeUserScramCredentialsRequest,
    describe_user_scram_credentials::DescribeUserScramCredentialsResponse,
    describe_user_scram_credentials,
    describe_user_scram_credentials::MIN_VERSION
);
api!(
    alter_user_scram_credentials::AlterUserScramCredentialsRequest,
    alter_user_scram_credentials::AlterUserScramCredentialsResponse,
    alter_user_scram_credentials,
    alter_user_scram_credentials::MIN_VERSION
);
api!(
    ProduceRequest,
    ProduceResponse,
    produce,
    produce::MIN_STORED_VERSION
);
api!(FetchRequest, FetchResponse, fetch, fetch::MIN_BATCH_VERSION);
api!(
    MetadataRequest,
    MetadataResponse,
    metadata,
    metadata::MIN_VERSION
);
api!(
    ListOffsetsRequest,
    ListOffsetsResponse,
    list_offsets,
    list_offsets::MIN_VERSION
);
api!(
    CreateTopicsRequest,
    CreateTopicsResponse,
    create_topics,
    create_topics::MIN_VERSION
);

api!(
    create_partitions::CreatePartitionsRequest,
    create_partitions::CreatePartitionsResponse,
    create_partitions,
    create_partitions::MIN_VERSION
);
api!(
    delete_topics::DeleteTopicsRequest,
    delete_topics::DeleteTopicsResponse,
    delete_topics,
    delete_topics::MIN_VERSION
);
api!(
    describe_cluster::DescribeClusterRequest,
    describe_cluster::DescribeClusterResponse,
    describe_cluster,
    describe_cluster::MIN_VERSION
);
api!(
    describe_configs::DescribeConfigsRequest,
    describe_configs::DescribeConfigsResponse,
    describe_configs,
    describe_configs::MIN_VERSION
);
api!(
    incremental_alter_configs::IncrementalAlterConfigsRequest,
    incremental_alter_configs::IncrementalAlterConfigsResponse,
    incremental_alter_configs,
    incremental_alter_configs::MIN_VERSION
);
api!(
    list_groups::ListGroupsRequest,
    list_groups::ListGroupsResponse,
    list_groups,
    list_groups::MIN_VERSION
);
api!(
    describe_groups::DescribeGroupsRequest,
    describe_groups::DescribeGroupsResponse,
    describe_groups,
    describe_groups::MIN_VERSION
);
api!(
    delete_groups::DeleteGroupsRequest,
    delete_groups::DeleteGroupsResponse,
    delete_groups,
    delete_groups::MIN_VERSION
);
api!(
    offset_fetch::OffsetFetchRequest,
    offset_fetch::OffsetFetchResponse,
    offset_fetch,
    offset_fetch::MIN_VERSION
);
api!(
    offset_commit::OffsetCommitRequest,
    offset_commit::OffsetCommitResponse,
    offset_commit,
    offset_commit::MIN_VERSION
);
api!(
    find_coordinator::FindCoordinatorRequest,
    find_coordinator::FindCoordinatorResponse,
    find_coordinator,
    find_coordinator::MIN_VERSION
);

/// The broker's advertised (api_key, min, max) rows.
#[derive(Debug, Clone, Default)]
pub struct VersionTable {
    rows: Vec<(i16, i16, i16)>,
}

impl VersionTable {
    pub fn from_response(resp: &ApiVersionsResponse) -> Self {
        VersionTable {
            rows: resp
                .api_keys
                .iter()
                .map(|k| (k.api_key, k.min_version, k.max_version))
                .collect(),
        }
    }

    /// The advertised (api_key, min_version, max_version) rows, in the broker's order.
    pub fn rows(&self) -> &[(i16, i16, i16)] {
        &self.rows
    }

    /// Highest version in both the broker's range and `A`'s.
    pub fn pick<A: Api>(&self) -> Result<i16, ClientError> {
        let &(_, broker_min, broker_max) = self
            .rows
            .iter()
            .find(|(key, _, _)| *key == A::KEY)
            .ok_or(ClientError::Unsupported { api_key: A::KEY })?;
        let version = broker_max.min(A::MAX_VERSION);
        if version < broker_min.max(A::MIN_VERSION) {
            return Err(ClientError::Unsupported { api_key: A::KEY });
        }
        Ok(version)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::api_versions::ApiVersion;

    fn table(rows: &[(i16, i16, i16)]) -> VersionTable {
        let api_keys = rows
            .iter()
            .map(|&(api_key, min_version, max_version)| ApiVersion {
                api_key,
                min_version,
                max_version,
            })
            .collect();
        VersionTable::from_response(&ApiVersionsResponse {
            error_code: 0,
            api_keys,
            throttle_time_ms: 0,
        })
    }

    #[test]
    fn pick_takes_the_highest_common_version() {
        let t = table(&[(0, 0, 7), (1, 4, 99), (3, 13, 20)]);
        assert_eq!(t.pick::<ProduceRequest>().unwrap(), 7);
        assert_eq!(t.pick::<FetchRequest>().unwrap(), fetch::MAX_VERSION);
        assert!(matches!(
            t.pick::<MetadataRequest>(),
            Err(ClientError::Unsupported { api_key: 3 })
        ));
        assert!(matches!(
            t.pick::<ListOffsetsRequest>(),
            Err(ClientError::Unsupported { api_key: 2 })
        ));
        let t = table(&[(0, 0, 2)]);
        assert!(
            t.pick::<ProduceRequest>().is_err(),
            "v0-2 produce is below what we speak"
        );
    }
}
