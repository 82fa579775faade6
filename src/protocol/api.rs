//! The table of served APIs: one row per API module, built from that module's consts.
//!
//! The ApiVersions reply is generated from [`advertised`], so ringmq advertises exactly the
//! ranges its modules declare (clients choose features from these ranges; advertising what
//! does not work breaks them). Flexibility (KIP-482) decides the header version and the
//! encoding of every string, array and bytes field, so it is looked up here too.
//!
//! Produce v0–2 and Fetch v0–3 carry message sets v0/v1: they are served by converting on
//! the way in and out (`server::legacy`), so everything advertised is served.

use super::{
    alter_configs, alter_user_scram_credentials, api_versions, create_partitions, create_topics,
    delete_groups, delete_records, delete_topics, describe_cluster, describe_configs,
    describe_groups, describe_user_scram_credentials, fetch, find_coordinator, heartbeat,
    incremental_alter_configs, init_producer_id, join_group, leave_group, list_groups,
    list_offsets, metadata, offset_commit, offset_delete, offset_fetch, produce, sasl_authenticate,
    sasl_handshake, sync_group,
};

/// One served API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ApiEntry {
    pub api_key: i16,
    /// Lowest advertised version.
    pub min_version: i16,
    /// Highest advertised (and decodable) version.
    pub max_version: i16,
    /// First flexible version; versions at or above it use compact encodings and tags.
    pub flexible_from: i16,
    /// Lowest version the codec can decode (equals `min_version` except for Produce).
    pub min_decodable_version: i16,
}

const fn entry(api_key: i16, min_version: i16, max_version: i16, flexible_from: i16) -> ApiEntry {
    ApiEntry {
        api_key,
        min_version,
        max_version,
        flexible_from,
        min_decodable_version: min_version,
    }
}

/// A table row from an API module's consts.
macro_rules! row {
    ($module:ident) => {
        entry(
            $module::API_KEY,
            $module::MIN_VERSION,
            $module::MAX_VERSION,
            $module::FLEXIBLE_FROM,
        )
    };
}

/// Every served API, sorted by key.
pub static APIS: [ApiEntry; 29] = [
    ApiEntry {
        min_decodable_version: produce::MIN_DECODABLE_VERSION,
        ..row!(produce)
    },
    row!(fetch),
    row!(list_offsets),
    row!(metadata),
    row!(offset_commit),
    row!(offset_fetch),
    row!(find_coordinator),
    row!(join_group),
    row!(heartbeat),
    row!(leave_group),
    row!(sync_group),
    row!(describe_groups),
    row!(list_groups),
    row!(sasl_handshake),
    row!(api_versions),
    row!(create_topics),
    row!(delete_topics),
    row!(delete_records),
    row!(init_producer_id),
    row!(describe_configs),
    row!(alter_configs),
    row!(sasl_authenticate),
    row!(create_partitions),
    row!(delete_groups),
    row!(incremental_alter_configs),
    row!(offset_delete),
    row!(describe_user_scram_credentials),
    row!(alter_user_scram_credentials),
    row!(describe_cluster),
];

static ADVERTISED: [(i16, i16, i16); APIS.len()] = {
    let mut out = [(0, 0, 0); APIS.len()];
    let mut i = 0;
    while i < APIS.len() {
        out[i] = (APIS[i].api_key, APIS[i].min_version, APIS[i].max_version);
        i += 1;
    }
    out
};

/// The table row of `api_key`, if ringmq serves that API at all.
pub fn entry_of(api_key: i16) -> Option<&'static ApiEntry> {
    APIS.iter().find(|e| e.api_key == api_key)
}

/// (api_key, min_version, max_version) for every served API, as ApiVersions reports them.
pub fn advertised() -> &'static [(i16, i16, i16)] {
    &ADVERTISED
}

/// Whether `api_version` of `api_key` is flexible; `None` if the version is not served.
pub fn is_flexible(api_key: i16, api_version: i16) -> Option<bool> {
    let e = entry_of(api_key)?;
    if api_version < e.min_version || api_version > e.max_version {
        return None;
    }
    Some(api_version >= e.flexible_from)
}

/// Whether the codec can decode this request.
pub fn supported(api_key: i16, api_version: i16) -> bool {
    entry_of(api_key)
        .is_some_and(|e| api_version >= e.min_decodable_version && api_version <= e.max_version)
}

/// Request header version (1 or 2) for any version of a served API, supported or not: a
/// schema's flexible range is open-ended ("3+"), so a too-new ApiVersions request still has a
/// header we can read, and the KIP-511 fallback can echo its correlation id.
pub fn request_header_version(api_key: i16, api_version: i16) -> Option<i16> {
    let e = entry_of(api_key)?;
    Some(if api_version >= e.flexible_from { 2 } else { 1 })
}

