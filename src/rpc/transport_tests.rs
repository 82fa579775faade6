//! The transport over real loopback TCP: two (or three) nodes' [`Rpc`]s on one glommio
//! executor, each with its own listener.

use super::*;
use glommio::net::TcpListener;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::{Duration, Instant};

const KIND: u16 = 150;

fn run<F: std::future::Future<Output = ()> + 'static>(f: impl FnOnce() -> F + Send + 'static) {
    glommio::LocalExecutorBuilder::new(glommio::Placement::Unbound)
        .spawn(f)
        .expect("executor")
        .join()
        .expect("test body");
}

/// A node listening on a free loopback port.
fn node(id: NodeId, cluster: &str) -> (Rc<Rpc>, SocketAddr) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    let rpc = Rpc::new(RpcConfig::new(id, cluster, &addr.to_string()));
    glommio::spawn_local(rpc.clone().serve(listener)).detach();
    (rpc, addr)
}

async fn recv_within(inbox: &Inbox, t: Duration) -> Option<Inbound> {
    glommio::timer::timeout(t, async { Ok(inbox.recv().await) })
        .await
        .ok()
        .flatten()
}

#[test]
fn one_way_messages_arrive_in_order_batched_into_few_frames() {
    run(|| async {
        let (a, _) = node(1, "c");
        let (b, b_addr) = node(2, "c");
        let inbox = b.subscribe(KIND).unwrap();
        a.set_peer(2, b_addr);
        const N: u64 = 2000;
        for i in 0..N {
            a.send(2, KIND, Bytes::copy_from_slice(&i.to_be_bytes()))
                .unwrap();
        }
        for i in 0..N {
            let m = recv_within(&inbox, Duration::from_secs(10))
                .await
                .expect("message");
            assert_eq!((m.from, m.kind, m.correlation), (1, KIND, 0));
            assert_eq!(m.payload.as_ref(), i.to_be_bytes());
        }
        let frames = a.stats.frames_sent.get();
        assert!(frames < N / 10, "{N} envelopes took {frames} frames");
        assert_eq!(a.stats.envelopes_sent.get(), N);
        a.close();
        b.close();
    });
}

#[test]
fn requests_are_answered_and_fail_cleanly() {
    run(|| async {
        let (a, _) = node(1, "c");
        let (b, b_addr) = node(2, "c");
        a.set_peer(2, b_addr);
        let inbox = b.subscribe(KIND).unwrap();
        let b2 = b.clone();
        glommio::spawn_local(async move {
            while let Some(m) = inbox.recv().await {
                let mut answer = m.payload.to_vec();
                answer.reverse();
                b2.reply(&m, Bytes::from(answer)).unwrap();
            }
        })
        .detach();
        let t = Duration::from_secs(5);
        let got = a.request(2, KIND, Bytes::from_static(b"abc"), t).await;
        assert_eq!(got.unwrap().as_ref(), b"cba");
        // B learnt A's address from the hello, so replies needed no set_peer on B.
        assert!(b.peer_addr(1).is_some());
        let none = a.request(2, KIND + 1, Bytes::new(), t).await;
        assert_eq!(none, Err(RpcError::NoHandler(KIND + 1)));
        let _silent = b.subscribe(KIND + 2).unwrap();
        let short = Duration::from_millis(200);
        let late = a.request(2, KIND + 2, Bytes::new(), short).await;
        assert_eq!(late, Err(RpcError::Timeout));
        assert_eq!(a.send(7, KIND, Bytes::new()), Err(RpcError::UnknownPeer(7)));
        assert_eq!(
            a.send(2, KIND_PING, Bytes::new()),
            Err(RpcError::ReservedKind(3))
        );
        // A request to ourselves takes the same path.
        let own = a.subscribe(KIND).unwrap();
        a.send(1, KIND, Bytes::from_static(b"self")).unwrap();
        assert_eq!(own.try_recv().unwrap().payload.as_ref(), b"self");
        a.close();
        b.close();
    });
}

/// Waits until the peer closes `s` (EOF or reset); false if it stays open for `t`.
async fn closed_by_peer(s: &mut glommio::net::TcpStream, t: Duration) -> bool {
    use futures_lite::AsyncReadExt;
    let _ = s.set_read_timeout(Some(t));
    let mut buf = [0u8; 64];
    loop {
        match s.read(&mut buf).await {
            Ok(0) => return true,
            Ok(_) => {}
            Err(e) => return e.kind() != std::io::ErrorKind::TimedOut,
        }
    }
}

