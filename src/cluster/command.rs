//! Metadata changes as controller log entries, and the deterministic function that applies
//! one to an image. Every node applies the same committed entries in the same order, so every
//! node holds the same image: anything random (topic ids) or placement-dependent (replica
//! sets) is decided by the proposer and carried in the command.
//!
//! Entry data: `kind u8 | body`, big-endian, strings `u16 len | UTF-8`. Decoding checks every
//! length (entries arrive from other nodes).

use super::codec::{put_acl, put_configs, put_replicas, put_scram, put_str, Cursor, MAX_REPLICAS};
use super::image::{decode_node, encode_node};
use super::{
    validate_topic_name, MetadataError, MetadataImage, NodeInfo, TopicMeta,
    MAX_PARTITIONS_PER_TOPIC, MAX_USERS,
};
use crate::auth::acl::{AclBinding, MAX_ACLS};
use crate::auth::scram::ScramCredential;
use crate::auth::Mechanism;
use std::collections::BTreeMap;
use std::sync::Arc;

/// Producer ids are handed out by the controller in blocks of this many.
pub const PRODUCER_ID_BLOCK: i64 = 1000;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command {
    /// `replicas[p]` is the replica set of partition `p`; the partition count is its length.
    CreateTopic {
        name: String,
        topic_id: [u8; 16],
        configs: BTreeMap<String, String>,
        replicas: Vec<Vec<i32>>,
    },
    DeleteTopic {
        name: String,
    },
    /// Adds partitions `from..from + replicas.len()`; refused unless the topic has exactly
    /// `from` partitions when it applies (a concurrent change makes the proposer retry).
    CreatePartitions {
        name: String,
        from: i32,
        replicas: Vec<Vec<i32>>,
    },
    SetTopicConfigs {
        name: String,
        configs: BTreeMap<String, String>,
    },
    RegisterNode(NodeInfo),
    RemoveNode {
        id: i32,
    },
    /// Reserve the next [`PRODUCER_ID_BLOCK`] producer ids for the proposing node.
    AllocateProducerIds,
    /// Create or replace `user`'s credential of the credential's mechanism.
    UpsertScram {
        user: String,
        credential: ScramCredential,
    },
    /// Remove `user`'s credential of `mechanism` (and the user with its last credential).
    DeleteScram {
        user: String,
        mechanism: Mechanism,
    },
    /// Store an ACL binding (storing one that exists changes nothing).
    CreateAcl(AclBinding),
    /// Remove these bindings (those already gone are skipped): the proposer picked them with
    /// a DeleteAcls filter from its image.
    DeleteAcls(Vec<AclBinding>),
}

/// What applying a command produced, for the proposer's answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Applied {
    Done,
    Deleted(Arc<TopicMeta>),
    /// Producer ids `start..end` now belong to the proposer.
    ProducerIds {
        start: i64,
        end: i64,
    },
}

const CREATE_TOPIC: u8 = 1;
const DELETE_TOPIC: u8 = 2;
const CREATE_PARTITIONS: u8 = 3;
const SET_CONFIGS: u8 = 4;
const REGISTER_NODE: u8 = 5;
const REMOVE_NODE: u8 = 6;
const ALLOCATE_PIDS: u8 = 7;
const UPSERT_SCRAM: u8 = 8;
const DELETE_SCRAM: u8 = 9;
const CREATE_ACL: u8 = 10;
const DELETE_ACLS: u8 = 11;

fn put_assignment(out: &mut Vec<u8>, replicas: &[Vec<i32>]) {
    out.extend_from_slice(&(replicas.len() as u32).to_be_bytes());
    for r in replicas {
        put_replicas(out, r);
    }
}

fn assignment(c: &mut Cursor<'_>) -> Result<Vec<Vec<i32>>, MetadataError> {
    let n = c.u32()?;
    if n > MAX_PARTITIONS_PER_TOPIC as u32 {
        return Err(MetadataError::Corrupt(format!("{n} partitions")));
    }
    (0..n).map(|_| c.replicas()).collect()
}

