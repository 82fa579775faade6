//! The `metadata.bin` file: one [`MetadataImage`], framed and checksummed. It is the
//! controller's snapshot body, and at first start of a data dir from before the controller it
//! is imported as the controller's initial state.
//!
//! File: `magic "RMQM" | format u16 | body_len u32 | crc32 (IEEE) u32 | body`, big-endian.
//! Format 1 body (single-node brokers before the controller): `version u64 |
//! next_producer_id i64 | topic_count u32 | topics`, each topic `name | topic_id [16] |
//! partitions i32 | config_count u16 | (name, value)`; strings are `u16 len | UTF-8`.
//! Format 2 adds, after `next_producer_id`, `node_count u32 | nodes` (each `id i32 | host |
//! port i32 | rpc | rack flag u8 (+ rack)`) and, after each topic's configs, one replica list
//! per partition (`count u16 | node ids i32`). Format 1 topics are placed on node 0.
//! Format 3 adds, after the topics, `user_count u32 | users`, each `name | cred_count u8 |
//! credentials` (each `mechanism type u8 | iterations i32 | salt | stored_key | server_key`,
//! byte strings `u16 len | bytes`): SCRAM credentials, never passwords. Formats 1 and 2 have
//! no users.
//! Format 4 adds, after the users, `acl_count u32 | acls`, each `resource_type u8 |
//! pattern_type u8 | resource_name | principal | host | operation u8 | permission u8`
//! (Kafka's codes, `auth::acl`). Formats 1 to 3 have no ACLs.

use super::codec::{
    frame, put_acl, put_configs, put_opt_str, put_replicas, put_scram, put_str, unframe, Cursor,
};
use super::{
    MetadataError, MetadataImage, NodeInfo, TopicMeta, UserCredentials, MAX_PARTITIONS_PER_TOPIC,
};
use std::collections::BTreeMap;
use std::sync::Arc;

const MAGIC: &[u8; 4] = b"RMQM";
const FORMAT_V1: u16 = 1;
const FORMAT_V2: u16 = 2;
const FORMAT_V3: u16 = 3;
const FORMAT_V4: u16 = 4;

/// Encode an image as a complete `metadata.bin` file (format 4).
pub fn encode_file(image: &MetadataImage) -> Vec<u8> {
    let mut body = Vec::new();
    body.extend_from_slice(&image.version.to_be_bytes());
    body.extend_from_slice(&image.next_producer_id.to_be_bytes());
    body.extend_from_slice(&(image.nodes.len() as u32).to_be_bytes());
    for n in image.nodes.values() {
        encode_node(&mut body, n);
    }
    body.extend_from_slice(&(image.topics.len() as u32).to_be_bytes());
    for t in image.topics.values() {
        put_str(&mut body, &t.name);
        body.extend_from_slice(&t.topic_id);
        body.extend_from_slice(&t.partitions.to_be_bytes());
        put_configs(&mut body, &t.configs);
        for r in t.replicas.iter() {
            put_replicas(&mut body, r);
        }
    }
    body.extend_from_slice(&(image.users.len() as u32).to_be_bytes());
    for (name, creds) in &image.users {
        put_str(&mut body, name);
        body.push(creds.len().min(u8::MAX as usize) as u8);
        for c in creds.values() {
            put_scram(&mut body, c);
        }
    }
    body.extend_from_slice(&(image.acls.len() as u32).to_be_bytes());
    for b in image.acls.iter() {
        put_acl(&mut body, b);
    }
    frame(MAGIC, FORMAT_V4, &body)
}

fn decode_acls(c: &mut Cursor<'_>) -> Result<crate::auth::acl::Acls, MetadataError> {
    let mut acls = crate::auth::acl::Acls::default();
    let n = c.u32()? as usize;
    if n > crate::auth::acl::MAX_ACLS {
        return Err(MetadataError::Corrupt(format!("{n} ACLs")));
    }
    for _ in 0..n {
        if !acls.insert(c.acl()?) {
            return Err(MetadataError::Corrupt("repeated ACL".into()));
        }
    }
    Ok(acls)
}

