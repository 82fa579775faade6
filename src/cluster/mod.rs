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
//! File format (`metadata.bin`), all integers big-endian:
//! `magic "RMQM" | format_version u16 = 1 | body_len u32 | crc32 (IEEE, crc32fast) u32 | body`.
//! Body: `version u64 | next_producer_id i64 | topic_count u32 | topics`, each topic
//! `name (u16 len + UTF-8) | topic_id [16] | partitions i32 | config_count u16 |
//! (name, value) strings`. A file whose magic, version, length or CRC is wrong is refused at
//! start with a clear error, never half-read.

pub mod identity;

use std::collections::BTreeMap;
use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// One topic as the NameServer knows it. `configs` holds only the overrides of the topic.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TopicMeta {
    pub name: Arc<str>,
    pub topic_id: [u8; 16],
    pub partitions: i32,
    pub configs: BTreeMap<String, String>,
}

/// An immutable snapshot of cluster metadata. Shared between shards through `Arc`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MetadataImage {
    /// Increases with every change; shards keep the highest they have seen.
    pub version: u64,
    pub topics: BTreeMap<Arc<str>, Arc<TopicMeta>>,
    /// Next producer id to hand out (InitProducerId); persisted ahead of use.
    pub next_producer_id: i64,
}

/// A shard's local copy of the newest image it has seen. `!Send`: one per shard.
#[derive(Default)]
pub struct LocalMetadata {
    image: std::cell::RefCell<Arc<MetadataImage>>,
}

