//! Produce: TODO, being written.

/// Kafka API key of Produce.
pub const API_KEY: i16 = 0;
/// Lowest version we advertise.
pub const MIN_VERSION: i16 = 0;
/// Highest version we advertise.
pub const MAX_VERSION: i16 = 12;
/// First flexible (KIP-482) version.
pub const FLEXIBLE_FROM: i16 = 9;
