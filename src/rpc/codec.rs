//! The node-to-node frame codec (sans-IO).
//!
//! A frame, all integers big-endian:
//!
//! | field | size | |
//! |---|---|---|
//! | magic `"RQ"` | 2 | |
//! | version | 1 | [`VERSION`] (1); another version closes the connection |
//! | flags | 1 | 0 (reserved) |
//! | body_len | 4 | at most the reader's limit ([`MAX_FRAME_BYTES`] by default) |
//! | crc32c | 4 | CRC-32C of the body |
//! | body | body_len | `count u16`, then `count` envelopes |
//!
//! An envelope is `kind u16 | correlation u64 | len u32 | payload[len]`. A frame carries every
//! envelope queued for one peer at the time it was written (batching); decoded payloads are
//! zero-copy slices of the frame. Anything that does not parse is an [`RpcError::BadFrame`]:
//! the caller closes that connection, and nothing else.

use super::{Envelope, RpcError};
use bytes::{Buf, BufMut, Bytes, BytesMut};

pub const MAGIC: [u8; 2] = *b"RQ";
pub const VERSION: u8 = 1;
pub const HEADER_BYTES: usize = 12;
/// Bytes of one envelope's header in a body.
pub const ENVELOPE_HEADER_BYTES: usize = 14;
/// Largest frame body accepted by default.
pub const MAX_FRAME_BYTES: usize = 16 << 20;

/// Bytes `envelopes` take as one frame.
pub fn frame_len<'a>(envelopes: impl IntoIterator<Item = &'a Envelope>) -> usize {
    HEADER_BYTES
        + 2
        + envelopes
            .into_iter()
            .map(|e| ENVELOPE_HEADER_BYTES + e.payload.len())
            .sum::<usize>()
}

/// Append one frame holding `envelopes` (at most `u16::MAX` of them) to `out`.
pub fn encode_frame(envelopes: &[Envelope], out: &mut BytesMut) {
    debug_assert!(envelopes.len() <= usize::from(u16::MAX));
    let start = out.len();
    out.reserve(frame_len(envelopes));
    out.put_slice(&MAGIC);
    out.put_u8(VERSION);
    out.put_u8(0);
    out.put_u32(0); // body_len, patched below
    out.put_u32(0); // crc, patched below
    let body_start = out.len();
    out.put_u16(envelopes.len() as u16);
    for e in envelopes {
        out.put_u16(e.kind);
        out.put_u64(e.correlation);
        out.put_u32(e.payload.len() as u32);
        out.put_slice(&e.payload);
    }
    let body_len = (out.len() - body_start) as u32;
    let crc = crc32c::crc32c(&out[body_start..]);
    out[start + 4..start + 8].copy_from_slice(&body_len.to_be_bytes());
    out[start + 8..start + 12].copy_from_slice(&crc.to_be_bytes());
}

/// The body length a frame header announces, after checking magic, version and `max`.
pub fn check_header(header: &[u8; HEADER_BYTES], max: usize) -> Result<usize, RpcError> {
    if header[..2] != MAGIC {
        return Err(RpcError::BadFrame("bad magic".into()));
    }
    if header[2] != VERSION {
        return Err(RpcError::BadFrame(format!("unknown version {}", header[2])));
    }
    if header[3] != 0 {
        return Err(RpcError::BadFrame("reserved flags set".into()));
    }
    let len = u32::from_be_bytes([header[4], header[5], header[6], header[7]]) as usize;
    if len > max {
        return Err(RpcError::BadFrame(format!(
            "frame of {len} bytes is over the {max}-byte limit"
        )));
    }
    Ok(len)
}

/// Take one whole frame off the front of `buf`, if it holds one. `Ok(None)`: need more bytes.
pub fn decode_frame(buf: &mut BytesMut, max: usize) -> Result<Option<Vec<Envelope>>, RpcError> {
    if buf.len() < HEADER_BYTES {
        return Ok(None);
    }
    let mut header = [0u8; HEADER_BYTES];
    header.copy_from_slice(&buf[..HEADER_BYTES]);
    let len = check_header(&header, max)?;
    if buf.len() < HEADER_BYTES + len {
        buf.reserve(HEADER_BYTES + len - buf.len());
        return Ok(None);
    }
    buf.advance(HEADER_BYTES);
    let body = buf.split_to(len).freeze();
    let crc = u32::from_be_bytes([header[8], header[9], header[10], header[11]]);
    decode_body(body, crc).map(Some)
}