impl Command {
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        match self {
            Command::CreateTopic {
                name,
                topic_id,
                configs,
                replicas,
            } => {
                out.push(CREATE_TOPIC);
                put_str(&mut out, name);
                out.extend_from_slice(topic_id);
                put_configs(&mut out, configs);
                put_assignment(&mut out, replicas);
            }
            Command::DeleteTopic { name } => {
                out.push(DELETE_TOPIC);
                put_str(&mut out, name);
            }
            Command::CreatePartitions {
                name,
                from,
                replicas,
            } => {
                out.push(CREATE_PARTITIONS);
                put_str(&mut out, name);
                out.extend_from_slice(&from.to_be_bytes());
                put_assignment(&mut out, replicas);
            }
            Command::SetTopicConfigs { name, configs } => {
                out.push(SET_CONFIGS);
                put_str(&mut out, name);
                put_configs(&mut out, configs);
            }
            Command::RegisterNode(n) => {
                out.push(REGISTER_NODE);
                encode_node(&mut out, n);
            }
            Command::RemoveNode { id } => {
                out.push(REMOVE_NODE);
                out.extend_from_slice(&id.to_be_bytes());
            }
            Command::AllocateProducerIds => out.push(ALLOCATE_PIDS),
            Command::UpsertScram { user, credential } => {
                out.push(UPSERT_SCRAM);
                put_str(&mut out, user);
                put_scram(&mut out, credential);
            }
            Command::DeleteScram { user, mechanism } => {
                out.push(DELETE_SCRAM);
                put_str(&mut out, user);
                out.push(mechanism.scram_type() as u8);
            }
            Command::CreateAcl(b) => {
                out.push(CREATE_ACL);
                put_acl(&mut out, b);
            }
            Command::DeleteAcls(bindings) => {
                out.push(DELETE_ACLS);
                out.extend_from_slice(&(bindings.len() as u32).to_be_bytes());
                for b in bindings {
                    put_acl(&mut out, b);
                }
            }
        }
        out
    }

    pub fn decode(bytes: &[u8]) -> Result<Command, MetadataError> {
        let mut c = Cursor::new(bytes);
        let cmd = match c.u8()? {
            CREATE_TOPIC => Command::CreateTopic {
                name: c.string()?,
                topic_id: c.uuid()?,
                configs: c.configs()?,
                replicas: assignment(&mut c)?,
            },
            DELETE_TOPIC => Command::DeleteTopic { name: c.string()? },
            CREATE_PARTITIONS => Command::CreatePartitions {
                name: c.string()?,
                from: c.i32()?,
                replicas: assignment(&mut c)?,
            },
            SET_CONFIGS => Command::SetTopicConfigs {
                name: c.string()?,
                configs: c.configs()?,
            },
            REGISTER_NODE => Command::RegisterNode(decode_node(&mut c)?),
            REMOVE_NODE => Command::RemoveNode { id: c.i32()? },
            ALLOCATE_PIDS => Command::AllocateProducerIds,
            UPSERT_SCRAM => Command::UpsertScram {
                user: c.string()?,
                credential: c.scram()?,
            },
            DELETE_SCRAM => Command::DeleteScram {
                user: c.string()?,
                mechanism: {
                    let t = c.u8()? as i8;
                    Mechanism::from_scram_type(t)
                        .ok_or_else(|| MetadataError::Corrupt(format!("SCRAM type {t}")))?
                },
            },
            CREATE_ACL => Command::CreateAcl(c.acl()?),
            DELETE_ACLS => Command::DeleteAcls(acl_list(&mut c)?),
            k => return Err(MetadataError::Corrupt(format!("unknown command kind {k}"))),
        };
        c.finish()?;
        Ok(cmd)
    }
}

/// `count u32 | count × binding`, at most [`MAX_ACLS`].
fn acl_list(c: &mut Cursor<'_>) -> Result<Vec<AclBinding>, MetadataError> {
    let n = c.u32()? as usize;
    if n > MAX_ACLS {
        return Err(MetadataError::Corrupt(format!("{n} ACLs")));
    }
    (0..n).map(|_| c.acl()).collect()
}