#[test]
fn garbage_and_strangers_close_only_their_own_connection() {
    use futures_lite::AsyncWriteExt;
    run(|| async {
        let (a, _) = node(1, "c");
        let (b, b_addr) = node(2, "c");
        let inbox = b.subscribe(KIND).unwrap();
        a.set_peer(2, b_addr);
        a.send(2, KIND, Bytes::from_static(b"before")).unwrap();
        assert!(recv_within(&inbox, Duration::from_secs(5)).await.is_some());
        let mut junk = glommio::net::TcpStream::connect(b_addr).await.unwrap();
        junk.write_all(b"GET / HTTP/1.1\r\n\r\n").await.unwrap();
        assert!(closed_by_peer(&mut junk, Duration::from_secs(5)).await);
        // A node of another cluster says a valid hello: refused too.
        let mut out = BytesMut::new();
        let hello = Hello {
            node_id: 9,
            cluster_id: "other".into(),
            rpc_addr: "127.0.0.1:1".into(),
        };
        codec::encode_frame(&[Envelope::one_way(KIND_HELLO, hello.encode())], &mut out);
        let mut stranger = glommio::net::TcpStream::connect(b_addr).await.unwrap();
        stranger.write_all(&out).await.unwrap();
        assert!(closed_by_peer(&mut stranger, Duration::from_secs(5)).await);
        assert!(b.stats.bad_connections.get() >= 2);
        assert!(b.peer_addr(9).is_none());
        // The good connection still works.
        a.send(2, KIND, Bytes::from_static(b"after")).unwrap();
        let m = recv_within(&inbox, Duration::from_secs(5))
            .await
            .expect("after");
        assert_eq!(m.payload.as_ref(), b"after");
        a.close();
        b.close();
    });
}

#[test]
fn an_unreachable_peer_costs_a_bounded_queue_and_a_restarted_one_is_reached_again() {
    run(|| async {
        let (a, _) = node(1, "c");
        let (b, b_addr) = node(2, "c");
        let inbox = b.subscribe(KIND).unwrap();
        a.set_peer(2, b_addr);
        // Node 3 never answers: a closed port.
        let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let dead_addr = dead.local_addr().unwrap();
        drop(dead);
        a.set_peer(3, dead_addr);
        let mut refused = 0;
        for _ in 0..20_000 {
            if a.send(3, KIND, Bytes::from_static(b"x")) == Err(RpcError::QueueFull) {
                refused += 1;
            }
        }
        assert!(refused > 0, "the queue to a dead peer is bounded");
        a.send(2, KIND, Bytes::from_static(b"live")).unwrap();
        assert!(recv_within(&inbox, Duration::from_secs(5)).await.is_some());
        // Restart node 2 on the same port: A's writer reconnects by itself.
        b.close();
        drop(inbox);
        glommio::timer::sleep(Duration::from_millis(100)).await;
        let listener = TcpListener::bind(b_addr).expect("rebind");
        let b = Rpc::new(RpcConfig::new(2, "c", &b_addr.to_string()));
        glommio::spawn_local(b.clone().serve(listener)).detach();
        let inbox = b.subscribe(KIND).unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut got = None;
        while got.is_none() && Instant::now() < deadline {
            let _ = a.send(2, KIND, Bytes::from_static(b"again"));
            got = recv_within(&inbox, Duration::from_millis(200)).await;
        }
        assert_eq!(
            got.expect("reached after restart").payload.as_ref(),
            b"again"
        );
        a.close();
        b.close();
    });
}

#[test]
fn seeds_learn_the_caller_and_the_caller_learns_the_seed() {
    run(|| async {
        let (a, a_addr) = node(1, "c");
        let (b, b_addr) = node(2, "c");
        let seeds = vec![b_addr.to_string(), a_addr.to_string()];
        glommio::spawn_local(a.clone().bootstrap(seeds)).detach();
        let deadline = Instant::now() + Duration::from_secs(10);
        while (a.peer_addr(2).is_none() || b.peer_addr(1).is_none()) && Instant::now() < deadline {
            glommio::timer::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(a.peers(), vec![(2, b_addr)]);
        assert_eq!(b.peers(), vec![(1, a_addr)]);
        // Dialing itself (its own address is in the seed list) is skipped.
        assert_eq!(b.stats.bad_connections.get(), 0);
        a.close();
        b.close();
    });
}
