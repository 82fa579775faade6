//! A tiny HTTP/1.1 server for operators, on shard 0: `GET /metrics` (Prometheus text of every
//! shard, gathered through the router) and `GET /health` (503 until every shard has recovered
//! its partitions and listens, 200 after). One request per connection; request heads larger
//! than [`MAX_REQUEST_HEAD_BYTES`] or slower than [`REQUEST_TIMEOUT`] are dropped.

use crate::metrics::{render, Snapshot};
use crate::model::ShardId;
use crate::router::{Router, ShardCall, ShardReply};
use futures_lite::{AsyncReadExt, AsyncWriteExt};
use glommio::net::{TcpListener, TcpStream};
use std::rc::Rc;
use std::time::Duration;

pub const MAX_REQUEST_HEAD_BYTES: usize = 8 * 1024;
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

/// Bind the metrics address without SO_REUSEPORT (so two brokers cannot share it silently).
pub fn bind(addr: std::net::SocketAddr) -> std::io::Result<TcpListener> {
    use std::os::fd::{FromRawFd, IntoRawFd};
    let std_listener = std::net::TcpListener::bind(addr)?;
    // SAFETY: the descriptor comes from a listener we own and hand over whole.
    Ok(unsafe { TcpListener::from_raw_fd(std_listener.into_raw_fd()) })
}

/// Serve until the listener is dropped. `ready` says whether every shard is serving.
pub async fn serve(listener: TcpListener, router: Rc<Router>, ready: impl Fn() -> bool + 'static) {
    let ready = Rc::new(ready);
    loop {
        let Ok(stream) = listener.accept().await else {
            glommio::timer::sleep(Duration::from_millis(10)).await;
            continue;
        };
        let (router, ready) = (router.clone(), ready.clone());
        glommio::spawn_local(async move {
            let _ = glommio::timer::timeout(REQUEST_TIMEOUT, async move {
                answer(stream, &router, ready()).await;
                Ok(())
            })
            .await;
        })
        .detach();
    }
}

async fn read_head(stream: &mut TcpStream) -> Option<String> {
    let mut head = Vec::with_capacity(512);
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = stream.read(&mut buf).await.ok()?;
        if n == 0 || head.len() + n > MAX_REQUEST_HEAD_BYTES {
            return None;
        }
        head.extend_from_slice(&buf[..n]);
    }
    String::from_utf8(head).ok()
}

async fn answer(mut stream: TcpStream, router: &Router, ready: bool) {
    let Some(head) = read_head(&mut stream).await else {
        return;
    };
    let mut words = head.split_whitespace();
    let (method, path) = (words.next().unwrap_or(""), words.next().unwrap_or(""));
    let (status, body) = match (method, path) {
        ("GET", "/metrics") => ("200 OK", render(&gather(router).await)),
        ("GET", "/health") if ready => ("200 OK", "ok\n".to_string()),
        ("GET", "/health") => ("503 Service Unavailable", "recovering\n".to_string()),
        ("GET", _) => ("404 Not Found", "not found\n".to_string()),
        _ => ("405 Method Not Allowed", "only GET\n".to_string()),
    };
    let response = format!(
        "HTTP/1.1 {status}\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = stream.write_all(response.as_bytes()).await;
    let _ = stream.close().await;
}

async fn gather(router: &Router) -> Vec<Snapshot> {
    let calls = (0..router.shard_count()).map(|s| async move {
        match router.call(ShardId(s), ShardCall::Metrics).await {
            Ok(ShardReply::Metrics(snap)) => Some(*snap),
            _ => None,
        }
    });
    crate::base::join_all(calls)
        .await
        .into_iter()
        .flatten()
        .collect()
}
