//! One client connection: read frames, admit them by size, run each request as a task, and
//! write the responses in request order.
//!
//! Bounds: a frame larger than `max_request_bytes` closes the connection; before its body
//! is read, a frame must acquire its size from the shard's in-flight byte budget (released
//! when its response is written), so slow or many clients push back through TCP instead of
//! growing memory; a connection has at most [`MAX_INFLIGHT_PER_CONNECTION`] requests in
//! flight; a frame body must arrive within [`FRAME_BODY_TIMEOUT`].

use super::{handle_request, RequestError, ServerCtx};
use crate::protocol::header::RequestHeader;
use crate::protocol::Reader;
use bytes::{Bytes, BytesMut};
use futures_lite::{AsyncReadExt, AsyncWriteExt};
use glommio::net::TcpStream;
use std::rc::Rc;
use std::time::Duration;

/// Requests of one connection being handled at once (pipelining depth).
pub const MAX_INFLIGHT_PER_CONNECTION: usize = 32;
/// A frame whose body does not arrive within this time closes the connection.
pub const FRAME_BODY_TIMEOUT: Duration = Duration::from_secs(30);
/// Responses up to this size are coalesced into one buffer (one send); larger ones are
/// written part by part, record bytes straight from the log's buffers.
const COALESCE_BYTES: usize = 64 * 1024;

type Pending = glommio::task::JoinHandle<Result<Option<Vec<Bytes>>, RequestError>>;

pub async fn serve(ctx: Rc<ServerCtx>, stream: TcpStream) {
    let _ = stream.set_nodelay(true);
    let peer: Rc<str> = stream
        .peer_addr()
        .map(|a| a.to_string())
        .unwrap_or_default()
        .into();
    ctx.connections.set(ctx.connections.get() + 1);
    ctx.metrics.connections.set(ctx.connections.get() as u64);
    let (read_half, write_half) = futures_lite::io::split(stream);
    let (tx, rx) = glommio::channels::local_channel::new_bounded::<(
        Pending,
        glommio::sync::StaticPermit,
    )>(MAX_INFLIGHT_PER_CONNECTION);
    // When the client stops sending, the writer still answers what was read; a read or
    // protocol error ends both at once.
    let reader = async {
        read_frames(ctx.clone(), peer.clone(), read_half, tx).await?;
        futures_lite::future::pending::<Result<(), String>>().await
    };
    let writer = write_responses(write_half, rx);
    let outcome = futures_lite::future::race(reader, writer).await;
    if let Err(why) = outcome {
        ctx.log_client_error(&peer, &why);
    }
    ctx.connections.set(ctx.connections.get() - 1);
    ctx.metrics.connections.set(ctx.connections.get() as u64);
}

async fn read_frames(
    ctx: Rc<ServerCtx>,
    peer: Rc<str>,
    read_half: futures_lite::io::ReadHalf<TcpStream>,
    tx: glommio::channels::local_channel::LocalSender<(Pending, glommio::sync::StaticPermit)>,
) -> Result<(), String> {
    let mut reader = futures_lite::io::BufReader::with_capacity(64 * 1024, read_half);
    loop {
        let mut size_buf = [0u8; 4];
        match reader.read_exact(&mut size_buf).await {
            Ok(()) => {}
            Err(_) => return Ok(()), // closed by the client between frames
        }
        let size = i32::from_be_bytes(size_buf);
        if size < 8 || size as usize > ctx.config.max_request_bytes {
            return Err(format!(
                "frame of {size} bytes refused (max {})",
                ctx.config.max_request_bytes
            ));
        }
        let permit = ctx
            .inflight
            .acquire_static_permit(size as u64)
            .await
            .map_err(|_| "shutting down".to_string())?;
        let mut body = BytesMut::zeroed(size as usize);
        match glommio::timer::timeout(FRAME_BODY_TIMEOUT, async {
            reader
                .read_exact(&mut body)
                .await
                .map_err(glommio::GlommioError::IoError)
        })
        .await
        {
            Ok(()) => {}
            Err(e) => return Err(format!("frame body of {size} bytes not received: {e}")),
        }
        let frame = body.freeze();
        let mut r = Reader::new(frame);
        let header =
            RequestHeader::decode_any(&mut r).map_err(|e| format!("bad request header: {e}"))?;
        let (ctx2, peer2) = (ctx.clone(), peer.clone());
        let task =
            glommio::spawn_local(async move { handle_request(&ctx2, header, &peer2, r).await })
                .detach();
        if tx.send((task, permit)).await.is_err() {
            return Ok(());
        }
    }
}

async fn write_responses(
    mut write_half: futures_lite::io::WriteHalf<TcpStream>,
    rx: glommio::channels::local_channel::LocalReceiver<(Pending, glommio::sync::StaticPermit)>,
) -> Result<(), String> {
    while let Some((task, permit)) = rx.recv().await {
        let parts = match task.await {
            Some(Ok(Some(parts))) => parts,
            Some(Ok(None)) => continue, // acks=0 produce: no response
            Some(Err(e)) => return Err(e.to_string()),
            None => return Err("request task cancelled".into()),
        };
        write_frame(&mut write_half, parts)
            .await
            .map_err(|e| format!("write failed: {e}"))?;
        drop(permit);
    }
    Ok(())
}

/// Write one response frame: size prefix, then the parts (header and body).
async fn write_frame(
    w: &mut futures_lite::io::WriteHalf<TcpStream>,
    parts: Vec<Bytes>,
) -> std::io::Result<()> {
    let total: usize = parts.iter().map(Bytes::len).sum();
    let size = (total as u32).to_be_bytes();
    if total <= COALESCE_BYTES {
        let mut buf = BytesMut::with_capacity(total + 4);
        buf.extend_from_slice(&size);
        for p in &parts {
            buf.extend_from_slice(p);
        }
        w.write_all(&buf).await?;
    } else {
        w.write_all(&size).await?;
        for p in &parts {
            w.write_all(p).await?;
        }
    }
    w.flush().await
}
