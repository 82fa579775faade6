//! ringmq: a persistent, Kafka-wire-compatible message broker, thread-per-core on glommio.
//!
//! See `ARCHITECTURE.md` for how a produce and a fetch travel through the code.
//!
//! Layers import one way:
//!
//! | module     | responsibility                                              | may import            |
//! |------------|-------------------------------------------------------------|-----------------------|
//! | `model`    | Kafka nouns, RecordBatch header view, partition ownership   | —                     |
//! | `protocol` | sans-IO Kafka codec and version table                       | model                 |
//! | `io`       | disk trait: glommio DMA files and a simulated faulty disk   | —                     |
//! | `storage`  | one partition's log on direct-I/O segments                  | io, model             |
//! | `records`  | record-level reading of a batch                             | model                 |
//! | `config`   | broker settings and topic configs, validated                | —                     |
//! | `cluster`  | the NameServer: metadata images and their persistence       | —                     |
//! | `groups`   | consumer-group coordinator (no I/O), group-log records      | protocol, model       |
//! | `router`   | typed cross-shard calls over the channel mesh               | model, cluster, groups|
//! | `shard`    | per-core state; the only code that touches partition logs   | router, storage, ...  |
//! | `server`   | connections, admission, one handler per API, error codes    | protocol, router, ... |
//! | `app`      | composition root: executors, mesh, listeners, signals       | all but client, bench |
//! | `client`   | our own minimal Kafka client                                | protocol, model       |
//! | `bench`    | `ringmq bench`                                              | client, protocol      |
//!
//! Life of a produce: `server::conn` reads and admits a frame → `server::produce` splits it
//! by owning shard → `router` hands one call per shard → `shard` appends to each
//! `storage::PartitionLog` (and waits for the group commit when acks=-1 and durability is
//! `always`) → replies are assembled in request order and written back.

pub mod app;
#[macro_use]
pub mod base;
pub mod bench;
pub mod cli;
pub mod client;
pub mod cluster;
pub mod config;
pub mod groups;
pub mod io;
pub mod metrics;
pub mod model;
pub mod protocol;
pub mod records;
pub mod router;
pub mod server;
pub mod shard;
pub mod storage;