fn decode_users(c: &mut Cursor<'_>) -> Result<BTreeMap<String, UserCredentials>, MetadataError> {
    let mut users = BTreeMap::new();
    for _ in 0..c.u32()? {
        let name = c.string()?;
        crate::auth::validate_user_name(&name).map_err(MetadataError::Corrupt)?;
        let mut creds = UserCredentials::new();
        for _ in 0..c.u8()? {
            let cred = c.scram()?;
            creds.insert(cred.mechanism, cred);
        }
        if creds.is_empty() || users.insert(name, creds).is_some() {
            return Err(MetadataError::Corrupt("empty or repeated user".into()));
        }
    }
    Ok(users)
}

pub(crate) fn encode_node(out: &mut Vec<u8>, n: &NodeInfo) {
    out.extend_from_slice(&n.id.to_be_bytes());
    put_str(out, &n.host);
    out.extend_from_slice(&n.port.to_be_bytes());
    put_str(out, &n.rpc);
    put_opt_str(out, n.rack.as_deref());
}

pub(crate) fn decode_node(c: &mut Cursor<'_>) -> Result<NodeInfo, MetadataError> {
    Ok(NodeInfo {
        id: c.i32()?,
        host: c.string()?,
        port: c.i32()?,
        rpc: c.string()?,
        rack: c.opt_string()?,
    })
}

/// Decode a complete `metadata.bin` file (formats 1 to 4), checking magic, format, length
/// and CRC. Never half-reads: any inconsistency is [`MetadataError::Corrupt`].
pub fn decode_file(bytes: &[u8]) -> Result<MetadataImage, MetadataError> {
    let (format, body) = unframe(MAGIC, bytes)?;
    if !(FORMAT_V1..=FORMAT_V4).contains(&format) {
        return Err(MetadataError::Corrupt(format!(
            "unknown format version {format}"
        )));
    }
    let mut c = Cursor::new(body);
    let version = c.u64()?;
    let next_producer_id = c.i64()?;
    let mut nodes = BTreeMap::new();
    if format >= FORMAT_V2 {
        for _ in 0..c.u32()? {
            let n = decode_node(&mut c)?;
            nodes.insert(n.id, n);
        }
    }
    let mut topics = BTreeMap::new();
    for _ in 0..c.u32()? {
        let t = decode_topic(&mut c, format)?;
        topics.insert(t.name.clone(), Arc::new(t));
    }
    let users = if format >= FORMAT_V3 {
        decode_users(&mut c)?
    } else {
        BTreeMap::new()
    };
    let acls = if format >= FORMAT_V4 {
        decode_acls(&mut c)?
    } else {
        Default::default()
    };
    c.finish()?;
    Ok(MetadataImage {
        version,
        topics,
        next_producer_id,
        nodes,
        users,
        acls,
    })
}

