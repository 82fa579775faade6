//! Splitting a byte stream into Kafka frames, and putting the size prefix on responses.
//!
//! Every request and response is `i32 size` followed by `size` bytes. [`check_frame`] looks
//! only at what is buffered and says whether a whole frame is there; "incomplete, need N more
//! bytes" is an ordinary answer, so the connection reads more and asks again (sans-IO, as in
//! mini-redis). The size is checked against a cap *before* the caller buffers the body, so a
//! peer cannot make us hold 2 GiB by sending a large prefix.

use bytes::Bytes;

use super::wire::Writer;

/// Bytes of the size prefix in front of every frame.
pub const SIZE_PREFIX_BYTES: usize = 4;

/// What the buffered bytes hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameStatus {
    /// Not a whole frame yet: read at least `needed` more bytes.
    Incomplete { needed: usize },
    /// A whole frame of `frame_len` bytes, *including* the 4-byte size prefix, starts the buffer.
    Complete { frame_len: usize },
    /// The prefix claims more than the cap allows: close the connection.
    TooLarge { claimed: i64 },
    /// The prefix is zero or negative: close the connection.
    Invalid,
}

/// Look at the size prefix at the start of `buf` and say whether a whole frame is buffered.
/// `max_frame_bytes` caps the size the prefix may claim (the prefix itself not counted).
pub fn check_frame(buf: &[u8], max_frame_bytes: usize) -> FrameStatus {
    let Some(prefix) = buf.get(..SIZE_PREFIX_BYTES) else {
        return FrameStatus::Incomplete {
            needed: SIZE_PREFIX_BYTES - buf.len(),
        };
    };
    let size = i32::from_be_bytes([prefix[0], prefix[1], prefix[2], prefix[3]]);
    if size <= 0 {
        return FrameStatus::Invalid;
    }
    if size as u64 > max_frame_bytes as u64 {
        return FrameStatus::TooLarge {
            claimed: i64::from(size),
        };
    }
    let frame_len = SIZE_PREFIX_BYTES + size as usize;
    if buf.len() < frame_len {
        return FrameStatus::Incomplete {
            needed: frame_len - buf.len(),
        };
    }
    FrameStatus::Complete { frame_len }
}

/// The encoded message is longer than an i32 size prefix can say.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameTooLarge {
    pub len: usize,
}

impl std::fmt::Display for FrameTooLarge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "frame of {} bytes does not fit an i32 size prefix",
            self.len
        )
    }
}

impl std::error::Error for FrameTooLarge {}

/// Finish a header + body written into `w` as a frame: the size prefix, then the parts
/// (shared record chunks stay shared). Ready for a vectored write.
pub fn into_frame(w: Writer) -> Result<Vec<Bytes>, FrameTooLarge> {
    let len = w.len();
    let size = i32::try_from(len).map_err(|_| FrameTooLarge { len })?;
    let parts = w.finish();
    let mut framed = Vec::with_capacity(parts.len() + 1);
    framed.push(Bytes::copy_from_slice(&size.to_be_bytes()));
    framed.extend(parts);
    Ok(framed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_prefix_is_incomplete() {
        assert_eq!(check_frame(&[], 100), FrameStatus::Incomplete { needed: 4 });
        assert_eq!(
            check_frame(&[0, 0, 0], 100),
            FrameStatus::Incomplete { needed: 1 }
        );
    }

    #[test]
    fn partial_body_is_incomplete_with_exact_need() {
        assert_eq!(
            check_frame(&[0, 0, 0, 5, 1, 2], 100),
            FrameStatus::Incomplete { needed: 3 }
        );
    }

    #[test]
    fn whole_frame_is_complete_even_with_trailing_bytes() {
        let buf = [0, 0, 0, 2, 9, 9, 0, 0];
        assert_eq!(
            check_frame(&buf, 100),
            FrameStatus::Complete { frame_len: 6 }
        );
    }

    #[test]
    fn zero_and_negative_sizes_are_invalid() {
        assert_eq!(check_frame(&[0, 0, 0, 0], 100), FrameStatus::Invalid);
        assert_eq!(
            check_frame(&[0xff, 0xff, 0xff, 0xff], 100),
            FrameStatus::Invalid
        );
        assert_eq!(check_frame(&[0x80, 0, 0, 0], 100), FrameStatus::Invalid);
    }

    #[test]
    fn size_over_cap_is_too_large_before_body_arrives() {
        assert_eq!(
            check_frame(&[0, 0, 0, 101], 100),
            FrameStatus::TooLarge { claimed: 101 }
        );
        assert_eq!(
            check_frame(&[0x7f, 0xff, 0xff, 0xff], 1 << 20),
            FrameStatus::TooLarge {
                claimed: i32::MAX as i64
            }
        );
        assert_eq!(
            check_frame(&[0, 0, 0, 100], 100),
            FrameStatus::Incomplete { needed: 100 }
        );
    }

    #[test]
    fn into_frame_prefixes_total_length_and_keeps_shared_parts() {
        let mut w = Writer::new();
        w.i32(7);
        w.put_shared(Bytes::from_static(b"records"));
        let parts = into_frame(w).unwrap();
        assert_eq!(&parts[0][..], &[0, 0, 0, 11]);
        assert_eq!(parts.len(), 3);
        let all: Vec<u8> = parts.iter().flat_map(|p| p.iter().copied()).collect();
        assert_eq!(
            check_frame(&all, 100),
            FrameStatus::Complete { frame_len: 15 }
        );
    }
}
