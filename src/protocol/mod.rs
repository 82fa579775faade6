//! The Kafka wire codec: sans-IO. Nothing here touches a socket, a file or a clock.
//!
//! * [`wire`]: bounds-checked primitives ([`wire::Reader`], [`wire::Writer`]).
//! * [`frame`]: splitting a byte stream into frames; "incomplete" is an ordinary result.
//! * [`header`]: request header v1/v2 and response header v0/v1.
//! * [`api`]: the table of served (api_key, versions) built from one entry per API module;
//!   the ApiVersions reply is generated from it, so we advertise only what we serve.
//! * [`codec`]: `kafka_struct!`/`kafka_api!`, which generate decode, encode, minimum sizes
//!   and per-version tests from a field table (ARCHITECTURE.md, "Adding a Kafka API").
//! * one module per API: its field table (or, for Produce, Fetch and a few with quirks, a
//!   hand-written codec), with the version range and first flexible version next to it.
//!
//! Decoding never trusts a length or a count before checking it against the bytes that
//! remain. Record batches stay zero-copy `Bytes` slices of the request frame.

pub mod api;
pub mod codec;
pub mod error_code;
pub mod frame;
pub mod header;
pub mod leader_discovery;
pub mod wire;

pub mod alter_configs;
pub mod alter_user_scram_credentials;
pub mod api_versions;
pub mod create_acls;
pub mod create_partitions;
pub mod create_topics;
pub mod delete_acls;
pub mod delete_records;
pub mod delete_topics;
pub mod describe_acls;
pub mod describe_cluster;
pub mod describe_configs;
pub mod describe_user_scram_credentials;
pub mod fetch;
pub mod find_coordinator;
pub mod incremental_alter_configs;
pub mod init_producer_id;
pub mod list_offsets;
pub mod metadata;
pub mod produce;
pub mod sasl_authenticate;
pub mod sasl_handshake;

pub mod delete_groups;
pub mod describe_groups;
pub mod heartbeat;
pub mod join_group;
pub mod leave_group;
pub mod list_groups;
pub mod offset_commit;
pub mod offset_delete;
pub mod offset_fetch;
pub mod sync_group;

pub use error_code::ErrorCode;
pub use wire::{DecodeError, DecodeResult, Reader, Writer};
