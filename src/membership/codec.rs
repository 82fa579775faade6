//! Gossip wire format: foca's headers and member updates with our identity ([`Peer`]), and
//! the status broadcast ([`Status`]). All integers big-endian; strings `u8 length | UTF-8`.
//!
//! Packet: `magic u8 (0xA7) | version u8 (1) | src peer | src_incarnation u16 | dst peer |
//! message tag u8 (+ peer and probe number u8 for the indirect probe messages, probe number
//! for ping/ack)`, then foca's update count and updates, each `peer | incarnation u16 |
//! state u8`, then custom broadcasts. Peer: `family u8 (4|6) | ip | port u16 | generation u64
//! | node_id i32 | kafka_host | kafka_port u16 | rpc | rack flag u8 (+ rack)`.
//!
//! Every read checks the bytes that remain first; nothing allocates more than the packet
//! holds (a packet is at most [`super::GossipConfig::max_packet_bytes`]).

use super::{GossipError, Health, NodeCard};
use bytes::{Buf, BufMut};
use foca::{Header, Identity, Member, Message, State};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;

const MAGIC: u8 = 0xA7;
const VERSION: u8 = 1;
/// Longest string in a card (hosts, addresses, racks).
const MAX_STR: usize = 255;

/// A member's identity: its gossip address, the generation of this run and its card.
/// A seed placeholder has generation 0 and an empty card with node id -1.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Peer {
    pub addr: SocketAddr,
    pub generation: u64,
    pub card: Arc<NodeCard>,
}

impl Peer {
    /// The identity we announce to before we know a seed's real identity.
    pub fn placeholder(addr: SocketAddr) -> Peer {
        Peer {
            addr,
            generation: 0,
            card: Arc::new(NodeCard {
                node_id: -1,
                kafka_host: String::new(),
                kafka_port: 0,
                rpc: String::new(),
                rack: None,
            }),
        }
    }

    pub fn is_placeholder(&self) -> bool {
        self.generation == 0
    }
}

impl Identity for Peer {
    type Addr = SocketAddr;

    /// Declared down while alive (a long pause, a partition): come back as the next
    /// generation, which wins over the old identity everywhere.
    fn renew(&self) -> Option<Self> {
        Some(Peer {
            generation: self.generation.saturating_add(1),
            ..self.clone()
        })
    }

    fn addr(&self) -> SocketAddr {
        self.addr
    }

    fn win_addr_conflict(&self, adversary: &Self) -> bool {
        self.generation > adversary.generation
    }
}

/// A node's status broadcast: health now, soft state later. `seq` grows with every new
/// status of one generation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Status {
    pub node_id: i32,
    pub generation: u64,
    pub seq: u64,
    pub health: Health,
}

const STATUS_TAG: u8 = 1;
/// Encoded size of a [`Status`].
pub const STATUS_BYTES: usize = 1 + 4 + 8 + 8 + 1;

impl Status {
    pub fn encode(&self) -> [u8; STATUS_BYTES] {
        let mut out = [0u8; STATUS_BYTES];
        let mut b = &mut out[..];
        b.put_u8(STATUS_TAG);
        b.put_i32(self.node_id);
        b.put_u64(self.generation);
        b.put_u64(self.seq);
        b.put_u8(match self.health {
            Health::Starting => 0,
            Health::Ready => 1,
            Health::Stopping => 2,
        });
        out
    }

    pub fn decode(mut b: &[u8]) -> Result<Status, GossipError> {
        if b.len() != STATUS_BYTES || b.get_u8() != STATUS_TAG {
            return Err(bad("malformed status broadcast"));
        }
        let (node_id, generation, seq) = (b.get_i32(), b.get_u64(), b.get_u64());
        let health = match b.get_u8() {
            0 => Health::Starting,
            1 => Health::Ready,
            2 => Health::Stopping,
            h => return Err(bad(&format!("unknown health {h}"))),
        };
        Ok(Status {
            node_id,
            generation,
            seq,
            health,
        })
    }

    /// Which of two statuses of the same node is newer.
    pub fn version(&self) -> (u64, u64) {
        (self.generation, self.seq)
    }
}

