//! The built-in NameServer: cluster metadata (topics, topic ids, partition counts, configs,
//! producer-id blocks) owned by the metadata shard (shard 0) and persisted crash-safely.
//!
//! The metadata shard is the only writer: every change goes through [`MetadataStore`], which
//! applies it to a new immutable [`MetadataImage`] with a higher `version`, persists it
//! (write to a temporary file, fdatasync, rename, fsync the directory) and only then hands
//! it out. Other shards receive the image (an `Arc`) and answer Metadata from their local
//! copy; an image with a lower version than the one a shard holds is ignored, so updates can
//! arrive in any order. A later gossip layer between nodes feeds the same store: it delivers
//! images (or changes) and the version rule decides.
//!
//! Every change is a [`Command`] applied by [`command::apply`], the same function the
//! controller (Raft group 0) applies to committed entries on every node. The file format of
//! `metadata.bin` is in [`image`]; a file whose magic, version, length or CRC is wrong is
//! refused at start with a clear error, never half-read.

mod codec;
pub mod command;
pub mod controller;
pub mod forward;
pub mod image;
pub mod placement;
pub mod raft_store;
pub mod routing;
#[cfg(test)]
mod sim;
pub mod status;

pub use command::{apply, Applied, Command, PRODUCER_ID_BLOCK};
pub use image::{decode_file, encode_file};

pub mod identity;

/// The gossip membership view, for the layers that reach cluster state through `cluster`.
pub use crate::membership::{
    Health, LocalMembership, MemberInfo, MembershipView, NodeCard, NodeState,
};

use routing::PartitionLeadership as Leadership;
use std::collections::BTreeMap;
use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// A broker as the controller registers it: its id, the Kafka address clients are given,
/// the node-to-node (RPC) address, and its rack.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeInfo {
    pub id: i32,
    pub host: String,
    pub port: i32,
    pub rpc: String,
    pub rack: Option<String>,
}

/// One topic as the NameServer knows it. `configs` holds only the overrides of the topic.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TopicMeta {
    pub name: Arc<str>,
    pub topic_id: [u8; 16],
    pub partitions: i32,
    pub configs: BTreeMap<String, String>,
    /// `replicas[p]`: the node ids holding partition `p`, the preferred leader first.
    pub replicas: Arc<[Vec<i32>]>,
}

/// An immutable snapshot of cluster metadata. Shared between shards through `Arc`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MetadataImage {
    /// Increases with every change; shards keep the highest they have seen.
    pub version: u64,
    pub topics: BTreeMap<Arc<str>, Arc<TopicMeta>>,
    /// First producer id of the next block the controller hands out (InitProducerId).
    pub next_producer_id: i64,
    /// The registered brokers, by node id.
    pub nodes: BTreeMap<i32, NodeInfo>,
    /// SASL users' stored SCRAM credentials (never passwords), by user name.
    pub users: BTreeMap<String, UserCredentials>,
    /// The ACL bindings the authorizer evaluates (`--authorizer on`).
    pub acls: crate::auth::acl::Acls,
}

/// One user's SCRAM credentials, by mechanism.
pub type UserCredentials = BTreeMap<crate::auth::Mechanism, crate::auth::scram::ScramCredential>;

/// Most SASL users the metadata holds.
pub const MAX_USERS: usize = 100_000;

impl MetadataImage {
    /// The stored credential of `user` for `mechanism`.
    pub fn scram_credential(
        &self,
        user: &str,
        mechanism: crate::auth::Mechanism,
    ) -> Option<crate::auth::scram::ScramCredential> {
        self.users.get(user)?.get(&mechanism).cloned()
    }
}

/// A shard's local copy of the newest image it has seen, of the newest gossip membership
/// view, and of the controller leader the metadata shard last reported. `!Send`: one per
/// shard.
pub struct LocalMetadata {
    image: std::cell::RefCell<Arc<MetadataImage>>,
    membership: LocalMembership,
    controller: std::cell::Cell<Option<i32>>,
    /// Raft leadership of the replicated partitions this node holds a replica of.
    leaders: std::cell::RefCell<std::collections::HashMap<Arc<str>, BTreeMap<i32, Leadership>>>,
}

impl Default for LocalMetadata {
    fn default() -> Self {
        LocalMetadata::new(Arc::default())
    }
}

