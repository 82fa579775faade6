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
//! | `groups`   | consumer-group coordinator state machine, offsets records   | protocol              |

pub mod app;
pub mod bench;
pub mod cli;
pub mod client;
pub mod cluster;
pub mod config;
pub mod groups;
pub mod io;
pub mod model;
pub mod protocol;
pub mod records;
pub mod router;
pub mod server;
pub mod shard;
pub mod storage;