fn decode_topic(c: &mut Cursor<'_>, format: u16) -> Result<TopicMeta, MetadataError> {
    let name: Arc<str> = Arc::from(c.string()?);
    let topic_id = c.uuid()?;
    let partitions = c.i32()?;
    if !(1..=MAX_PARTITIONS_PER_TOPIC).contains(&partitions) {
        return Err(MetadataError::Corrupt(format!(
            "topic '{name}' has {partitions} partitions"
        )));
    }
    let configs = c.configs()?;
    let replicas = if format == FORMAT_V1 {
        vec![vec![0]; partitions as usize]
    } else {
        (0..partitions)
            .map(|_| c.replicas())
            .collect::<Result<_, _>>()?
    };
    Ok(TopicMeta {
        name,
        topic_id,
        partitions,
        configs,
        replicas: replicas.into(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::random_uuid;

    const PASSWORD: &[u8] = b"correct-horse-battery";

    fn sample() -> MetadataImage {
        let mut image = MetadataImage {
            version: 7,
            next_producer_id: 3000,
            ..Default::default()
        };
        image.nodes.insert(
            2,
            NodeInfo {
                id: 2,
                host: "10.88.0.12".into(),
                port: 9092,
                rpc: "10.88.0.12:33145".into(),
                rack: Some("r1".into()),
            },
        );
        let t = TopicMeta {
            name: "a".into(),
            topic_id: random_uuid(),
            partitions: 2,
            configs: BTreeMap::from([("retention.ms".into(), "5".into())]),
            replicas: vec![vec![2], vec![2, 0]].into(),
        };
        image.topics.insert("a".into(), Arc::new(t));
        let mut creds = UserCredentials::new();
        for m in crate::auth::SCRAM_MECHANISMS {
            let c =
                crate::auth::scram::ScramCredential::from_password(m, PASSWORD, vec![4; 16], 4096);
            creds.insert(m, c);
        }
        image.users.insert("alice".into(), creds);
        image.acls.insert(acl_binding());
        image
    }

    fn acl_binding() -> crate::auth::acl::AclBinding {
        use crate::auth::acl::*;
        AclBinding {
            resource_type: ResourceType::Topic,
            pattern_type: PatternType::Prefixed,
            resource_name: "pay".into(),
            principal: "User:alice".into(),
            host: "*".into(),
            operation: Operation::Write,
            permission: Permission::Allow,
        }
    }

    #[test]
    fn acls_survive_the_file() {
        let image = sample();
        let back = decode_file(&encode_file(&image)).unwrap();
        assert_eq!(back.acls, image.acls);
        assert!(back.acls.contains(&acl_binding()));
    }

    /// A format-3 file (users, no ACLs) written by the broker before ACLs existed (encoded
    /// by the code of commit 438155f: node 2, topic "a" of 2 partitions, user alice with a
    /// SCRAM-SHA-256 credential) still loads, with no ACLs.
    #[test]
    fn format_3_files_still_load_without_acls() {
        let file = include_bytes!("testdata/metadata-format3.bin");
        assert_eq!(u16::from_be_bytes([file[4], file[5]]), FORMAT_V3);
        let image = decode_file(file).unwrap();
        assert_eq!((image.version, image.next_producer_id), (7, 3000));
        assert_eq!(image.nodes[&2].rack.as_deref(), Some("r1"));
        assert_eq!(&*image.topics["a"].replicas, &[vec![2], vec![2, 0]]);
        let cred = image.scram_credential("alice", crate::auth::Mechanism::ScramSha256);
        assert!(cred.unwrap().verify_password(PASSWORD));
        assert!(image.acls.is_empty());
        let again = decode_file(&encode_file(&image)).unwrap();
        assert_eq!(again, image, "rewritten in format 4");
    }

    #[test]
    fn corrupt_file_is_refused() {
        let image = sample();
        let good = encode_file(&image);
        assert_eq!(decode_file(&good).unwrap(), image);
        for i in 0..good.len() {
            let mut bad = good.clone();
            bad[i] ^= 0x40;
            assert!(decode_file(&bad).is_err(), "flip at byte {i} accepted");
            assert!(decode_file(&good[..i]).is_err(), "cut at byte {i} accepted");
        }
    }

    /// A format-1 file written by the single-node broker decodes, with every partition on
    /// node 0 (the id a pre-cluster data dir gets).
    #[test]
    fn format_1_files_still_load() {
        let mut body = Vec::new();
        body.extend_from_slice(&5u64.to_be_bytes());
        body.extend_from_slice(&1000i64.to_be_bytes());
        body.extend_from_slice(&1u32.to_be_bytes());
        put_str(&mut body, "orders");
        body.extend_from_slice(&[9u8; 16]);
        body.extend_from_slice(&3i32.to_be_bytes());
        body.extend_from_slice(&0u16.to_be_bytes());
        let image = decode_file(&frame(MAGIC, FORMAT_V1, &body)).unwrap();
        assert_eq!(image.version, 5);
        assert_eq!(image.next_producer_id, 1000);
        let t = &image.topics["orders"];
        assert_eq!((t.partitions, t.topic_id), (3, [9u8; 16]));
        assert_eq!(&*t.replicas, &[vec![0], vec![0], vec![0]]);
        assert!(image.nodes.is_empty());
    }
}
