//! The shard's consumer-group coordinator: drives the I/O-free [`Coordinator`] and keeps its
//! records in the group log (`__consumer_offsets-<p>` partition logs owned by this shard).
//!
//! After every coordinator call: the records it produced are appended to the group log and
//! fdatasync'ed (so an OffsetCommit is durable before it is answered), then the replies it
//! completed are delivered to the requests parked on their tickets. A timer task calls
//! `tick` at the coordinator's next deadline (session expiry, rebalance timeouts).
//!
//! At start, every group-log partition this shard owns is read back and replayed into the
//! coordinator before the shard listens.

use super::{log_config, DiskLog};
use crate::base::now_ms;
use crate::config::TopicConfigs;
use crate::groups::call::{GroupAnswer, GroupCall, Unpersisted};
use crate::groups::{
    group_partition, Coordinator, GroupConfig, GroupRecord, Outcome, Reply, Ticket,
    GROUP_LOG_PARTITIONS, GROUP_LOG_TOPIC,
};
use crate::io::dma::DmaDisk;
use crate::model::{owner_shard, LeaderEpoch, ShardId};
use crate::storage::{BatchCache, PartitionLog, StorageError};
use glommio::channels::local_channel::{self, LocalSender};
use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::time::Duration;

/// Bytes read per step when replaying a group log at start.
const REPLAY_READ_BYTES: usize = 1 << 20;

pub struct GroupShard {
    coordinator: RefCell<Coordinator>,
    parked: RefCell<HashMap<Ticket, LocalSender<Reply>>>,
    logs: RefCell<HashMap<i32, DiskLog>>,
}

impl GroupShard {
    /// Open this shard's group-log partitions and replay them.
    pub async fn open(
        me: ShardId,
        shard_count: u16,
        data_dir: &Path,
        cache: BatchCache,
        metrics: &crate::metrics::ShardMetrics,
    ) -> Result<Self, String> {
        let mut configs = TopicConfigs::default();
        configs.values.insert("retention.ms".into(), "-1".into());
        let config = log_config(&configs);
        let mut logs = HashMap::new();
        let mut records = Vec::new();
        for p in (0..GROUP_LOG_PARTITIONS)
            .filter(|p| owner_shard(GROUP_LOG_TOPIC, *p, shard_count) == me)
        {
            let dir = data_dir.join(format!("{GROUP_LOG_TOPIC}-{p}"));
            let log = PartitionLog::open(DmaDisk, dir, config.clone(), cache.clone())
                .await
                .map_err(|e| format!("group log partition {p}: {e}"))?;
            crate::debug!(
                "group log partition {p} opened: end {}",
                log.log_end_offset()
            );
            super::count_recovery(&log, metrics);
            replay_into(&log, &mut records)
                .await
                .map_err(|e| format!("group log partition {p}: {e}"))?;
            logs.insert(p, log);
        }
        let seed = now_ms() as u64 ^ (u64::from(me.0) << 48);
        let mut coordinator = Coordinator::new(GroupConfig {
            member_id_seed: seed,
            ..GroupConfig::default()
        });
        coordinator.load(now_ms(), records);
        Ok(GroupShard {
            coordinator: RefCell::new(coordinator),
            parked: RefCell::new(HashMap::new()),
            logs: RefCell::new(logs),
        })
    }

    /// Handle one group request on its owning shard.
    pub async fn handle(&self, call: GroupCall) -> GroupAnswer {
        let now = now_ms();
        let (answer, pending) = {
            let mut c = self.coordinator.borrow_mut();
            match call {
                GroupCall::Join {
                    version,
                    client,
                    req,
                } => match c.join(now, version, &client, &req) {
                    Outcome::Respond(r) => (Some(GroupAnswer::Join(r)), None),
                    Outcome::Pending(t) => (None, Some(t)),
                },
                GroupCall::Sync { req } => match c.sync(now, &req) {
                    Outcome::Respond(r) => (Some(GroupAnswer::Sync(r)), None),
                    Outcome::Pending(t) => (None, Some(t)),
                },
                GroupCall::Heartbeat { req } => {
                    (Some(GroupAnswer::Heartbeat(c.heartbeat(now, &req))), None)
                }
                GroupCall::Leave { version, req } => {
                    (Some(GroupAnswer::Leave(c.leave(now, version, &req))), None)
                }
                GroupCall::Commit { req } => {
                    (Some(GroupAnswer::Commit(c.commit_offsets(now, &req))), None)
                }
                GroupCall::Fetch { version, req } => (
                    Some(GroupAnswer::Fetch(c.fetch_offsets(version, &req))),
                    None,
                ),
                GroupCall::DeleteOffsets { req } => (
                    Some(GroupAnswer::DeleteOffsets(c.delete_offsets(&req))),
                    None,
                ),
                GroupCall::List { req } => (Some(GroupAnswer::List(c.list_groups(&req))), None),
                GroupCall::Describe { req } => {
                    (Some(GroupAnswer::Describe(c.describe_groups(&req))), None)
                }
                GroupCall::Delete { req } => {
                    (Some(GroupAnswer::Delete(c.delete_groups(&req))), None)
                }
            }
        };
        let parked = pending.map(|ticket| {
            let (tx, rx) = local_channel::new_bounded(1);
            self.parked.borrow_mut().insert(ticket, tx);
            rx
        });
        let persisted = self.settle().await;
        match (answer, parked) {
            (Some(a), _) => not_acknowledged_unless(persisted, a),
            (None, Some(rx)) => match rx.recv().await {
                Some(Reply::Join(r)) => GroupAnswer::Join(r),
                Some(Reply::Sync(r)) => GroupAnswer::Sync(r),
                None => {
                    unreachable!("a parked ticket's sender is only dropped after it is answered")
                }
            },
            (None, None) => unreachable!("every call answers now or parks"),
        }
    }