/// Store `b` unless it is invalid or the store is full.
fn create_acl(image: &mut MetadataImage, b: &AclBinding) -> Result<Applied, MetadataError> {
    b.validate().map_err(|e| MetadataError::InvalidAcl(e.0))?;
    if !image.acls.contains(b) && image.acls.len() >= MAX_ACLS {
        return Err(MetadataError::InvalidAcl(format!(
            "at most {MAX_ACLS} ACLs are stored"
        )));
    }
    image.acls.insert(b.clone());
    Ok(Applied::Done)
}

/// Replica sets must be non-empty, of distinct node ids, at most [`MAX_REPLICAS`] long.
fn check_replicas(replicas: &[Vec<i32>]) -> Result<(), MetadataError> {
    for (p, r) in replicas.iter().enumerate() {
        let distinct = r.iter().enumerate().all(|(i, a)| !r[..i].contains(a));
        if r.is_empty() || r.len() > MAX_REPLICAS || !distinct || r.iter().any(|&n| n < 0) {
            return Err(MetadataError::InvalidReplicas(format!(
                "partition {p}: replica set {r:?} must hold 1 to {MAX_REPLICAS} distinct node ids"
            )));
        }
    }
    Ok(())
}

fn topic<'a>(image: &'a MetadataImage, name: &str) -> Result<&'a Arc<TopicMeta>, MetadataError> {
    image
        .topics
        .get(name)
        .ok_or_else(|| MetadataError::UnknownTopic(name.into()))
}

/// Apply `cmd` to `image` in place (the caller bumps the version). On error the image is
/// unchanged. Deterministic: the same image and command give the same result on every node.
pub fn apply(image: &mut MetadataImage, cmd: &Command) -> Result<Applied, MetadataError> {
    match cmd {
        Command::CreateTopic {
            name,
            topic_id,
            configs,
            replicas,
        } => create_topic(image, name, *topic_id, configs, replicas),
        Command::DeleteTopic { name } => {
            topic(image, name)?;
            Ok(Applied::Deleted(
                image.topics.remove(name.as_str()).expect("checked"),
            ))
        }
        Command::CreatePartitions {
            name,
            from,
            replicas,
        } => create_partitions(image, name, *from, replicas),
        Command::SetTopicConfigs { name, configs } => {
            let mut t = (**topic(image, name)?).clone();
            t.configs = configs.clone();
            image.topics.insert(t.name.clone(), Arc::new(t));
            Ok(Applied::Done)
        }
        Command::RegisterNode(n) => {
            image.nodes.insert(n.id, n.clone());
            Ok(Applied::Done)
        }
        Command::RemoveNode { id } => {
            image.nodes.remove(id);
            Ok(Applied::Done)
        }
        Command::AllocateProducerIds => {
            let start = image.next_producer_id.max(0);
            let end = start.saturating_add(PRODUCER_ID_BLOCK);
            image.next_producer_id = end;
            Ok(Applied::ProducerIds { start, end })
        }
        Command::UpsertScram { user, credential } => upsert_scram(image, user, credential),
        Command::CreateAcl(b) => create_acl(image, b),
        Command::DeleteAcls(bindings) => {
            for b in bindings {
                image.acls.remove(b);
            }
            Ok(Applied::Done)
        }
        Command::DeleteScram { user, mechanism } => {
            let creds = image
                .users
                .get_mut(user.as_str())
                .filter(|c| c.contains_key(mechanism))
                .ok_or_else(|| {
                    MetadataError::UnknownUser(format!(
                        "user '{user}' has no {mechanism} credential"
                    ))
                })?;
            creds.remove(mechanism);
            if creds.is_empty() {
                image.users.remove(user.as_str());
            }
            Ok(Applied::Done)
        }
    }
}

fn upsert_scram(
    image: &mut MetadataImage,
    user: &str,
    credential: &ScramCredential,
) -> Result<Applied, MetadataError> {
    crate::auth::validate_user_name(user).map_err(MetadataError::InvalidCredential)?;
    credential
        .validate()
        .map_err(MetadataError::InvalidCredential)?;
    if !image.users.contains_key(user) && image.users.len() >= MAX_USERS {
        return Err(MetadataError::InvalidCredential(format!(
            "at most {MAX_USERS} users are stored"
        )));
    }
    image
        .users
        .entry(user.to_string())
        .or_default()
        .insert(credential.mechanism, credential.clone());
    Ok(Applied::Done)
}