fn bad(why: &str) -> GossipError {
    GossipError::BadPacket(why.to_string())
}

fn need(b: &impl Buf, n: usize) -> Result<(), GossipError> {
    if b.remaining() < n {
        return Err(bad("truncated"));
    }
    Ok(())
}

fn put_short_str(b: &mut impl BufMut, s: &str) {
    let mut end = s.len().min(MAX_STR);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    b.put_u8(end as u8);
    b.put_slice(&s.as_bytes()[..end]);
}

fn get_short_str(b: &mut impl Buf) -> Result<String, GossipError> {
    need(b, 1)?;
    let len = usize::from(b.get_u8());
    need(b, len)?;
    let mut raw = vec![0u8; len];
    b.copy_to_slice(&mut raw);
    String::from_utf8(raw).map_err(|_| bad("string is not UTF-8"))
}

fn str_len(s: &str) -> usize {
    1 + s.len().min(MAX_STR)
}

/// Bytes [`put_peer`] writes for `p`.
pub fn peer_len(p: &Peer) -> usize {
    let ip = if p.addr.is_ipv4() { 4 } else { 16 };
    let c = &p.card;
    let rack = 1 + c.rack.as_deref().map_or(0, str_len);
    1 + ip + 2 + 8 + 4 + str_len(&c.kafka_host) + 2 + str_len(&c.rpc) + rack
}

pub fn put_peer(b: &mut impl BufMut, p: &Peer) {
    match p.addr.ip() {
        IpAddr::V4(ip) => {
            b.put_u8(4);
            b.put_slice(&ip.octets());
        }
        IpAddr::V6(ip) => {
            b.put_u8(6);
            b.put_slice(&ip.octets());
        }
    }
    b.put_u16(p.addr.port());
    b.put_u64(p.generation);
    let c = &p.card;
    b.put_i32(c.node_id);
    put_short_str(b, &c.kafka_host);
    b.put_u16(c.kafka_port);
    put_short_str(b, &c.rpc);
    match &c.rack {
        Some(r) => {
            b.put_u8(1);
            put_short_str(b, r);
        }
        None => b.put_u8(0),
    }
}

fn get_ip(b: &mut impl Buf) -> Result<IpAddr, GossipError> {
    need(b, 1)?;
    match b.get_u8() {
        4 => {
            need(b, 4)?;
            let mut o = [0u8; 4];
            b.copy_to_slice(&mut o);
            Ok(IpAddr::V4(Ipv4Addr::from(o)))
        }
        6 => {
            need(b, 16)?;
            let mut o = [0u8; 16];
            b.copy_to_slice(&mut o);
            Ok(IpAddr::V6(Ipv6Addr::from(o)))
        }
        f => Err(bad(&format!("unknown address family {f}"))),
    }
}

pub fn get_peer(b: &mut impl Buf) -> Result<Peer, GossipError> {
    let ip = get_ip(b)?;
    need(b, 2 + 8 + 4)?;
    let addr = SocketAddr::new(ip, b.get_u16());
    let generation = b.get_u64();
    let node_id = b.get_i32();
    let kafka_host = get_short_str(b)?;
    need(b, 2)?;
    let kafka_port = b.get_u16();
    let rpc = get_short_str(b)?;
    need(b, 1)?;
    let rack = match b.get_u8() {
        0 => None,
        1 => Some(get_short_str(b)?),
        f => return Err(bad(&format!("bad rack flag {f}"))),
    };
    if node_id < -1 || (node_id == -1) != (generation == 0) {
        return Err(bad("bad node id or generation"));
    }
    let card = NodeCard {
        node_id,
        kafka_host,
        kafka_port,
        rpc,
        rack,
    };
    Ok(Peer {
        addr,
        generation,
        card: Arc::new(card),
    })
}

/// foca's [`foca::Codec`] for [`Peer`] identities.
#[derive(Default)]
pub struct WireCodec;