    /// Persist the records the coordinator produced, then deliver the replies it completed.
    /// Says so when the call's records could not be persisted.
    async fn settle(&self) -> Result<(), Unpersisted> {
        let records = self.coordinator.borrow_mut().take_records();
        let mut persisted = Ok(());
        if !records.is_empty() {
            if let Err(e) = self.persist(records).await {
                crate::error!("group log: {e}");
                persisted = Err(match e {
                    StorageError::MessageTooLarge { .. } => Unpersisted::TooLarge,
                    _ => Unpersisted::Failed,
                });
            }
        }
        let completions = self.coordinator.borrow_mut().take_completions();
        self.deliver(completions);
        persisted
    }

    fn deliver(&self, completions: Vec<(Ticket, Reply)>) {
        for (ticket, reply) in completions {
            let tx = self.parked.borrow_mut().remove(&ticket);
            if let Some(tx) = tx {
                let _ = tx.try_send(reply);
            }
        }
    }

    /// Append records to their group-log partitions (one batch per partition) and wait for
    /// them to be durable.
    async fn persist(&self, records: Vec<GroupRecord>) -> Result<(), StorageError> {
        let mut by_partition: BTreeMap<i32, Vec<(bytes::Bytes, Option<bytes::Bytes>)>> =
            BTreeMap::new();
        for r in &records {
            log_group_event(r);
            let group_id = match r {
                GroupRecord::OffsetCommit { group_id, .. }
                | GroupRecord::GroupMetadata { group_id, .. } => group_id,
            };
            let p = group_partition(group_id, GROUP_LOG_PARTITIONS);
            by_partition
                .entry(p)
                .or_default()
                .push((r.key_bytes(), r.value_bytes()));
        }
        for (p, kvs) in by_partition {
            let log = self
                .logs
                .borrow()
                .get(&p)
                .cloned()
                .ok_or(StorageError::Closed)?;
            let refs: Vec<(Option<&[u8]>, Option<&[u8]>)> = kvs
                .iter()
                .map(|(k, v)| (Some(&k[..]), v.as_deref()))
                .collect();
            let batch = crate::model::build_batch(&refs, now_ms());
            let info = log
                .append(bytes::Bytes::from(batch), LeaderEpoch(0))
                .await?;
            log.sync_through(info.last_offset).await?;
        }
        Ok(())
    }

    /// Run the coordinator's timers until `stop` says so.
    pub async fn run_timers(&self, stop: impl Fn() -> bool) {
        while !stop() {
            let now = now_ms();
            let next = self
                .coordinator
                .borrow()
                .next_deadline()
                .unwrap_or(now + 100);
            let wait_ms = (next - now).clamp(1, 100) as u64;
            glommio::timer::sleep(Duration::from_millis(wait_ms)).await;
            let completions = self.coordinator.borrow_mut().tick(now_ms());
            let records = self.coordinator.borrow_mut().take_records();
            if !records.is_empty() {
                if let Err(e) = self.persist(records).await {
                    crate::error!("group log: {e}");
                }
            }
            self.deliver(completions);
            let more = self.coordinator.borrow_mut().take_completions();
            self.deliver(more);
        }
    }

    /// (group, topic, partition, committed offset) of the groups this shard coordinates.
    pub fn committed_offsets(&self) -> Vec<(String, String, i32, i64)> {
        self.coordinator.borrow().committed_offsets()
    }

    pub async fn close(&self) {
        let logs: Vec<DiskLog> = self.logs.borrow_mut().drain().map(|(_, l)| l).collect();
        for log in logs {
            let _ = log.close().await;
        }
    }
}

/// One log line per notable group event: a new generation, or a group deleted.
/// The answer to a call after its records were (or were not) persisted.
fn not_acknowledged_unless(persisted: Result<(), Unpersisted>, answer: GroupAnswer) -> GroupAnswer {
    match persisted {
        Ok(()) => answer,
        Err(why) => answer.not_persisted(why),
    }
}

fn log_group_event(r: &GroupRecord) {
    if let GroupRecord::GroupMetadata { group_id, value } = r {
        match value {
            Some(v) => crate::info!(
                "group '{group_id}' rebalanced: generation {}, {} member(s), protocol {}",
                v.generation_id,
                v.members.len(),
                v.protocol_name.as_deref().unwrap_or("-")
            ),
            None => crate::info!("group '{group_id}' removed (deleted, or empty and expired)"),
        }
    }
}

async fn replay_into(log: &DiskLog, out: &mut Vec<GroupRecord>) -> Result<(), String> {
    let mut offset = log.log_start_offset();
    while offset < log.high_watermark() {
        let read = log
            .read(offset, REPLAY_READ_BYTES)
            .await
            .map_err(|e| e.to_string())?;
        if read.batches.is_empty() {
            break;
        }
        for batch in &read.batches {
            let h = crate::model::BatchHeader::parse(batch).map_err(|e| e.to_string())?;
            offset = h.last_offset() + 1;
            for (key, value) in
                crate::records::record_key_values(batch).map_err(|e| format!("{e:?}"))?
            {
                let Some(key) = key else { continue };
                match GroupRecord::decode(key.into(), value.map(Into::into)) {
                    Ok(r) => out.push(r),
                    Err(e) => crate::error!("group log: skipping an unreadable record: {e:?}"),
                }
            }
        }
    }
    Ok(())
}