/// Check a body's CRC and split it into envelopes (payloads share `body`).
pub fn decode_body(body: Bytes, crc: u32) -> Result<Vec<Envelope>, RpcError> {
    if crc32c::crc32c(&body) != crc {
        return Err(RpcError::BadFrame("checksum mismatch".into()));
    }
    let bad = |why: &str| RpcError::BadFrame(why.to_string());
    let mut rest = body.clone();
    if rest.remaining() < 2 {
        return Err(bad("short body"));
    }
    let count = usize::from(rest.get_u16());
    // Each envelope takes at least its header: a count beyond that is a lie.
    if count > rest.remaining() / ENVELOPE_HEADER_BYTES {
        return Err(bad("envelope count exceeds the body"));
    }
    let mut out = Vec::with_capacity(count);
    for _ in 0..count {
        if rest.remaining() < ENVELOPE_HEADER_BYTES {
            return Err(bad("truncated envelope header"));
        }
        let kind = rest.get_u16();
        let correlation = rest.get_u64();
        let len = rest.get_u32() as usize;
        if len > rest.remaining() {
            return Err(bad("envelope payload exceeds the body"));
        }
        let payload = rest.split_to(len);
        out.push(Envelope {
            kind,
            correlation,
            payload,
        });
    }
    if rest.has_remaining() {
        return Err(bad("trailing bytes after the last envelope"));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Vec<Envelope> {
        vec![
            Envelope::one_way(100, Bytes::from_static(b"hello")),
            Envelope {
                kind: 2,
                correlation: u64::MAX,
                payload: Bytes::new(),
            },
            Envelope::one_way(65_535, Bytes::from(vec![7u8; 3000])),
        ]
    }

    #[test]
    fn frames_round_trip_and_arrive_in_pieces() {
        let mut wire = BytesMut::new();
        encode_frame(&sample(), &mut wire);
        encode_frame(&sample()[..1], &mut wire);
        assert_eq!(wire.len(), frame_len(&sample()) + frame_len(&sample()[..1]));
        let all = wire.clone();
        // Byte by byte: nothing until the frame is whole, then exactly the frame.
        let mut buf = BytesMut::new();
        let mut frames = Vec::new();
        for b in all.iter() {
            buf.put_u8(*b);
            while let Some(f) = decode_frame(&mut buf, MAX_FRAME_BYTES).unwrap() {
                frames.push(f);
            }
        }
        assert_eq!(frames, vec![sample(), sample()[..1].to_vec()]);
        assert!(buf.is_empty());
    }

    #[test]
    fn every_corruption_is_a_bad_frame_never_a_panic() {
        let mut wire = BytesMut::new();
        encode_frame(&sample(), &mut wire);
        for at in 0..wire.len() {
            for bit in [0x01u8, 0x80] {
                let mut b = BytesMut::from(&wire[..]);
                b[at] ^= bit;
                match decode_frame(&mut b, MAX_FRAME_BYTES) {
                    Err(RpcError::BadFrame(_)) => {}
                    // A longer announced length only waits for more bytes.
                    Ok(None) if (4..8).contains(&at) => {}
                    other => panic!("flip {bit:#x} at {at}: {other:?}"),
                }
            }
        }
    }

    #[test]
    fn limits_and_lying_counts_are_refused() {
        let mut wire = BytesMut::new();
        encode_frame(&sample(), &mut wire);
        assert!(matches!(
            decode_frame(&mut wire.clone(), 100),
            Err(RpcError::BadFrame(_))
        ));
        // A body claiming 60,000 envelopes in a few bytes, with a valid CRC.
        let body = Bytes::from(vec![0xEA, 0x60, 0, 0]);
        let crc = crc32c::crc32c(&body);
        assert!(matches!(decode_body(body, crc), Err(RpcError::BadFrame(_))));
        let mut random = 0x2545_f491_4f6c_dd1du64;
        for _ in 0..2000 {
            let mut b = BytesMut::from(&wire[..HEADER_BYTES]);
            for _ in 0..64 {
                random ^= random << 13;
                random ^= random >> 7;
                random ^= random << 17;
                b.put_u8(random as u8);
            }
            let _ = decode_frame(&mut b, MAX_FRAME_BYTES);
        }
    }
}