fn message_tag(m: &Message<Peer>) -> (u8, Option<(&Peer, u8)>, Option<u8>) {
    match m {
        Message::Ping(n) => (1, None, Some(*n)),
        Message::Ack(n) => (2, None, Some(*n)),
        Message::PingReq {
            target,
            probe_number,
        } => (3, Some((target, *probe_number)), None),
        Message::IndirectPing {
            origin,
            probe_number,
        } => (4, Some((origin, *probe_number)), None),
        Message::IndirectAck {
            target,
            probe_number,
        } => (5, Some((target, *probe_number)), None),
        Message::ForwardedAck {
            origin,
            probe_number,
        } => (6, Some((origin, *probe_number)), None),
        Message::Announce => (7, None, None),
        Message::Feed => (8, None, None),
        Message::Gossip => (9, None, None),
        Message::Broadcast => (10, None, None),
        Message::TurnUndead => (11, None, None),
    }
}

fn get_message(b: &mut impl Buf) -> Result<Message<Peer>, GossipError> {
    need(b, 1)?;
    let tag = b.get_u8();
    let probe = |b: &mut dyn Buf| -> Result<u8, GossipError> {
        if !b.has_remaining() {
            return Err(bad("truncated"));
        }
        Ok(b.get_u8())
    };
    Ok(match tag {
        1 => Message::Ping(probe(b)?),
        2 => Message::Ack(probe(b)?),
        3..=6 => {
            let peer = get_peer(b)?;
            let n = probe(b)?;
            match tag {
                3 => Message::PingReq {
                    target: peer,
                    probe_number: n,
                },
                4 => Message::IndirectPing {
                    origin: peer,
                    probe_number: n,
                },
                5 => Message::IndirectAck {
                    target: peer,
                    probe_number: n,
                },
                _ => Message::ForwardedAck {
                    origin: peer,
                    probe_number: n,
                },
            }
        }
        7 => Message::Announce,
        8 => Message::Feed,
        9 => Message::Gossip,
        10 => Message::Broadcast,
        11 => Message::TurnUndead,
        t => return Err(bad(&format!("unknown message tag {t}"))),
    })
}

impl foca::Codec<Peer> for WireCodec {
    type Error = GossipError;

    fn encode_header(
        &mut self,
        header: &Header<Peer>,
        mut buf: impl BufMut,
    ) -> Result<(), GossipError> {
        let (tag, peer, probe) = message_tag(&header.message);
        let len = 2 + peer_len(&header.src) + 2 + peer_len(&header.dst) + 1;
        let extra = peer.map_or(0, |(p, _)| peer_len(p) + 1) + usize::from(probe.is_some());
        if buf.remaining_mut() < len + extra {
            return Err(GossipError::TooLarge(len + extra));
        }
        buf.put_u8(MAGIC);
        buf.put_u8(VERSION);
        put_peer(&mut buf, &header.src);
        buf.put_u16(header.src_incarnation);
        put_peer(&mut buf, &header.dst);
        buf.put_u8(tag);
        if let Some((p, n)) = peer {
            put_peer(&mut buf, p);
            buf.put_u8(n);
        }
        if let Some(n) = probe {
            buf.put_u8(n);
        }
        Ok(())
    }

    fn decode_header(&mut self, mut buf: impl Buf) -> Result<Header<Peer>, GossipError> {
        need(&buf, 2)?;
        if buf.get_u8() != MAGIC || buf.get_u8() != VERSION {
            return Err(bad("not a ringmq gossip packet of version 1"));
        }
        let src = get_peer(&mut buf)?;
        need(&buf, 2)?;
        let src_incarnation = buf.get_u16();
        let dst = get_peer(&mut buf)?;
        let message = get_message(&mut buf)?;
        if src.is_placeholder() {
            return Err(bad("a packet from a placeholder identity"));
        }
        Ok(Header {
            src,
            src_incarnation,
            dst,
            message,
        })
    }

    fn encode_member(
        &mut self,
        member: &Member<Peer>,
        mut buf: impl BufMut,
    ) -> Result<(), GossipError> {
        let len = peer_len(member.id()) + 3;
        if buf.remaining_mut() < len {
            return Err(GossipError::TooLarge(len));
        }
        put_peer(&mut buf, member.id());
        buf.put_u16(member.incarnation());
        buf.put_u8(match member.state() {
            State::Alive => 0,
            State::Suspect => 1,
            State::Down => 2,
        });
        Ok(())
    }