impl LocalMetadata {
    pub fn new(image: Arc<MetadataImage>) -> Self {
        LocalMetadata {
            image: std::cell::RefCell::new(image),
            membership: LocalMembership::new(Arc::default()),
            controller: std::cell::Cell::new(None),
            leaders: Default::default(),
        }
    }
    /// The Raft leadership of partition `p` of `topic` as this node's replica knows it.
    pub fn leadership(&self, topic: &str, p: i32) -> Option<Leadership> {
        self.leaders.borrow().get(topic)?.get(&p).cloned()
    }
    /// Set (or, with `None`, forget) the leadership of a replicated partition.
    pub fn set_leadership(&self, topic: &Arc<str>, p: i32, leadership: Option<Leadership>) {
        let mut all = self.leaders.borrow_mut();
        match leadership {
            Some(l) => {
                all.entry(topic.clone()).or_default().insert(p, l);
            }
            None => {
                if let Some(t) = all.get_mut(topic) {
                    t.remove(&p);
                    if t.is_empty() {
                        all.remove(topic);
                    }
                }
            }
        }
    }
    /// The newest membership view pushed to this shard (empty before the first push).
    pub fn membership(&self) -> Arc<MembershipView> {
        self.membership.get()
    }
    /// Keep `view` if it is at least as new as the one held; returns whether it was kept.
    pub fn apply_membership(&self, view: Arc<MembershipView>) -> bool {
        self.membership.apply(view)
    }
    /// The controller leader (Metadata's and DescribeCluster's ControllerId), if known.
    pub fn controller(&self) -> Option<i32> {
        self.controller.get()
    }
    pub fn set_controller(&self, leader: Option<i32>) {
        self.controller.set(leader);
    }
    pub fn get(&self) -> Arc<MetadataImage> {
        self.image.borrow().clone()
    }
    /// Keep `image` if it is at least as new as the one held; returns whether it was kept.
    pub fn apply(&self, image: Arc<MetadataImage>) -> bool {
        let mut held = self.image.borrow_mut();
        if image.version < held.version {
            return false;
        }
        *held = image;
        true
    }
}

/// Why a metadata change or load failed.
#[derive(Debug)]
pub enum MetadataError {
    Io(std::io::Error),
    Corrupt(String),
    TopicExists(String),
    UnknownTopic(String),
    InvalidTopicName(String),
    InvalidPartitions(String),
    InvalidReplicas(String),
    /// The change holds a value the metadata file cannot store: refused, nothing written.
    Unstorable(String),
    /// No such user, or no credential of that mechanism.
    UnknownUser(String),
    /// A user name or SCRAM credential that may not be stored.
    InvalidCredential(String),
    /// An ACL binding that may not be stored (or one too many).
    InvalidAcl(String),
}

impl fmt::Display for MetadataError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MetadataError::Io(e) => write!(f, "metadata I/O error: {e}"),
            MetadataError::Corrupt(why) => write!(f, "metadata file corrupt: {why}"),
            MetadataError::TopicExists(t) => write!(f, "topic '{t}' already exists"),
            MetadataError::UnknownTopic(t) => write!(f, "topic '{t}' does not exist"),
            MetadataError::InvalidTopicName(why) => write!(f, "invalid topic name: {why}"),
            MetadataError::InvalidPartitions(why) => write!(f, "invalid partitions: {why}"),
            MetadataError::InvalidReplicas(why) => write!(f, "invalid replicas: {why}"),
            MetadataError::Unstorable(why) => write!(f, "change refused: {why}"),
            MetadataError::UnknownUser(why) => write!(f, "unknown credential: {why}"),
            MetadataError::InvalidCredential(why) => write!(f, "invalid credential: {why}"),
            MetadataError::InvalidAcl(why) => write!(f, "invalid ACL: {why}"),
        }
    }
}

impl std::error::Error for MetadataError {}

impl From<std::io::Error> for MetadataError {
    fn from(e: std::io::Error) -> Self {
        MetadataError::Io(e)
    }
}

