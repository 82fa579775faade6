//! KIP-951 leader discovery: the structs a Produce (v10+) or Fetch (v12+ CurrentLeader, v16+
//! NodeEndpoints) response carries as tagged fields when it answers NOT_LEADER_OR_FOLLOWER, so
//! the client can go to the new leader without a Metadata round trip. Schemas: Kafka 4.1
//! `ProduceResponse.json` / `FetchResponse.json` (`LeaderIdAndEpoch`, `NodeEndpoint`).
//!
//! They only ever travel inside tagged fields, so always in flexible encoding; the field
//! tables list every field at every version.

use super::codec::{kafka_struct, read_tagged, write_tagged, Field};
use super::wire::{DecodeResult, Reader, Writer};

kafka_struct! {
    /// The partition's current leader and its epoch; (-1, -1) (the default, never sent) when
    /// unknown.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct LeaderIdAndEpoch {
        pub leader_id: i32 [0.., default -1],
        pub leader_epoch: i32 [0.., default -1],
    }
}

kafka_struct! {
    /// A node named by a CurrentLeader: its Kafka endpoint.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct NodeEndpoint {
        pub node_id: i32 [0..],
        pub host: String [0..],
        pub port: i32 [0..],
        pub rack: Option<String> [0..],
    }
}

/// A tagged-field section holding at most the one field `tag` (a hand-written codec's struct
/// whose only tagged field it fills is `value`): empty when `value` is `None`.
pub fn write_one_tag<T: Field>(w: &mut Writer, tag: u32, value: Option<&T>, version: i16) {
    match value {
        Some(v) => {
            w.uvarint(1);
            write_tagged(w, tag, v, version);
        }
        None => w.uvarint(0),
    }
}

/// Read a tagged-field section, keeping field `tag` (which must decode as a `T` filling its
/// data exactly) and skipping every other tag.
pub fn read_one_tag<T: Field>(
    r: &mut Reader,
    tag: u32,
    version: i16,
    name: &'static str,
) -> DecodeResult<Option<T>> {
    let mut out = None;
    r.tagged_fields(|t, data| {
        if t == tag {
            out = Some(read_tagged(data, version, name)?);
        }
        Ok(())
    })?;
    Ok(out)
}