#[cfg(test)]
pub(crate) mod testkit {
    //! Shared test drivers for the per-API modules: round trips, truncation, random bytes.
    //!
    //! Invariants checked: decode(encode(x)) == x for every value the decoder can produce,
    //! encoding is deterministic, every strict prefix of a valid body is an error, and no
    //! byte string makes a decoder panic.
    use crate::protocol::wire::{DecodeResult, Reader, Writer};
    use bytes::Bytes;
    use std::fmt::Debug;

    pub type Enc<T> = fn(&T, &mut Writer, i16);
    pub type Dec<T> = fn(&mut Reader, i16) -> DecodeResult<T>;

    pub fn encode<T>(value: &T, version: i16, enc: Enc<T>) -> Bytes {
        let mut w = Writer::new();
        enc(value, &mut w, version);
        w.finish_contiguous()
    }

    pub fn decode_all<T>(bytes: Bytes, version: i16, dec: Dec<T>) -> DecodeResult<T> {
        let mut r = Reader::new(bytes);
        let value = dec(&mut r, version)?;
        assert_eq!(r.remaining(), 0, "decoder left bytes at version {version}");
        Ok(value)
    }

    /// Encode `sample` at `version`, decode it, and check the decoded value survives another
    /// encode/decode unchanged with identical bytes. Returns the decoded value and the bytes.
    pub fn round_trip<T: PartialEq + Debug>(
        sample: &T,
        version: i16,
        enc: Enc<T>,
        dec: Dec<T>,
    ) -> (T, Bytes) {
        let bytes = encode(sample, version, enc);
        let decoded = decode_all(bytes.clone(), version, dec)
            .unwrap_or_else(|e| panic!("v{version} decode failed: {e}"));
        let again = encode(&decoded, version, enc);
        assert_eq!(again, bytes, "v{version} re-encoding differs");
        let decoded_again = decode_all(again, version, dec).expect("second decode");
        assert_eq!(
            decoded_again, decoded,
            "v{version} value changed over a round trip"
        );
        (decoded, bytes)
    }

    /// Every strict prefix of `bytes` must decode to an error (and never panic).
    pub fn truncations_fail<T: Debug>(bytes: &Bytes, version: i16, dec: Dec<T>) {
        for len in 0..bytes.len() {
            let mut r = Reader::new(bytes.slice(..len));
            let got = dec(&mut r, version);
            assert!(
                got.is_err(),
                "v{version}: prefix of {len}/{} bytes decoded: {got:?}",
                bytes.len()
            );
        }
    }

    /// Cross-check with the kafka-protocol crate (generated from the Kafka 4.1 schemas): it
    /// must decode our bytes, consume all of them, and re-encode them byte for byte.
    pub fn oracle_agrees<O>(ours: &Bytes, version: i16)
    where
        O: kafka_protocol::protocol::Decodable + kafka_protocol::protocol::Encodable,
    {
        let mut buf = ours.clone();
        let decoded =
            O::decode(&mut buf, version).unwrap_or_else(|e| panic!("oracle v{version}: {e}"));
        assert!(
            buf.is_empty(),
            "oracle left {} bytes at v{version}",
            buf.len()
        );
        let mut out = Vec::new();
        decoded.encode(&mut out, version).expect("oracle encode");
        assert_eq!(
            &out[..],
            &ours[..],
            "oracle re-encoding differs at v{version}"
        );
    }

    /// The opposite direction: encode an oracle value, decode with ours, encode with ours.
    pub fn ours_agree<O, T>(oracle: &O, version: i16, enc: Enc<T>, dec: Dec<T>)
    where
        O: kafka_protocol::protocol::Encodable,
    {
        let mut theirs = Vec::new();
        oracle.encode(&mut theirs, version).expect("oracle encode");
        let theirs = Bytes::from(theirs);
        let value =
            decode_all(theirs.clone(), version, dec).unwrap_or_else(|e| panic!("v{version}: {e}"));
        assert_eq!(
            encode(&value, version, enc),
            theirs,
            "our re-encoding differs at v{version}"
        );
    }

    /// Minimal xorshift64 so the random tests are reproducible without a dependency.
    pub struct XorShift(pub u64);

    impl XorShift {
        pub fn next(&mut self) -> u64 {
            let mut x = self.0;
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            self.0 = x;
            x
        }
    }