/// Kafka's topic name rules: 1..=249 of `[a-zA-Z0-9._-]`, not `.` or `..`.
pub fn validate_topic_name(name: &str) -> Result<(), MetadataError> {
    let bad = |why: &str| Err(MetadataError::InvalidTopicName(format!("'{name}': {why}")));
    if name.is_empty() || name.len() > 249 {
        return bad("length must be 1 to 249");
    }
    if name == "." || name == ".." {
        return bad("'.' and '..' are not allowed");
    }
    if crate::model::is_internal_topic(name) {
        return bad("the name is reserved for an internal topic");
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_' || b == b'-')
    {
        return bad("only ASCII letters, digits, '.', '_' and '-' are allowed");
    }
    Ok(())
}

/// Largest partition count a topic may have.
pub const MAX_PARTITIONS_PER_TOPIC: i32 = 10_000;
const FILE_NAME: &str = "metadata.bin";

/// The metadata shard's store. Owned by shard 0 only; uses blocking file I/O, which is fine
/// for rare metadata changes (a few per second at most), never for the data path.
pub struct MetadataStore {
    dir: PathBuf,
    image: Arc<MetadataImage>,
    /// Producer ids below this are reserved by the persisted image.
    producer_id_limit: i64,
    /// Next producer id to hand out (in memory; below `producer_id_limit`).
    pid_next: i64,
}

impl MetadataStore {
    /// Load `dir/metadata.bin`, or start empty if there is none.
    pub fn open(dir: &Path) -> Result<Self, MetadataError> {
        std::fs::create_dir_all(dir)?;
        let path = dir.join(FILE_NAME);
        let image = match std::fs::read(&path) {
            Ok(bytes) => decode_file(&bytes)?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => MetadataImage::default(),
            Err(e) => return Err(e.into()),
        };
        let limit = image.next_producer_id;
        Ok(MetadataStore {
            dir: dir.to_path_buf(),
            image: Arc::new(image),
            producer_id_limit: limit,
            pid_next: limit,
        })
    }

    pub fn image(&self) -> Arc<MetadataImage> {
        self.image.clone()
    }

    /// Apply `cmd` to a copy of the image, persist it, then hand it out.
    fn commit(&mut self, cmd: &Command) -> Result<(Arc<MetadataImage>, Applied), MetadataError> {
        let mut next = (*self.image).clone();
        let applied = apply(&mut next, cmd)?;
        next.version = self.image.version + 1;
        Self::check_storable(&next)?;
        persist(&self.dir, &next)?;
        self.image = Arc::new(next);
        Ok((self.image.clone(), applied))
    }

    /// Whether `image` reads back from its own file format exactly. A change whose image
    /// would not (a value the format cannot hold) is refused, so an accepted request never
    /// leaves a metadata file the next start cannot read.
    fn check_storable(image: &MetadataImage) -> Result<(), MetadataError> {
        match decode_file(&encode_file(image)) {
            Ok(back) if back == *image => Ok(()),
            _ => Err(MetadataError::Unstorable(
                "the metadata file format cannot hold a value of this change".into(),
            )),
        }
    }

    pub fn create_topic(
        &mut self,
        name: &str,
        partitions: i32,
        configs: BTreeMap<String, String>,
    ) -> Result<Arc<MetadataImage>, MetadataError> {
        if !(1..=MAX_PARTITIONS_PER_TOPIC).contains(&partitions) {
            return Err(MetadataError::InvalidPartitions(format!(
                "{partitions} is not between 1 and {MAX_PARTITIONS_PER_TOPIC}"
            )));
        }
        let cmd = Command::CreateTopic {
            name: name.into(),
            topic_id: random_uuid(),
            configs,
            replicas: vec![vec![0]; partitions as usize],
        };
        Ok(self.commit(&cmd)?.0)
    }

    pub fn delete_topic(
        &mut self,
        name: &str,
    ) -> Result<(Arc<MetadataImage>, Arc<TopicMeta>), MetadataError> {
        match self.commit(&Command::DeleteTopic { name: name.into() })? {
            (image, Applied::Deleted(t)) => Ok((image, t)),
            _ => unreachable!("DeleteTopic applies as Deleted"),
        }
    }

    pub fn set_partition_count(
        &mut self,
        name: &str,
        count: i32,
    ) -> Result<Arc<MetadataImage>, MetadataError> {
        let from = self
            .image
            .topics
            .get(name)
            .ok_or_else(|| MetadataError::UnknownTopic(name.into()))?
            .partitions;
        if count <= from || count > MAX_PARTITIONS_PER_TOPIC {
            return Err(MetadataError::InvalidPartitions(format!(
                "topic '{name}' has {from} partitions; the new count {count} must be larger and at most {MAX_PARTITIONS_PER_TOPIC}"
            )));
        }
        let replicas = vec![vec![0]; (count - from) as usize];
        let cmd = Command::CreatePartitions {
            name: name.into(),
            from,
            replicas,
        };
        Ok(self.commit(&cmd)?.0)
    }

    pub fn set_topic_configs(
        &mut self,
        name: &str,
        configs: BTreeMap<String, String>,
    ) -> Result<Arc<MetadataImage>, MetadataError> {
        let cmd = Command::SetTopicConfigs {
            name: name.into(),
            configs,
        };
        Ok(self.commit(&cmd)?.0)
    }

    /// A producer id never handed out before, even across restarts: ids are reserved in
    /// persisted blocks, so a restart skips the rest of the current block.
    pub fn allocate_producer_id(&mut self) -> Result<i64, MetadataError> {
        if self.pid_next >= self.producer_id_limit {
            if let (_, Applied::ProducerIds { start, end }) =
                self.commit(&Command::AllocateProducerIds)?
            {
                self.pid_next = start;
                self.producer_id_limit = end;
            }
        }
        let id = self.pid_next;
        self.pid_next += 1;
        Ok(id)
    }
}

fn persist(dir: &Path, image: &MetadataImage) -> Result<(), MetadataError> {
    let bytes = encode_file(image);
    let tmp = dir.join("metadata.bin.tmp");
    let mut f = std::fs::File::create(&tmp)?;
    f.write_all(&bytes)?;
    f.sync_data()?;
    drop(f);
    std::fs::rename(&tmp, dir.join(FILE_NAME))?;
    std::fs::File::open(dir)?.sync_all()?;
    Ok(())
}

/// A random version-4 UUID (topic id) from the kernel's random source.
pub fn random_uuid() -> [u8; 16] {
    let mut id = [0u8; 16];
    // SAFETY: getrandom writes at most `id.len()` bytes into the buffer we own.
    let n = unsafe { libc::getrandom(id.as_mut_ptr().cast(), id.len(), 0) };
    if n != id.len() as isize {
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        id.copy_from_slice(&t.as_nanos().to_be_bytes());
    }
    id[6] = (id[6] & 0x0f) | 0x40;
    id[8] = (id[8] & 0x3f) | 0x80;
    if id == [0u8; 16] {
        id[15] = 1; // the all-zero UUID means "no topic id" on the wire
    }
    id
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_dir(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("ringmq-meta-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        d
    }

    #[test]
    fn topics_survive_reopen_and_versions_grow() {
        let dir = temp_dir("reopen");
        let mut s = MetadataStore::open(&dir).unwrap();
        let cfg = BTreeMap::from([("retention.ms".to_string(), "1000".to_string())]);
        let v1 = s.create_topic("orders", 8, cfg).unwrap().version;
        let v2 = s.set_partition_count("orders", 10).unwrap().version;
        assert!(v2 > v1);
        assert!(matches!(
            s.create_topic("orders", 1, BTreeMap::new()),
            Err(MetadataError::TopicExists(_))
        ));
        assert!(s.set_partition_count("orders", 4).is_err());
        let pid = s.allocate_producer_id().unwrap();
        let image = s.image();
        drop(s);
        let mut s = MetadataStore::open(&dir).unwrap();
        assert_eq!(*s.image(), *image);
        assert_eq!(s.image().topics["orders"].partitions, 10);
        assert!(
            s.allocate_producer_id().unwrap() > pid,
            "producer ids never repeat across restarts"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_change_the_file_cannot_hold_is_refused_and_nothing_is_written() {
        let dir = temp_dir("unstorable");
        let mut s = MetadataStore::open(&dir).unwrap();
        s.create_topic("t", 1, BTreeMap::new()).unwrap();
        let before = std::fs::read(dir.join(FILE_NAME)).unwrap();
        // A value longer than the file's u16 string length (issue 13: the broker never
        // started again after such an AlterConfigs).
        let long = format!("{}86400000", "0".repeat(65_536));
        let cfg = BTreeMap::from([("retention.ms".to_string(), long)]);
        assert!(matches!(
            s.set_topic_configs("t", cfg),
            Err(MetadataError::Unstorable(_))
        ));
        assert_eq!(std::fs::read(dir.join(FILE_NAME)).unwrap(), before);
        drop(s);
        let s = MetadataStore::open(&dir).expect("the file still reads");
        assert!(s.image().topics["t"].configs.is_empty());
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn topic_names_follow_kafka_rules() {
        assert!(validate_topic_name("a.b_c-1").is_ok());
        for bad in [
            "",
            ".",
            "..",
            "a b",
            "ä",
            &"x".repeat(250),
            "__consumer_offsets",
        ] {
            assert!(validate_topic_name(bad).is_err(), "{bad:?}");
        }
    }
}
