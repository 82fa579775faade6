use super::*;
use crate::model::{set_log_append_time, stamp_batch, BatchHeader, LeaderEpoch};
use crate::records::tests::compress;
use crate::records::{record_key_values, record_timestamps};

type Entry<'a> = (Option<&'a [u8]>, Option<&'a [u8]>, TimestampMs);

/// A message set of `magic` holding `entries` uncompressed, offsets `first..`.
fn set_of(magic: i8, first: Offset, entries: &[Entry<'_>]) -> Vec<u8> {
    let mut out = Vec::new();
    for (i, &(key, value, timestamp)) in entries.iter().enumerate() {
        let m = Message {
            magic,
            attributes: 0,
            timestamp,
            key,
            value,
        };
        put_message(&mut out, magic, first + i as i64, &m);
    }
    out
}

/// One wrapper message of `magic` whose value is `entries` (relative offsets) compressed
/// with `codec`.
fn wrapper(
    magic: i8,
    codec: u8,
    extra_attributes: i8,
    ts: TimestampMs,
    entries: &[Entry],
) -> Vec<u8> {
    let inner = compress(codec, &set_of(magic, 0, entries));
    let m = Message {
        magic,
        attributes: codec as i8 | extra_attributes,
        timestamp: ts,
        key: None,
        value: Some(&inner),
    };
    let mut out = Vec::new();
    put_message(&mut out, magic, entries.len() as i64 - 1, &m);
    out
}

fn sample() -> Vec<(Vec<u8>, Vec<u8>, TimestampMs)> {
    (0..7)
        .map(|i| {
            let key = format!("key-{i}").into_bytes();
            (key, format!("value-{i}").into_bytes(), 1_000 + 10 * i)
        })
        .collect()
}

fn entries(s: &[(Vec<u8>, Vec<u8>, TimestampMs)]) -> Vec<Entry<'_>> {
    s.iter()
        .map(|(k, v, t)| (Some(&k[..]), Some(&v[..]), *t))
        .collect()
}

fn valid(batch: &[u8]) {
    let h = BatchHeader::parse(batch).unwrap();
    assert_eq!(h.validate().unwrap(), batch.len());
}

#[test]
fn uncompressed_sets_convert_with_keys_values_and_timestamps() {
    let s = sample();
    for magic in [0, 1] {
        let batch = to_record_batch(&set_of(magic, 55, &entries(&s))).unwrap();
        valid(&batch);
        let kv = record_key_values(&batch).unwrap();
        let want: Vec<_> = s
            .iter()
            .map(|(k, v, _)| (Some(k.clone()), Some(v.clone())))
            .collect();
        assert_eq!(kv, want, "magic {magic}");
        let ts = record_timestamps(&batch).unwrap();
        let want: Vec<_> = (0..7)
            .map(|i| (i, if magic == 1 { 1_000 + 10 * i } else { -1 }))
            .collect();
        assert_eq!(
            ts, want,
            "magic {magic}: offsets from 0 (client offsets ignored)"
        );
    }
}

#[test]
fn null_keys_and_values_survive() {
    let v: &[u8] = b"v";
    let k: &[u8] = b"k";
    let set = set_of(1, 0, &[(None, Some(v), 5), (Some(k), None, 5)]);
    let batch = to_record_batch(&set).unwrap();
    let kv = record_key_values(&batch).unwrap();
    assert_eq!(
        kv,
        vec![(None, Some(b"v".to_vec())), (Some(b"k".to_vec()), None)]
    );
}

#[test]
fn compressed_wrappers_are_inflated_for_every_legacy_codec() {
    let s = sample();
    for codec in [1u8, 2, 3] {
        let e = entries(&s);
        let (head, tail) = e.split_at(3);
        let mut set = wrapper(1, codec, 0, 0, head);
        set.extend(set_of(1, 3, &tail[..1]));
        set.extend(wrapper(1, codec, 0, 0, &tail[1..]));
        let batch = to_record_batch(&set).unwrap();
        valid(&batch);
        let ts = record_timestamps(&batch).unwrap();
        let want: Vec<_> = (0..7).map(|i| (i, 1_000 + 10 * i)).collect();
        assert_eq!(
            ts, want,
            "codec {codec}: inner timestamps and dense offsets"
        );
        let values: Vec<_> = record_key_values(&batch)
            .unwrap()
            .into_iter()
            .map(|(_, v)| v.unwrap())
            .collect();
        let want: Vec<_> = s.iter().map(|(_, v, _)| v.clone()).collect();
        assert_eq!(values, want, "codec {codec}");
    }
}