    /// Feed `iterations` random byte strings (and random mutations of `seed_bytes`) to `dec`
    /// at every version in `versions`. Passing means nothing panicked.
    pub fn random_bytes_never_panic<T>(
        seed_bytes: &[Bytes],
        versions: std::ops::RangeInclusive<i16>,
        dec: Dec<T>,
        iterations: usize,
    ) {
        let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
        for i in 0..iterations {
            let mut buf: Vec<u8> = if i % 2 == 0 || seed_bytes.is_empty() {
                let len = (rng.next() % 64) as usize;
                (0..len).map(|_| rng.next() as u8).collect()
            } else {
                seed_bytes[(rng.next() as usize) % seed_bytes.len()].to_vec()
            };
            if !buf.is_empty() {
                for _ in 0..1 + rng.next() % 4 {
                    let at = (rng.next() as usize) % buf.len();
                    buf[at] = rng.next() as u8;
                }
            }
            let bytes = Bytes::from(buf);
            for version in versions.clone() {
                let _ = dec(&mut Reader::new(bytes.clone()), version);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_is_sorted_unique_and_sane() {
        for pair in APIS.windows(2) {
            assert!(pair[0].api_key < pair[1].api_key, "{pair:?}");
        }
        for e in &APIS {
            assert!(e.min_version <= e.min_decodable_version, "{e:?}");
            assert!(e.min_decodable_version <= e.max_version, "{e:?}");
            assert!(e.flexible_from >= 0, "{e:?}");
        }
        assert_eq!(advertised().len(), APIS.len());
        assert_eq!(advertised()[0], (produce::API_KEY, 0, produce::MAX_VERSION));
    }

    #[test]
    fn produce_is_advertised_and_decoded_from_zero() {
        assert!(advertised().contains(&(0, 0, produce::MAX_VERSION)));
        assert!(supported(produce::API_KEY, 0));
        assert!(supported(produce::API_KEY, 2));
        assert!(supported(produce::API_KEY, 3));
        assert!(supported(produce::API_KEY, produce::MAX_VERSION));
        assert!(!supported(produce::API_KEY, produce::MAX_VERSION + 1));
        assert_eq!(is_flexible(produce::API_KEY, 2), Some(false));
    }

    #[test]
    fn flexibility_follows_each_module() {
        assert_eq!(is_flexible(api_versions::API_KEY, 2), Some(false));
        assert_eq!(is_flexible(api_versions::API_KEY, 3), Some(true));
        assert_eq!(is_flexible(api_versions::API_KEY, 5), None);
        assert_eq!(is_flexible(metadata::API_KEY, 8), Some(false));
        assert_eq!(is_flexible(metadata::API_KEY, 9), Some(true));
        assert_eq!(is_flexible(metadata::API_KEY, 0), Some(false));
        assert_eq!(is_flexible(metadata::API_KEY, -1), None);
        assert_eq!(is_flexible(fetch::API_KEY, 12), Some(true));
        assert_eq!(is_flexible(describe_cluster::API_KEY, 0), Some(true));
        assert_eq!(is_flexible(999, 0), None);
        assert!(!supported(999, 0));
    }

    #[test]
    fn group_apis_have_the_kafka_41_ranges() {
        let expected = [
            (8, 0, 9, 8),  // OffsetCommit (v0–1 for old clients)
            (9, 1, 9, 6),  // OffsetFetch
            (10, 0, 4, 3), // FindCoordinator
            (11, 0, 9, 6), // JoinGroup (v0–1 for old clients, e.g. Sarama 1.22)
            (12, 0, 4, 4), // Heartbeat
            (13, 0, 5, 4), // LeaveGroup
            (14, 0, 5, 4), // SyncGroup
            (15, 0, 5, 5), // DescribeGroups
            (16, 0, 5, 3), // ListGroups
            (42, 0, 2, 2), // DeleteGroups
        ];
        for (key, min, max, flexible_from) in expected {
            let e = entry_of(key).unwrap_or_else(|| panic!("api {key} not served"));
            assert_eq!(
                (e.min_version, e.max_version, e.flexible_from),
                (min, max, flexible_from),
                "api {key}"
            );
        }
        assert_eq!(is_flexible(offset_delete::API_KEY, 0), Some(false));
        assert_eq!(request_header_version(offset_delete::API_KEY, 0), Some(1));
    }

    #[test]
    fn header_version_known_even_for_too_new_versions() {
        assert_eq!(request_header_version(api_versions::API_KEY, 9), Some(2));
        assert_eq!(request_header_version(api_versions::API_KEY, 0), Some(1));
        assert_eq!(request_header_version(fetch::API_KEY, 11), Some(1));
        assert_eq!(request_header_version(1234, 0), None);
    }
}