impl LocalMetadata {
    pub fn new(image: Arc<MetadataImage>) -> Self {
        LocalMetadata {
            image: std::cell::RefCell::new(image),
        }
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
const MAGIC: &[u8; 4] = b"RMQM";
const FORMAT_VERSION: u16 = 1;
const HEADER_BYTES: usize = 14;
const FILE_NAME: &str = "metadata.bin";
/// Producer ids are persisted in blocks so that an id is never handed out twice.
const PRODUCER_ID_BLOCK: i64 = 1000;

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

    fn commit(&mut self, mut next: MetadataImage) -> Result<Arc<MetadataImage>, MetadataError> {
        next.version = self.image.version + 1;
        persist(&self.dir, &next)?;
        self.producer_id_limit = next.next_producer_id;
        self.image = Arc::new(next);
        Ok(self.image.clone())
    }

    pub fn create_topic(
        &mut self,
        name: &str,
        partitions: i32,
        configs: BTreeMap<String, String>,
    ) -> Result<Arc<MetadataImage>, MetadataError> {
        validate_topic_name(name)?;
        if self.image.topics.contains_key(name) {
            return Err(MetadataError::TopicExists(name.into()));
        }
        if !(1..=MAX_PARTITIONS_PER_TOPIC).contains(&partitions) {
            return Err(MetadataError::InvalidPartitions(format!(
                "{partitions} is not between 1 and {MAX_PARTITIONS_PER_TOPIC}"
            )));
        }
        let name: Arc<str> = Arc::from(name);
        let topic = TopicMeta {
            name: name.clone(),
            topic_id: random_uuid(),
            partitions,
            configs,
        };
        let mut next = (*self.image).clone();
        next.topics.insert(name, Arc::new(topic));
        self.commit(next)
    }

    pub fn delete_topic(
        &mut self,
        name: &str,
    ) -> Result<(Arc<MetadataImage>, Arc<TopicMeta>), MetadataError> {
        let mut next = (*self.image).clone();
        let removed = next
            .topics
            .remove(name)
            .ok_or_else(|| MetadataError::UnknownTopic(name.into()))?;
        Ok((self.commit(next)?, removed))
    }

    pub fn set_partition_count(
        &mut self,
        name: &str,
        count: i32,
    ) -> Result<Arc<MetadataImage>, MetadataError> {
        let topic = self
            .image
            .topics
            .get(name)
            .ok_or_else(|| MetadataError::UnknownTopic(name.into()))?;
        if count <= topic.partitions || count > MAX_PARTITIONS_PER_TOPIC {
            return Err(MetadataError::InvalidPartitions(format!(
                "topic '{name}' has {} partitions; the new count {count} must be larger and at most {MAX_PARTITIONS_PER_TOPIC}",
                topic.partitions
            )));
        }
        let mut t = (**topic).clone();
        t.partitions = count;
        let mut next = (*self.image).clone();
        next.topics.insert(t.name.clone(), Arc::new(t));
        self.commit(next)
    }

    pub fn set_topic_configs(
        &mut self,
        name: &str,
        configs: BTreeMap<String, String>,
    ) -> Result<Arc<MetadataImage>, MetadataError> {
        let topic = self
            .image
            .topics
            .get(name)
            .ok_or_else(|| MetadataError::UnknownTopic(name.into()))?;
        let mut t = (**topic).clone();
        t.configs = configs;
        let mut next = (*self.image).clone();
        next.topics.insert(t.name.clone(), Arc::new(t));
        self.commit(next)
    }

    /// A producer id never handed out before, even across restarts: ids are reserved in
    /// persisted blocks, so a restart skips the rest of the current block.
    pub fn allocate_producer_id(&mut self) -> Result<i64, MetadataError> {
        if self.pid_next >= self.producer_id_limit {
            let mut next = (*self.image).clone();
            next.next_producer_id = self.pid_next + PRODUCER_ID_BLOCK;
            self.commit(next)?;
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

fn put_str(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(&(s.len() as u16).to_be_bytes());
    out.extend_from_slice(s.as_bytes());
}

/// Encode an image as a complete `metadata.bin` file.
pub fn encode_file(image: &MetadataImage) -> Vec<u8> {
    let mut body = Vec::new();
    body.extend_from_slice(&image.version.to_be_bytes());
    body.extend_from_slice(&image.next_producer_id.to_be_bytes());
    body.extend_from_slice(&(image.topics.len() as u32).to_be_bytes());
    for t in image.topics.values() {
        put_str(&mut body, &t.name);
        body.extend_from_slice(&t.topic_id);
        body.extend_from_slice(&t.partitions.to_be_bytes());
        body.extend_from_slice(&(t.configs.len() as u16).to_be_bytes());
        for (k, v) in &t.configs {
            put_str(&mut body, k);
            put_str(&mut body, v);
        }
    }
    let mut out = Vec::with_capacity(HEADER_BYTES + body.len());
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&FORMAT_VERSION.to_be_bytes());
    out.extend_from_slice(&(body.len() as u32).to_be_bytes());
    out.extend_from_slice(&crc32fast::hash(&body).to_be_bytes());
    out.extend_from_slice(&body);
    out
}

struct Cursor<'a> {
    b: &'a [u8],
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], MetadataError> {
        if self.b.len() < n {
            return Err(MetadataError::Corrupt("unexpected end of body".into()));
        }
        let (head, tail) = self.b.split_at(n);
        self.b = tail;
        Ok(head)
    }
    fn u16(&mut self) -> Result<u16, MetadataError> {
        let b = self.take(2)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }
    fn u32(&mut self) -> Result<u32, MetadataError> {
        let b = self.take(4)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn u64(&mut self) -> Result<u64, MetadataError> {
        let b = self.take(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_be_bytes(a))
    }
    fn string(&mut self) -> Result<String, MetadataError> {
        let n = self.u16()? as usize;
        let b = self.take(n)?;
        String::from_utf8(b.to_vec()).map_err(|_| MetadataError::Corrupt("string not UTF-8".into()))
    }
}

/// Decode a complete `metadata.bin` file, checking magic, format version, length and CRC.
pub fn decode_file(bytes: &[u8]) -> Result<MetadataImage, MetadataError> {
    let corrupt = |why: &str| Err(MetadataError::Corrupt(why.into()));
    if bytes.len() < HEADER_BYTES || &bytes[0..4] != MAGIC {
        return corrupt("bad magic or short header");
    }
    let format = u16::from_be_bytes([bytes[4], bytes[5]]);
    if format != FORMAT_VERSION {
        return Err(MetadataError::Corrupt(format!(
            "unknown format version {format}"
        )));
    }
    let len = u32::from_be_bytes([bytes[6], bytes[7], bytes[8], bytes[9]]) as usize;
    let crc = u32::from_be_bytes([bytes[10], bytes[11], bytes[12], bytes[13]]);
    let body = &bytes[HEADER_BYTES..];
    if body.len() != len {
        return corrupt("body length does not match the header");
    }
    if crc32fast::hash(body) != crc {
        return corrupt("CRC mismatch");
    }
    let mut c = Cursor { b: body };
    let version = c.u64()?;
    let next_producer_id = c.u64()? as i64;
    let count = c.u32()? as usize;
    let mut topics = BTreeMap::new();
    for _ in 0..count {
        let name: Arc<str> = Arc::from(c.string()?);
        let mut topic_id = [0u8; 16];
        topic_id.copy_from_slice(c.take(16)?);
        let partitions = c.u32()? as i32;
        let n = c.u16()?;
        let mut configs = BTreeMap::new();
        for _ in 0..n {
            let k = c.string()?;
            configs.insert(k, c.string()?);
        }
        topics.insert(
            name.clone(),
            Arc::new(TopicMeta {
                name,
                topic_id,
                partitions,
                configs,
            }),
        );
    }
    if !c.b.is_empty() {
        return corrupt("trailing bytes after the last topic");
    }
    Ok(MetadataImage {
        version,
        topics,
        next_producer_id,
    })
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
    fn corrupt_file_is_refused() {
        let mut image = MetadataImage::default();
        let t = TopicMeta {
            name: "a".into(),
            topic_id: random_uuid(),
            partitions: 1,
            configs: BTreeMap::new(),
        };
        image.topics.insert("a".into(), Arc::new(t));
        let good = encode_file(&image);
        assert_eq!(decode_file(&good).unwrap(), image);
        for i in 0..good.len() {
            let mut bad = good.clone();
            bad[i] ^= 0x40;
            assert!(decode_file(&bad).is_err(), "flip at byte {i} accepted");
            assert!(decode_file(&good[..i]).is_err(), "cut at byte {i} accepted");
        }
    }

    #[test]
    fn topic_names_follow_kafka_rules() {
        assert!(validate_topic_name("a.b_c-1").is_ok());
        for bad in ["", ".", "..", "a b", "ä", &"x".repeat(250)] {
            assert!(validate_topic_name(bad).is_err(), "{bad:?}");
        }
    }
}