#[test]
fn log_append_time_wrapper_stamps_its_timestamp_on_every_inner_message() {
    let s = sample();
    let set = wrapper(1, 1, LOG_APPEND_TIME, 9_999, &entries(&s));
    let batch = to_record_batch(&set).unwrap();
    assert!(record_timestamps(&batch)
        .unwrap()
        .iter()
        .all(|&(_, ts)| ts == 9_999));
}

#[test]
fn bad_input_is_an_error_never_a_panic() {
    let s = sample();
    let good = set_of(1, 0, &entries(&s));
    let mut bad_crc = good.clone();
    let last = bad_crc.len() - 1;
    bad_crc[last] ^= 1;
    assert_eq!(to_record_batch(&bad_crc), Err(RecordsError::Corrupt));
    assert!(
        to_record_batch(&[]).is_err(),
        "an empty set holds no message"
    );
    let message_bytes = good.len() / s.len();
    for cut in (1..good.len()).filter(|c| c % message_bytes != 0) {
        assert!(to_record_batch(&good[..cut]).is_err(), "cut at {cut}");
    }
    let mut bad_magic = set_of(1, 0, &entries(&s)[..1]);
    bad_magic[16] = 2;
    let crc = crc32fast::hash(&bad_magic[16..]);
    bad_magic[12..16].copy_from_slice(&crc.to_be_bytes());
    assert!(matches!(
        to_record_batch(&bad_magic),
        Err(RecordsError::Malformed(_))
    ));
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    for _ in 0..3000 {
        let mut b = good.clone();
        for _ in 0..4 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let at = (state as usize) % b.len();
            b[at] = (state >> 32) as u8;
        }
        let _ = to_record_batch(&b);
        let _ = to_message_set(&[&b], 0, 1, 1 << 20);
    }
}

/// A message set of one gzip wrapper v1 whose value is `compressed` as given.
fn gzip_wrapper_v1(compressed: &[u8]) -> Vec<u8> {
    let m = Message {
        magic: 1,
        attributes: 1,
        timestamp: 0,
        key: None,
        value: Some(compressed),
    };
    let mut set = Vec::new();
    put_message(&mut set, 1, 0, &m);
    set
}

#[test]
fn nested_wrappers_and_mixed_magic_are_refused() {
    let s = sample();
    let nested = compress(1, &wrapper(1, 1, 0, 0, &entries(&s)));
    assert!(to_record_batch(&gzip_wrapper_v1(&nested)).is_err());
    let v0_inside_v1 = compress(1, &set_of(0, 0, &entries(&s)));
    assert!(to_record_batch(&gzip_wrapper_v1(&v0_inside_v1)).is_err());
    let v1_inside_v1 = compress(1, &set_of(1, 0, &entries(&s)));
    assert!(to_record_batch(&gzip_wrapper_v1(&v1_inside_v1)).is_ok());
}

#[test]
fn a_decompression_bomb_is_refused() {
    let bomb = compress(1, &vec![0u8; MAX_DECOMPRESSED_BYTES + 1]);
    assert_eq!(
        to_record_batch(&gzip_wrapper_v1(&bomb)),
        Err(RecordsError::TooLarge)
    );
}

/// (offset, magic, timestamp, key, value) of every message of a set.
fn read_back(set: &[u8]) -> Vec<(Offset, i8, TimestampMs, Vec<u8>, Vec<u8>)> {
    let mut out = Vec::new();
    let mut rest = set;
    while !rest.is_empty() {
        let offset = be_i64(&mut rest, "o").unwrap();
        let size = be_i32(&mut rest, "s").unwrap() as usize;
        let m = parse_message(take(&mut rest, size, "m").unwrap()).unwrap();
        out.push((
            offset,
            m.magic,
            m.timestamp,
            m.key.unwrap().to_vec(),
            m.value.unwrap().to_vec(),
        ));
    }
    out
}

