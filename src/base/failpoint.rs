//! Test hooks: faults the real binary would not otherwise show, switched on by the
//! `RINGMQ_FAILPOINT` environment variable and meant for tests only. Unset (always, outside
//! tests) a hook costs one load of an initialized `OnceLock`.
//!
//! - `RINGMQ_FAILPOINT=panic-on-produce-topic:NAME`: the shard that appends a produce to
//!   topic NAME panics (`tests/hardening.rs`, `a_panicking_shard_crashes_the_broker`).

use std::sync::OnceLock;

/// The environment variable read (once, at the first hook reached).
pub const FAILPOINT_ENV: &str = "RINGMQ_FAILPOINT";

fn setting() -> Option<&'static str> {
    static SETTING: OnceLock<Option<String>> = OnceLock::new();
    SETTING
        .get_or_init(|| std::env::var(FAILPOINT_ENV).ok())
        .as_deref()
}

/// Panics if `RINGMQ_FAILPOINT` is `panic-on-produce-topic:{topic}`.
pub fn panic_on_produce(topic: &str) {
    let armed = setting().and_then(|s| s.strip_prefix("panic-on-produce-topic:"));
    if armed == Some(topic) {
        panic!("failpoint {FAILPOINT_ENV}=panic-on-produce-topic:{topic} reached");
    }
}