    fn decode_member(&mut self, mut buf: impl Buf) -> Result<Member<Peer>, GossipError> {
        let id = get_peer(&mut buf)?;
        need(&buf, 3)?;
        let incarnation = buf.get_u16();
        let state = match buf.get_u8() {
            0 => State::Alive,
            1 => State::Suspect,
            2 => State::Down,
            s => return Err(bad(&format!("unknown member state {s}"))),
        };
        if id.is_placeholder() {
            return Err(bad("an update about a placeholder identity"));
        }
        Ok(Member::new(id, incarnation, state))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use foca::Codec;

    pub(crate) fn peer(i: i32) -> Peer {
        Peer {
            addr: format!("10.0.0.{}:33145", i + 1).parse().unwrap(),
            generation: 7,
            card: Arc::new(NodeCard {
                node_id: i,
                kafka_host: format!("host-{i}"),
                kafka_port: 9092,
                rpc: format!("10.0.0.{}:33145", i + 1),
                rack: (i % 2 == 0).then(|| "r1".to_string()),
            }),
        }
    }

    fn headers() -> Vec<Header<Peer>> {
        let msgs = vec![
            Message::Ping(3),
            Message::Ack(4),
            Message::PingReq {
                target: peer(3),
                probe_number: 9,
            },
            Message::IndirectPing {
                origin: peer(4),
                probe_number: 1,
            },
            Message::IndirectAck {
                target: peer(5),
                probe_number: 2,
            },
            Message::ForwardedAck {
                origin: peer(6),
                probe_number: 3,
            },
            Message::Announce,
            Message::Feed,
            Message::Gossip,
            Message::Broadcast,
            Message::TurnUndead,
        ];
        msgs.into_iter()
            .map(|message| Header {
                src: peer(1),
                src_incarnation: 5,
                dst: Peer::placeholder("10.0.0.9:1".parse().unwrap()),
                message,
            })
            .collect()
    }

    #[test]
    fn headers_round_trip_and_every_cut_or_flip_is_refused_or_harmless() {
        for h in headers() {
            let mut wire = Vec::new();
            WireCodec.encode_header(&h, &mut wire).unwrap();
            assert_eq!(WireCodec.decode_header(&wire[..]).unwrap(), h);
            for cut in 0..wire.len() {
                assert!(WireCodec.decode_header(&wire[..cut]).is_err(), "cut {cut}");
            }
            for i in 0..wire.len() {
                let mut bad = wire.clone();
                bad[i] ^= 0xff;
                let _ = WireCodec.decode_header(&bad[..]); // never panics
            }
        }
    }

    #[test]
    fn members_round_trip_and_encoding_never_overruns() {
        let m = Member::new(peer(2), 3, State::Suspect);
        let mut wire = Vec::new();
        WireCodec.encode_member(&m, &mut wire).unwrap();
        assert_eq!(wire.len(), peer_len(m.id()) + 3);
        assert_eq!(WireCodec.decode_member(&wire[..]).unwrap(), m);
        let mut small = [0u8; 10];
        assert!(WireCodec.encode_member(&m, &mut small[..]).is_err());
        assert_eq!(small, [0u8; 10], "a failed encode leaves the buffer clean");
        let placeholder = Member::new(Peer::placeholder(m.id().addr), 0, State::Alive);
        let mut wire = Vec::new();
        WireCodec.encode_member(&placeholder, &mut wire).unwrap();
        assert!(WireCodec.decode_member(&wire[..]).is_err());
    }

    #[test]
    fn status_round_trips_and_rejects_garbage() {
        let s = Status {
            node_id: 4,
            generation: 9,
            seq: 2,
            health: Health::Ready,
        };
        assert_eq!(Status::decode(&s.encode()).unwrap(), s);
        let wire = s.encode();
        for cut in 0..wire.len() {
            assert!(Status::decode(&wire[..cut]).is_err());
        }
        let mut bad = wire;
        bad[STATUS_BYTES - 1] = 9;
        assert!(Status::decode(&bad).is_err());
    }
}
