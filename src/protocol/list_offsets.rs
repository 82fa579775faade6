//! ListOffsets: TODO, being written.

/// Kafka API key of ListOffsets.
pub const API_KEY: i16 = 2;
/// Lowest version we advertise.
pub const MIN_VERSION: i16 = 1;
/// Highest version we advertise.
pub const MAX_VERSION: i16 = 7;
/// First flexible (KIP-482) version.
pub const FLEXIBLE_FROM: i16 = 6;