fn stored(first: Offset) -> Vec<u8> {
    let s = sample();
    let mut batch = to_record_batch(&set_of(1, 0, &entries(&s))).unwrap();
    stamp_batch(&mut batch, first, LeaderEpoch(0));
    batch
}

#[test]
fn down_conversion_answers_every_record_from_the_fetch_offset() {
    let s = sample();
    let mut chunk = stored(100);
    chunk.extend(stored(107));
    for magic in [0, 1] {
        let set = to_message_set(&[&chunk], 103, magic, 1 << 20).unwrap();
        let got = read_back(&set);
        assert_eq!(got.len(), 11, "4 from the first batch, 7 from the second");
        for (i, (offset, m, ts, key, value)) in got.iter().enumerate() {
            let (k, v, t) = &s[(i + 3) % 7];
            assert_eq!(*offset, 103 + i as i64);
            assert_eq!((*m, key, value), (magic, k, v));
            assert_eq!(*ts, if magic == 1 { *t } else { -1 });
        }
    }
}

#[test]
fn down_conversion_of_a_compressed_batch() {
    let s = sample();
    let plain = stored(0);
    let body = compress(1, &plain[crate::model::BATCH_HEADER_BYTES..]);
    let mut batch = plain[..crate::model::BATCH_HEADER_BYTES].to_vec();
    batch.extend(&body);
    let len = (batch.len() - 12) as i32;
    batch[8..12].copy_from_slice(&len.to_be_bytes());
    batch[21..23].copy_from_slice(&1i16.to_be_bytes());
    let crc = crc32c::crc32c(&batch[21..]);
    batch[17..21].copy_from_slice(&crc.to_be_bytes());
    valid(&batch);
    let got = read_back(&to_message_set(&[&batch], 0, 1, 1 << 20).unwrap());
    let values: Vec<_> = got.into_iter().map(|m| m.4).collect();
    let want: Vec<_> = s.iter().map(|(_, v, _)| v.clone()).collect();
    assert_eq!(values, want);
}

#[test]
fn down_conversion_stops_before_max_bytes_but_always_answers_one() {
    let chunk = stored(0);
    let one = to_message_set(&[&chunk], 0, 1, 1).unwrap();
    assert_eq!(
        read_back(&one).len(),
        1,
        "one message goes whatever the limit"
    );
    let two = to_message_set(&[&chunk], 0, 1, one.len() * 2 + 1).unwrap();
    assert_eq!(read_back(&two).len(), 2);
    assert!(two.len() <= one.len() * 2 + 1);
}

#[test]
fn log_append_time_and_control_batches() {
    let mut batch = stored(0);
    set_log_append_time(&mut batch, 4_242);
    let got = read_back(&to_message_set(&[&batch], 0, 1, 1 << 20).unwrap());
    assert!(got.iter().all(|m| m.2 == 4_242));
    assert!(to_message_set(&[&batch], 0, 1, 1 << 20).unwrap()[17] as i8 & LOG_APPEND_TIME != 0);
    let mut control = stored(0);
    control[22] |= 0x20;
    let crc = crc32c::crc32c(&control[21..]);
    control[17..21].copy_from_slice(&crc.to_be_bytes());
    assert!(to_message_set(&[&control], 0, 1, 1 << 20)
        .unwrap()
        .is_empty());
}

#[test]
fn a_torn_batch_after_good_ones_ends_the_set_there() {
    let mut chunk = stored(0);
    let good = chunk.len();
    chunk.extend_from_slice(&stored(7)[..30]);
    let got = read_back(&to_message_set(&[&chunk], 0, 1, 1 << 20).unwrap());
    assert_eq!(got.len(), 7);
    assert!(to_message_set(&[&chunk[good..]], 0, 1, 1 << 20).is_err());
}
