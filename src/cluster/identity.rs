//! Node identity: the node id and cluster id a data directory belongs to (`node.id`).
//!
//! Written at the first start of a data dir and checked at every later start, so that a data
//! dir is never served under another node id or joined to another cluster by mistake (both
//! would hand out another node's partitions). A data dir from before node ids existed (it has
//! `metadata.bin` but no `node.id`) belongs to node 0.
//!
//! File format, all integers big-endian, framed like our other files: `magic "RMQN" |
//! version u16 = 1 | reserved u16 | payload_len u32 | crc32 (IEEE) u32 | payload`, payload =
//! `node_id i32 | cluster_id (u16 length + UTF-8)`. Replaced atomically (temporary file,
//! fdatasync, rename, directory fsync). A file that does not parse stops start-up.

use std::fmt;
use std::io::Write;
use std::path::Path;

const FILE_NAME: &str = "node.id";
const MAGIC: &[u8; 4] = b"RMQN";
const VERSION: u16 = 1;
const HEADER_BYTES: usize = 16;
/// Largest payload a node.id file may claim (a node id and a short cluster id).
const MAX_PAYLOAD: usize = 1024;

/// Who this data dir belongs to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Identity {
    pub node_id: i32,
    pub cluster_id: String,
}

/// Why a data dir may not be used with the configured identity.
#[derive(Debug)]
pub enum IdentityError {
    Io(std::io::Error),
    Corrupt(String),
    /// The dir belongs to another node id than the configured one.
    OtherNode {
        persisted: i32,
        configured: i32,
    },
    /// The dir belongs to another cluster.
    OtherCluster {
        persisted: String,
        configured: String,
    },
    /// A data dir from before node ids is node 0; another id was configured.
    LegacyDir {
        configured: i32,
    },
}

impl fmt::Display for IdentityError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            IdentityError::Io(e) => write!(f, "node.id: {e}"),
            IdentityError::Corrupt(why) => write!(f, "node.id is corrupt ({why}); not starting"),
            IdentityError::OtherNode {
                persisted,
                configured,
            } => write!(
                f,
                "this data dir belongs to node {persisted}, but node id {configured} was \
                 configured; refusing to start (use --node-id {persisted} or another data dir)"
            ),
            IdentityError::OtherCluster {
                persisted,
                configured,
            } => write!(
                f,
                "this data dir belongs to cluster '{persisted}', but cluster id '{configured}' \
                 was configured; refusing to start (use --cluster-id {persisted} or another \
                 data dir)"
            ),
            IdentityError::LegacyDir { configured } => write!(
                f,
                "this data dir predates node ids and belongs to node 0, but node id \
                 {configured} was configured; refusing to start (use --node-id 0)"
            ),
        }
    }
}

impl std::error::Error for IdentityError {}

impl From<std::io::Error> for IdentityError {
    fn from(e: std::io::Error) -> Self {
        IdentityError::Io(e)
    }
}

/// Check (or, at the first start, record) the identity of `dir`. `node_id` and `cluster_id`
/// are the configured values, `None` where the operator gave none: then the persisted value
/// (or 0 and `default_cluster` for a new dir) is used.
pub fn establish(
    dir: &Path,
    node_id: Option<i32>,
    cluster_id: Option<&str>,
    default_cluster: &str,
) -> Result<Identity, IdentityError> {
    let path = dir.join(FILE_NAME);
    match std::fs::read(&path) {
        Ok(bytes) => {
            let held = decode(&bytes)?;
            check(&held, node_id, cluster_id)?;
            Ok(held)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let legacy = dir.join("metadata.bin").exists();
            if legacy && node_id.is_some_and(|n| n != 0) {
                return Err(IdentityError::LegacyDir {
                    configured: node_id.unwrap_or(0),
                });
            }
            let id = Identity {
                node_id: node_id.unwrap_or(0),
                cluster_id: cluster_id.unwrap_or(default_cluster).to_string(),
            };
            write(dir, &id)?;
            Ok(id)
        }
        Err(e) => Err(e.into()),
    }
}

fn check(
    held: &Identity,
    node_id: Option<i32>,
    cluster_id: Option<&str>,
) -> Result<(), IdentityError> {
    if let Some(n) = node_id.filter(|n| *n != held.node_id) {
        return Err(IdentityError::OtherNode {
            persisted: held.node_id,
            configured: n,
        });
    }
    if let Some(c) = cluster_id.filter(|c| *c != held.cluster_id) {
        return Err(IdentityError::OtherCluster {
            persisted: held.cluster_id.clone(),
            configured: c.to_string(),
        });
    }
    Ok(())
}

