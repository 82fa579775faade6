//! Where a new partition's replicas go (issue 11 item 5). The controller leader decides, and
//! the decision travels in the committed command, so every node agrees.
//!
//! Rules, in order: the `replication_factor` replicas of a partition are on distinct live
//! nodes; a replica goes to a rack the partition does not use yet when one is left; the first
//! replica (the preferred leader) goes to the node leading the fewest partitions so far;
//! otherwise the node holding the fewest replicas, then the lowest id. Counts include every
//! existing topic, so leaders stay balanced across topics too.

use super::MetadataImage;
use std::collections::BTreeMap;

/// A live node as placement sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Candidate {
    pub id: i32,
    pub rack: Option<String>,
}

/// Why replicas could not be placed (Kafka INVALID_REPLICATION_FACTOR).
#[derive(Debug, PartialEq, Eq)]
pub struct InvalidReplicationFactor(pub String);

/// The replication factor a CreateTopics request asks for: `-1` means the broker default
/// (`default` if set, else min(3, live nodes)); it must be 1..=live nodes.
pub fn replication_factor(
    requested: i16,
    default: Option<i16>,
    live: usize,
) -> Result<usize, InvalidReplicationFactor> {
    let rf = if requested == -1 {
        default.map_or(live.min(3) as i64, i64::from)
    } else {
        i64::from(requested)
    };
    if rf < 1 || rf > live as i64 {
        return Err(InvalidReplicationFactor(format!(
            "replication factor {rf} must be between 1 and the number of live brokers ({live})"
        )));
    }
    Ok(rf as usize)
}

#[derive(Default, Clone, Copy)]
struct Load {
    leaders: usize,
    replicas: usize,
}

fn loads(image: &MetadataImage) -> BTreeMap<i32, Load> {
    let mut loads: BTreeMap<i32, Load> = BTreeMap::new();
    for t in image.topics.values() {
        for set in t.replicas.iter() {
            for (k, &n) in set.iter().enumerate() {
                let l = loads.entry(n).or_default();
                l.replicas += 1;
                l.leaders += usize::from(k == 0);
            }
        }
    }
    loads
}

/// Replica sets for `partitions` new partitions on `live` nodes (sorted or not).
pub fn place(
    image: &MetadataImage,
    live: &[Candidate],
    partitions: usize,
    rf: usize,
) -> Result<Vec<Vec<i32>>, InvalidReplicationFactor> {
    if rf == 0 || rf > live.len() {
        return Err(InvalidReplicationFactor(format!(
            "replication factor {rf} must be between 1 and the number of live brokers ({})",
            live.len()
        )));
    }
    let mut nodes: Vec<&Candidate> = live.iter().collect();
    nodes.sort_by_key(|c| c.id);
    let mut load = loads(image);
    let mut out = Vec::with_capacity(partitions);
    for _ in 0..partitions {
        let mut set: Vec<&Candidate> = Vec::with_capacity(rf);
        while set.len() < rf {
            let pick = best(&nodes, &set, &load);
            set.push(pick);
        }
        for (k, c) in set.iter().enumerate() {
            let l = load.entry(c.id).or_default();
            l.replicas += 1;
            l.leaders += usize::from(k == 0);
        }
        out.push(set.iter().map(|c| c.id).collect());
    }
    Ok(out)
}

/// The best next replica for `set`; `nodes` has more nodes than `set`.
fn best<'a>(
    nodes: &[&'a Candidate],
    set: &[&Candidate],
    load: &BTreeMap<i32, Load>,
) -> &'a Candidate {
    let leader = set.is_empty();
    let rack_used = |c: &Candidate| c.rack.is_some() && set.iter().any(|s| s.rack == c.rack);
    let key = |c: &Candidate| {
        let l = load.get(&c.id).copied().unwrap_or_default();
        let first = if leader { l.leaders } else { 0 };
        (rack_used(c), first, l.replicas, c.id)
    };
    nodes
        .iter()
        .filter(|c| !set.iter().any(|s| s.id == c.id))
        .min_by_key(|c| key(c))
        .copied()
        .expect("rf <= live nodes")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::TopicMeta;
    use std::sync::Arc;

    fn nodes(racks: &[Option<&str>]) -> Vec<Candidate> {
        racks
            .iter()
            .enumerate()
            .map(|(i, r)| Candidate {
                id: i as i32 * 2,
                rack: r.map(String::from),
            })
            .collect()
    }

    fn with_topic(image: &mut MetadataImage, name: &str, replicas: Vec<Vec<i32>>) {
        let t = TopicMeta {
            name: name.into(),
            topic_id: [1; 16],
            partitions: replicas.len() as i32,
            configs: Default::default(),
            replicas: replicas.into(),
        };
        image.topics.insert(name.into(), Arc::new(t));
    }

    fn leader_counts(sets: &[Vec<i32>]) -> BTreeMap<i32, usize> {
        let mut m = BTreeMap::new();
        for s in sets {
            *m.entry(s[0]).or_default() += 1;
        }
        m
    }

    #[test]
    fn leaders_balance_and_replicas_are_distinct() {
        let live = nodes(&[None, None, None]);
        let mut image = MetadataImage::default();
        let sets = place(&image, &live, 6, 1).unwrap();
        assert_eq!(
            leader_counts(&sets),
            BTreeMap::from([(0, 2), (2, 2), (4, 2)])
        );
        for rf in 1..=3 {
            for s in place(&image, &live, 7, rf).unwrap() {
                assert_eq!(s.len(), rf);
                assert!(
                    s.iter().enumerate().all(|(i, a)| !s[..i].contains(a)),
                    "{s:?}"
                );
            }
        }
        // a second topic fills in the nodes the first one left light
        with_topic(&mut image, "a", vec![vec![0], vec![0], vec![2]]);
        let sets = place(&image, &live, 3, 1).unwrap();
        assert_eq!(leader_counts(&sets), BTreeMap::from([(2, 1), (4, 2)]));
    }

    #[test]
    fn racks_are_spread() {
        let live = nodes(&[
            Some("a"),
            Some("a"),
            Some("b"),
            Some("b"),
            Some("c"),
            Some("c"),
        ]);
        let rack = |id: i32| live.iter().find(|c| c.id == id).unwrap().rack.clone();
        for s in place(&MetadataImage::default(), &live, 12, 3).unwrap() {
            let mut racks: Vec<_> = s.iter().map(|&n| rack(n)).collect();
            racks.sort();
            racks.dedup();
            assert_eq!(racks.len(), 3, "{s:?} uses {racks:?}");
        }
    }

    #[test]
    fn replication_factor_rules() {
        assert_eq!(replication_factor(-1, None, 5), Ok(3));
        assert_eq!(replication_factor(-1, None, 2), Ok(2));
        assert_eq!(replication_factor(-1, Some(1), 5), Ok(1));
        assert_eq!(replication_factor(3, None, 3), Ok(3));
        for (rf, live) in [(4, 3), (0, 3), (-2, 3)] {
            let e = replication_factor(rf, None, live).unwrap_err();
            assert!(e.0.contains("between 1 and"), "{}", e.0);
        }
        assert!(place(&MetadataImage::default(), &nodes(&[None]), 1, 2).is_err());
    }
}
