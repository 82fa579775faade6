//! Who answers for what: partition leaders and group coordinators, from the controller's
//! image (replica sets, registered nodes) and the gossip view (who is live).
//!
//! - A partition of one replica is led by that replica while it is live (leader epoch 0);
//!   none live: no leader (Metadata answers leader -1, LEADER_NOT_AVAILABLE).
//! - A partition of several replicas is a Raft group (issue 12): its leader is the one its
//!   replica on this node knows ([`PartitionLeadership`], pushed by the shard that drives the
//!   group), unless gossip sees that node down; its leader epoch is the Raft term; its ISR is
//!   what the leader reports (the voters it heard from recently), else the live replicas.
//!   A node that holds no replica of the partition knows no Raft leader and falls back to the
//!   first live replica.
//! - An image with no registered nodes comes from a broker before the controller: it is a
//!   cluster of one, and this node leads everything (the single-node path).
//! - A group's coordinator is the node that owns its group-log partition
//!   (`abs(java_hash(group)) % 50`): rendezvous hashing of the partition over the
//!   registered nodes, so a new node moves only about 1/n of the group-log partitions.
//!   The group log is not replicated yet: a coordinator that is down answers
//!   COORDINATOR_NOT_AVAILABLE until it is back (with its offsets).

use super::{MembershipView, MetadataImage, TopicMeta};

/// A replicated partition's leadership as its replica on this node knows it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PartitionLeadership {
    pub leader: Option<i32>,
    /// The Raft term (= the Kafka leader epoch).
    pub epoch: i32,
    /// The replicas in sync, as the leader reports them (empty on a follower).
    pub isr: Vec<i32>,
}

/// What Metadata says about one partition.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PartitionRoute {
    /// The node that serves the partition now, if any replica is live.
    pub leader: Option<i32>,
    /// The leader epoch (the Raft term of a replicated partition, 0 otherwise).
    pub leader_epoch: i32,
    pub replicas: Vec<i32>,
    /// Replicas in sync with the leader: without replication, the leader alone.
    pub isr: Vec<i32>,
    /// Replicas that are down.
    pub offline: Vec<i32>,
}

/// Whether the image predates the node registry (a single-node broker's image).
fn single_node(image: &MetadataImage) -> bool {
    image.nodes.is_empty()
}

/// The route of partition `p` of `topic` as node `me` sees it.
pub fn partition_route(
    image: &MetadataImage,
    view: &MembershipView,
    me: i32,
    topic: &TopicMeta,
    p: i32,
) -> PartitionRoute {
    if single_node(image) {
        return PartitionRoute {
            leader: Some(me),
            leader_epoch: 0,
            replicas: vec![me],
            isr: vec![me],
            offline: Vec::new(),
        };
    }
    let replicas = usize::try_from(p)
        .ok()
        .and_then(|i| topic.replicas.get(i))
        .cloned()
        .unwrap_or_default();
    let leader = replicas.iter().copied().find(|&r| view.is_live(r));
    let offline = replicas
        .iter()
        .copied()
        .filter(|&r| !view.is_live(r))
        .collect();
    PartitionRoute {
        leader,
        leader_epoch: 0,
        isr: leader.into_iter().collect(),
        replicas,
        offline,
    }
}

/// Whether partition `p` of `topic` is a Raft group (more than one replica).
pub fn is_replicated(topic: &TopicMeta, p: i32) -> bool {
    usize::try_from(p)
        .ok()
        .and_then(|i| topic.replicas.get(i))
        .is_some_and(|r| r.len() > 1)
}

/// [`partition_route`] for a partition whose Raft leadership this node knows (`raft`): the
/// leader is Raft's (unless gossip sees it down), the epoch its term, the ISR the leader's.
pub fn replicated_route(
    image: &MetadataImage,
    view: &MembershipView,
    me: i32,
    topic: &TopicMeta,
    p: i32,
    raft: Option<&PartitionLeadership>,
) -> PartitionRoute {
    let mut route = partition_route(image, view, me, topic, p);
    let Some(raft) = raft.filter(|_| !single_node(image) && is_replicated(topic, p)) else {
        return route;
    };
    let live = |n: i32| n == me || view.is_live(n);
    route.leader = raft.leader.filter(|&l| live(l));
    route.leader_epoch = raft.epoch;
    route.isr = if raft.isr.is_empty() {
        route
            .replicas
            .iter()
            .copied()
            .filter(|&r| live(r))
            .collect()
    } else {
        raft.isr.clone()
    };
    route
}

