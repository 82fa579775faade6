//! What operators see of the cluster (`ringmq cluster info` through DescribeCluster, and the
//! cluster gauges of `/metrics`): every node the controller registered or gossip knows, with
//! its gossip state, and the role of each node in the controller group.
//!
//! A node is listed if the controller's registry names it or gossip has heard of it; its
//! addresses come from its newest gossip card when gossip knows it (what it runs with now),
//! else from its registration. A registered node gossip never heard of is dead.

use super::{MembershipView, MetadataImage, NodeState};
use std::collections::BTreeMap;

/// One node as this node sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeStatus {
    pub id: i32,
    /// The Kafka endpoint clients are given.
    pub host: String,
    pub port: i32,
    /// `HOST:PORT` of its node-to-node transport and gossip.
    pub rpc: String,
    pub rack: Option<String>,
    pub state: NodeState,
}

/// Every known node, by id.
pub fn nodes(image: &MetadataImage, view: &MembershipView) -> Vec<NodeStatus> {
    let mut out: BTreeMap<i32, NodeStatus> = view
        .members
        .values()
        .map(|m| {
            let c = &m.card;
            let status = NodeStatus {
                id: c.node_id,
                host: c.kafka_host.clone(),
                port: i32::from(c.kafka_port),
                rpc: c.rpc.clone(),
                rack: c.rack.clone(),
                state: m.state,
            };
            (c.node_id, status)
        })
        .collect();
    for n in image.nodes.values() {
        out.entry(n.id).or_insert_with(|| NodeStatus {
            id: n.id,
            host: n.host.clone(),
            port: n.port,
            rpc: n.rpc.clone(),
            rack: n.rack.clone(),
            state: view.state(n.id),
        });
    }
    out.into_values().collect()
}

/// How many of `nodes` are alive, suspect and dead, in that order.
pub fn count_states(nodes: &[NodeStatus]) -> [u64; 3] {
    let count = |s: NodeState| nodes.iter().filter(|n| n.state == s).count() as u64;
    [
        count(NodeState::Alive),
        count(NodeState::Suspect),
        count(NodeState::Dead),
    ]
}

/// A node's part in the controller group (Raft group 0).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ControllerRole {
    /// The elected leader: every metadata change is committed through it.
    Leader,
    /// A voter (a seed node) that does not lead now.
    Voter,
    /// A raft learner: follows the committed log, does not vote (Kafka's "observer").
    Observer,
}

impl ControllerRole {
    pub fn as_str(self) -> &'static str {
        match self {
            ControllerRole::Leader => "leader",
            ControllerRole::Voter => "voter",
            ControllerRole::Observer => "observer",
        }
    }
}

/// The controller group as one node's controller knows it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ControllerStatus {
    pub leader: Option<i32>,
    pub term: u64,
    pub commit_index: u64,
    /// The voters (the seeds), by node id.
    pub voters: Vec<i32>,
    /// The learners (every other node once the leader added it), by node id.
    pub learners: Vec<i32>,
}

impl ControllerStatus {
    /// `node`'s role; `None`: not a member of the group (yet).
    pub fn role(&self, node: i32) -> Option<ControllerRole> {
        if self.leader == Some(node) {
            Some(ControllerRole::Leader)
        } else if self.voters.contains(&node) {
            Some(ControllerRole::Voter)
        } else if self.learners.contains(&node) {
            Some(ControllerRole::Observer)
        } else {
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::{MemberInfo, NodeCard, NodeInfo};
    use std::sync::Arc;

    fn member(id: i32, state: NodeState) -> (i32, MemberInfo) {
        let card = NodeCard {
            node_id: id,
            kafka_host: format!("10.0.0.{id}"),
            kafka_port: 9092,
            rpc: format!("10.0.0.{id}:33145"),
            rack: None,
        };
        let info = MemberInfo {
            card: Arc::new(card),
            generation: 1,
            gossip_addr: format!("10.0.0.{id}:33145").parse().unwrap(),
            state,
            health: crate::cluster::Health::Ready,
        };
        (id, info)
    }

    #[test]
    fn registered_and_gossiped_nodes_are_listed_once_with_their_state() {
        let mut image = MetadataImage::default();
        for id in [1, 2, 4] {
            let info = NodeInfo {
                id,
                host: "registered".into(),
                port: 1,
                rpc: "registered:1".into(),
                rack: Some("r".into()),
            };
            image.nodes.insert(id, info);
        }
        let view = MembershipView {
            version: 3,
            me: 1,
            members: [
                member(1, NodeState::Alive),
                member(2, NodeState::Suspect),
                member(3, NodeState::Dead),
            ]
            .into_iter()
            .collect(),
        };
        let got = nodes(&image, &view);
        let ids: Vec<_> = got.iter().map(|n| (n.id, n.state)).collect();
        assert_eq!(
            ids,
            [
                (1, NodeState::Alive),
                (2, NodeState::Suspect),
                (3, NodeState::Dead),
                (4, NodeState::Dead),
            ]
        );
        // Gossip's card wins (what the node runs with now); the registry fills the rest.
        assert_eq!((got[0].host.as_str(), got[0].port), ("10.0.0.1", 9092));
        assert_eq!(got[3].rpc, "registered:1");
        assert_eq!(got[3].rack.as_deref(), Some("r"));
        assert_eq!(count_states(&got), [1, 1, 2]);
    }

    #[test]
    fn roles_follow_the_leader_voters_and_learners() {
        let s = ControllerStatus {
            leader: Some(2),
            term: 3,
            commit_index: 9,
            voters: vec![1, 2, 3],
            learners: vec![4],
        };
        let roles: Vec<_> = (1..=5).map(|n| s.role(n)).collect();
        use ControllerRole::*;
        assert_eq!(
            roles,
            [Some(Voter), Some(Leader), Some(Voter), Some(Observer), None]
        );
    }
}
