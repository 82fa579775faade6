//! ringmq: a persistent, Kafka-wire-compatible message broker, thread-per-core on glommio.
//!
//! See `ARCHITECTURE.md` for how a produce and a fetch travel through the code.
//!
//! Layers import one way. The one map of the modules, what each is for and what each may
//! import, is the table in `ARCHITECTURE.md` ("Modules and the direction of imports");
//! `tests/tidy/main.rs` reads that table and fails on any import or cycle it does not allow.
//!
//! Life of a produce: `server::conn` reads and admits a frame → `server::produce` splits it
//! by owning shard → `router` hands one call per shard → `shard` appends to each
//! `storage::PartitionLog` (and waits for the group commit when acks=-1 and durability is
//! `always`) → replies are assembled in request order and written back.

pub mod app;
pub mod auth;
#[macro_use]
pub mod base;
pub mod bench;
pub mod cli;
pub mod client;
pub mod cluster;
pub mod config;
pub mod groups;
pub mod io;
pub mod membership;
pub mod metrics;
pub mod model;
pub mod protocol;
pub mod records;
pub mod replication;
pub mod router;
pub mod rpc;
pub mod server;
pub mod shard;
pub mod storage;
pub mod tls;