/// The leader of partition `p` of `topic`, if a replica is live.
pub fn partition_leader(
    image: &MetadataImage,
    view: &MembershipView,
    me: i32,
    topic: &TopicMeta,
    p: i32,
) -> Option<i32> {
    partition_route(image, view, me, topic, p).leader
}

/// The rendezvous weight of `node` for group-log partition `p`: the pair through the
/// splitmix64 finalizer (a full avalanche, so owners spread evenly).
fn weight(node: i32, p: i32) -> u64 {
    let mut z = (u64::from(node as u32) << 32) | u64::from(p as u32);
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// The node that owns group-log partition `p`, whether or not it is live.
pub fn group_log_owner(image: &MetadataImage, me: i32, p: i32) -> i32 {
    if single_node(image) {
        return me;
    }
    image
        .nodes
        .keys()
        .copied()
        .max_by_key(|&n| (weight(n, p), n))
        .unwrap_or(me)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::{NodeCard, NodeInfo, NodeState};
    use std::sync::Arc;

    fn image(nodes: &[i32]) -> MetadataImage {
        let mut image = MetadataImage::default();
        for &id in nodes {
            let info = NodeInfo {
                id,
                host: format!("h{id}"),
                port: 9092,
                rpc: format!("h{id}:33145"),
                rack: None,
            };
            image.nodes.insert(id, info);
        }
        image
    }

    fn view(states: &[(i32, NodeState)]) -> MembershipView {
        let mut v = MembershipView::default();
        for &(id, state) in states {
            let card = NodeCard {
                node_id: id,
                kafka_host: format!("h{id}"),
                kafka_port: 9092,
                rpc: String::new(),
                rack: None,
            };
            let mut solo = MembershipView::solo(card, "127.0.0.1:1".parse().unwrap());
            let mut m = solo.members.remove(&id).unwrap();
            m.state = state;
            v.members.insert(id, m);
        }
        v
    }

    fn topic(replicas: Vec<Vec<i32>>) -> TopicMeta {
        TopicMeta {
            name: "t".into(),
            topic_id: [1; 16],
            partitions: replicas.len() as i32,
            configs: Default::default(),
            replicas: Arc::from(replicas),
        }
    }

    #[test]
    fn leader_is_the_first_live_replica() {
        let img = image(&[1, 2, 3]);
        let t = topic(vec![vec![2], vec![3, 1]]);
        let v = view(&[
            (1, NodeState::Alive),
            (2, NodeState::Suspect),
            (3, NodeState::Dead),
        ]);
        let r0 = partition_route(&img, &v, 1, &t, 0);
        assert_eq!(
            (r0.leader, r0.isr.clone(), r0.offline.clone()),
            (Some(2), vec![2], vec![])
        );
        let r1 = partition_route(&img, &v, 1, &t, 1);
        assert_eq!(
            (r1.leader, r1.replicas.clone(), r1.offline.clone()),
            (Some(1), vec![3, 1], vec![3])
        );
        let v = view(&[(1, NodeState::Alive)]);
        let r0 = partition_route(&img, &v, 1, &t, 0);
        assert_eq!(
            (r0.leader, r0.isr.len(), r0.offline.clone()),
            (None, 0, vec![2])
        );
        assert_eq!(
            partition_route(&img, &v, 1, &t, 7).leader,
            None,
            "no such partition"
        );
    }

    #[test]
    fn an_image_without_nodes_is_a_cluster_of_one() {
        let t = topic(vec![vec![0]]);
        let r = partition_route(
            &MetadataImage::default(),
            &MembershipView::default(),
            5,
            &t,
            0,
        );
        assert_eq!(r.leader, Some(5));
        assert_eq!(group_log_owner(&MetadataImage::default(), 5, 3), 5);
    }

    #[test]
    fn group_log_partitions_spread_and_move_little_when_a_node_joins() {
        let three = image(&[1, 2, 3]);
        let owners: Vec<i32> = (0..50).map(|p| group_log_owner(&three, 1, p)).collect();
        for n in [1, 2, 3] {
            let count = owners.iter().filter(|&&o| o == n).count();
            assert!((8..=26).contains(&count), "node {n} owns {count} of 50");
        }
        let four = image(&[1, 2, 3, 4]);
        let moved = (0..50)
            .filter(|&p| group_log_owner(&four, 1, p) != owners[p as usize])
            .collect::<Vec<_>>();
        assert!(
            moved.iter().all(|&p| group_log_owner(&four, 1, p) == 4),
            "only to the newcomer"
        );
        assert!(moved.len() <= 25, "{} moved", moved.len());
    }
}