fn encode(id: &Identity) -> Vec<u8> {
    let mut payload = Vec::with_capacity(6 + id.cluster_id.len());
    payload.extend_from_slice(&id.node_id.to_be_bytes());
    let len = u16::try_from(id.cluster_id.len()).unwrap_or(u16::MAX);
    payload.extend_from_slice(&len.to_be_bytes());
    payload.extend_from_slice(&id.cluster_id.as_bytes()[..usize::from(len)]);
    let mut out = Vec::with_capacity(HEADER_BYTES + payload.len());
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&VERSION.to_be_bytes());
    out.extend_from_slice(&0u16.to_be_bytes());
    out.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    out.extend_from_slice(&crc32fast::hash(&payload).to_be_bytes());
    out.extend_from_slice(&payload);
    out
}

fn decode(bytes: &[u8]) -> Result<Identity, IdentityError> {
    let bad = |why: &str| Err(IdentityError::Corrupt(why.to_string()));
    if bytes.len() < HEADER_BYTES || &bytes[..4] != MAGIC {
        return bad("bad magic or short header");
    }
    let be16 = |at: usize| u16::from_be_bytes([bytes[at], bytes[at + 1]]);
    let be32 =
        |at: usize| u32::from_be_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]]);
    if be16(4) != VERSION {
        return bad("unknown version");
    }
    if be16(6) != 0 {
        return bad("reserved bits set");
    }
    let len = be32(8) as usize;
    if len > MAX_PAYLOAD || bytes.len() != HEADER_BYTES + len {
        return bad("length does not match the file");
    }
    let payload = &bytes[HEADER_BYTES..];
    if crc32fast::hash(payload) != be32(12) {
        return bad("checksum mismatch");
    }
    if payload.len() < 6 {
        return bad("short payload");
    }
    let node_id = i32::from_be_bytes([payload[0], payload[1], payload[2], payload[3]]);
    let clen = usize::from(u16::from_be_bytes([payload[4], payload[5]]));
    let Some(raw) = payload
        .get(6..6 + clen)
        .filter(|_| payload.len() == 6 + clen)
    else {
        return bad("cluster id length does not match");
    };
    let Ok(cluster_id) = std::str::from_utf8(raw) else {
        return bad("cluster id is not UTF-8");
    };
    if node_id < 0 {
        return bad("negative node id");
    }
    Ok(Identity {
        node_id,
        cluster_id: cluster_id.to_string(),
    })
}

fn write(dir: &Path, id: &Identity) -> Result<(), IdentityError> {
    let tmp = dir.join(format!("{FILE_NAME}.tmp"));
    let mut f = std::fs::File::create(&tmp)?;
    f.write_all(&encode(id))?;
    f.sync_data()?;
    drop(f);
    std::fs::rename(&tmp, dir.join(FILE_NAME))?;
    std::fs::File::open(dir)?.sync_all()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_dir(name: &str) -> std::path::PathBuf {
        let d = std::env::temp_dir().join(format!("ringmq-identity-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn first_start_records_and_later_starts_check() {
        let d = temp_dir("check");
        let id = establish(&d, Some(3), Some("c1"), "def").unwrap();
        assert_eq!((id.node_id, id.cluster_id.as_str()), (3, "c1"));
        // Unset values adopt the persisted ones.
        assert_eq!(establish(&d, None, None, "def").unwrap(), id);
        let e = establish(&d, Some(4), None, "def").unwrap_err().to_string();
        assert!(e.contains("belongs to node 3") && e.contains("4"), "{e}");
        let e = establish(&d, None, Some("c2"), "def")
            .unwrap_err()
            .to_string();
        assert!(e.contains("cluster 'c1'") && e.contains("'c2'"), "{e}");
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn legacy_dir_is_node_zero() {
        let d = temp_dir("legacy");
        std::fs::write(d.join("metadata.bin"), b"x").unwrap();
        let e = establish(&d, Some(2), None, "def").unwrap_err();
        assert!(
            matches!(e, IdentityError::LegacyDir { configured: 2 }),
            "{e}"
        );
        let id = establish(&d, None, None, "def").unwrap();
        assert_eq!((id.node_id, id.cluster_id.as_str()), (0, "def"));
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn every_damaged_file_is_refused_without_panic() {
        let good = encode(&Identity {
            node_id: 7,
            cluster_id: "abc".into(),
        });
        assert_eq!(decode(&good).unwrap().node_id, 7);
        for cut in 0..good.len() {
            assert!(decode(&good[..cut]).is_err(), "cut {cut}");
        }
        for at in 0..good.len() {
            let mut b = good.clone();
            b[at] ^= 0x40;
            assert!(decode(&b).is_err(), "flip at {at}");
        }
    }
}