fn create_topic(
    image: &mut MetadataImage,
    name: &str,
    topic_id: [u8; 16],
    configs: &BTreeMap<String, String>,
    replicas: &[Vec<i32>],
) -> Result<Applied, MetadataError> {
    validate_topic_name(name)?;
    if image.topics.contains_key(name) {
        return Err(MetadataError::TopicExists(name.into()));
    }
    let partitions = replicas.len() as i32;
    if !(1..=MAX_PARTITIONS_PER_TOPIC).contains(&partitions) {
        return Err(MetadataError::InvalidPartitions(format!(
            "{partitions} is not between 1 and {MAX_PARTITIONS_PER_TOPIC}"
        )));
    }
    check_replicas(replicas)?;
    let name: Arc<str> = Arc::from(name);
    let t = TopicMeta {
        name: name.clone(),
        topic_id,
        partitions,
        configs: configs.clone(),
        replicas: replicas.to_vec().into(),
    };
    image.topics.insert(name, Arc::new(t));
    Ok(Applied::Done)
}

fn create_partitions(
    image: &mut MetadataImage,
    name: &str,
    from: i32,
    replicas: &[Vec<i32>],
) -> Result<Applied, MetadataError> {
    let t = topic(image, name)?;
    let count = from as i64 + replicas.len() as i64;
    if t.partitions != from || replicas.is_empty() || count > MAX_PARTITIONS_PER_TOPIC as i64 {
        return Err(MetadataError::InvalidPartitions(format!(
            "topic '{name}' has {} partitions; the new count {count} must be larger and at most {MAX_PARTITIONS_PER_TOPIC}",
            t.partitions
        )));
    }
    check_replicas(replicas)?;
    let mut t = (**t).clone();
    let mut all = t.replicas.to_vec();
    all.extend(replicas.iter().cloned());
    t.partitions = count as i32;
    t.replicas = all.into();
    image.topics.insert(t.name.clone(), Arc::new(t));
    Ok(Applied::Done)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn samples() -> Vec<Command> {
        vec![
            Command::CreateTopic {
                name: "t".into(),
                topic_id: [3; 16],
                configs: BTreeMap::from([("cleanup.policy".into(), "delete".into())]),
                replicas: vec![vec![1, 2], vec![2, 0]],
            },
            Command::DeleteTopic { name: "t".into() },
            Command::CreatePartitions {
                name: "t".into(),
                from: 2,
                replicas: vec![vec![0]],
            },
            Command::SetTopicConfigs {
                name: "t".into(),
                configs: BTreeMap::new(),
            },
            Command::RegisterNode(NodeInfo {
                id: 4,
                host: "h".into(),
                port: 1,
                rpc: "h:2".into(),
                rack: None,
            }),
            Command::RemoveNode { id: 4 },
            Command::AllocateProducerIds,
            Command::UpsertScram {
                user: "alice".into(),
                credential: ScramCredential::from_password(
                    Mechanism::ScramSha256,
                    b"pw",
                    vec![9; 16],
                    4096,
                ),
            },
            Command::DeleteScram {
                user: "alice".into(),
                mechanism: Mechanism::ScramSha256,
            },
            Command::CreateAcl(acl("orders")),
            Command::DeleteAcls(vec![acl("orders"), acl("payments")]),
        ]
    }

    fn acl(topic: &str) -> AclBinding {
        use crate::auth::acl::*;
        AclBinding {
            resource_type: ResourceType::Topic,
            pattern_type: PatternType::Literal,
            resource_name: topic.into(),
            principal: "User:alice".into(),
            host: "*".into(),
            operation: Operation::Read,
            permission: Permission::Allow,
        }
    }

    #[test]
    fn acls_are_created_validated_and_deleted() {
        let mut a = MetadataImage::default();
        apply(&mut a, &Command::CreateAcl(acl("orders"))).unwrap();
        apply(&mut a, &Command::CreateAcl(acl("orders"))).unwrap();
        apply(&mut a, &Command::CreateAcl(acl("payments"))).unwrap();
        assert_eq!(a.acls.len(), 2, "a binding is stored once");
        let mut bad = acl("x");
        bad.principal = "alice".into();
        let refused = apply(&mut a, &Command::CreateAcl(bad));
        assert!(matches!(refused, Err(MetadataError::InvalidAcl(_))));
        let delete = Command::DeleteAcls(vec![acl("orders"), acl("never-made")]);
        apply(&mut a, &delete).unwrap();
        assert_eq!(a.acls.iter().collect::<Vec<_>>(), vec![&acl("payments")]);
    }

    #[test]
    fn scram_credentials_are_upserted_validated_and_deleted() {
        let mut a = MetadataImage::default();
        let upsert = &samples()[7];
        let delete = &samples()[8];
        assert!(matches!(
            apply(&mut a, delete),
            Err(MetadataError::UnknownUser(_))
        ));
        apply(&mut a, upsert).unwrap();
        let stored = a.scram_credential("alice", Mechanism::ScramSha256).unwrap();
        assert!(stored.verify_password(b"pw"));
        assert!(a
            .scram_credential("alice", Mechanism::ScramSha512)
            .is_none());
        apply(&mut a, delete).unwrap();
        assert!(a.users.is_empty(), "the last credential removes the user");
        let mut weak =
            ScramCredential::from_password(Mechanism::ScramSha512, b"pw", vec![1; 16], 4096);
        weak.iterations = 100;
        for (user, credential) in [("bob", weak), ("", stored.clone())] {
            let cmd = Command::UpsertScram {
                user: user.into(),
                credential,
            };
            assert!(matches!(
                apply(&mut a, &cmd),
                Err(MetadataError::InvalidCredential(_))
            ));
        }
    }

    #[test]
    fn commands_round_trip_and_damage_is_refused() {
        for cmd in samples() {
            let bytes = cmd.encode();
            assert_eq!(Command::decode(&bytes).unwrap(), cmd);
            for i in 0..bytes.len() {
                assert!(Command::decode(&bytes[..i]).is_err(), "{cmd:?} cut at {i}");
            }
            let mut long = bytes.clone();
            long.push(0);
            assert!(
                Command::decode(&long).is_err(),
                "{cmd:?} with a trailing byte"
            );
        }
    }

    #[test]
    fn apply_checks_and_is_deterministic() {
        let mut a = MetadataImage::default();
        let create = &samples()[0];
        assert!(matches!(apply(&mut a, create), Ok(Applied::Done)));
        assert!(matches!(
            apply(&mut a, create),
            Err(MetadataError::TopicExists(_))
        ));
        let grow = Command::CreatePartitions {
            name: "t".into(),
            from: 2,
            replicas: vec![vec![0]],
        };
        apply(&mut a, &grow).unwrap();
        assert_eq!(a.topics["t"].partitions, 3);
        assert!(apply(&mut a, &grow).is_err(), "a stale `from` is refused");
        let dup = Command::CreateTopic {
            name: "u".into(),
            topic_id: [1; 16],
            configs: BTreeMap::new(),
            replicas: vec![vec![1, 1]],
        };
        assert!(matches!(
            apply(&mut a, &dup),
            Err(MetadataError::InvalidReplicas(_))
        ));
        let p1 = apply(&mut a, &Command::AllocateProducerIds).unwrap();
        let p2 = apply(&mut a, &Command::AllocateProducerIds).unwrap();
        assert_eq!(
            p1,
            Applied::ProducerIds {
                start: 0,
                end: PRODUCER_ID_BLOCK
            }
        );
        assert_eq!(
            p2,
            Applied::ProducerIds {
                start: PRODUCER_ID_BLOCK,
                end: 2 * PRODUCER_ID_BLOCK
            }
        );
        let mut b = MetadataImage::default();
        for cmd in [
            create,
            &grow,
            &Command::AllocateProducerIds,
            &Command::AllocateProducerIds,
        ] {
            let _ = apply(&mut b, cmd);
        }
        assert_eq!(a, b, "the same commands give the same image");
    }
}
