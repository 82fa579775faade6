//! Leveled, filterable logging to stderr, one line per event, without a logging framework.
//!
//! `RINGMQ_LOG` sets the levels, as `env_logger` does: a default level and per-module
//! overrides by path prefix, e.g. `RINGMQ_LOG=info,ringmq::storage=debug`. Levels: `error`,
//! `warn`, `info` (the default), `debug`, `trace`, `off`. Each line is
//! `2026-11-24T03:30:00.123Z INFO ringmq::storage::recover: message`.
//!
//! Use the macros [`crate::error!`], [`crate::warn!`], [`crate::info!`] and [`crate::debug!`];
//! they test the filter before formatting anything.

use std::fmt;
use std::sync::OnceLock;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    Off = 0,
    Error = 1,
    Warn = 2,
    Info = 3,
    Debug = 4,
    Trace = 5,
}

impl Level {
    fn parse(s: &str) -> Option<Level> {
        Some(match s.trim().to_ascii_lowercase().as_str() {
            "off" => Level::Off,
            "error" => Level::Error,
            "warn" | "warning" => Level::Warn,
            "info" => Level::Info,
            "debug" => Level::Debug,
            "trace" => Level::Trace,
            _ => return None,
        })
    }
    fn name(self) -> &'static str {
        match self {
            Level::Off => "OFF",
            Level::Error => "ERROR",
            Level::Warn => "WARN",
            Level::Info => "INFO",
            Level::Debug => "DEBUG",
            Level::Trace => "TRACE",
        }
    }
}

/// A parsed `RINGMQ_LOG` value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Filter {
    default: Level,
    /// (module path prefix, level), longest prefix first.
    rules: Vec<(String, Level)>,
}

impl Filter {
    /// Parse `default,path=level,...`; an item that does not parse is an error naming it.
    pub fn parse(spec: &str) -> Result<Filter, String> {
        let mut f = Filter {
            default: Level::Info,
            rules: Vec::new(),
        };
        for item in spec.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            match item.split_once('=') {
                Some((path, level)) => {
                    let level = Level::parse(level)
                        .ok_or_else(|| format!("RINGMQ_LOG: bad level in '{item}'"))?;
                    f.rules.push((path.trim().to_string(), level));
                }
                None => {
                    f.default = Level::parse(item)
                        .ok_or_else(|| format!("RINGMQ_LOG: bad level '{item}'"))?
                }
            }
        }
        f.rules.sort_by_key(|(p, _)| std::cmp::Reverse(p.len()));
        Ok(f)
    }
    pub fn level_for(&self, target: &str) -> Level {
        self.rules
            .iter()
            .find(|(p, _)| target.starts_with(p.as_str()))
            .map_or(self.default, |(_, l)| *l)
    }
}

static FILTER: OnceLock<Filter> = OnceLock::new();

/// Read `RINGMQ_LOG` once; an invalid value is reported and the default (`info`) used.
pub fn init_from_env() -> Result<(), String> {
    let spec = std::env::var("RINGMQ_LOG").unwrap_or_default();
    let filter = Filter::parse(&spec);
    let (filter, result) = match filter {
        Ok(f) => (f, Ok(())),
        Err(e) => (
            Filter::parse("info").unwrap_or(Filter {
                default: Level::Info,
                rules: Vec::new(),
            }),
            Err(e),
        ),
    };
    let _ = FILTER.set(filter);
    result
}

pub fn enabled(level: Level, target: &str) -> bool {
    let filter = FILTER.get_or_init(|| Filter {
        default: Level::Info,
        rules: Vec::new(),
    });
    level <= filter.level_for(target)
}

pub fn write(level: Level, target: &str, args: fmt::Arguments<'_>) {
    eprintln!(
        "{} {} {target}: {args}",
        super::civil::format_utc_ms(super::now_ms()),
        level.name()
    );
}

#[macro_export]
macro_rules! log_at {
    ($level:expr, $($arg:tt)*) => {
        if $crate::base::logging::enabled($level, module_path!()) {
            $crate::base::logging::write($level, module_path!(), format_args!($($arg)*));
        }
    };
}
#[macro_export]
macro_rules! error { ($($arg:tt)*) => { $crate::log_at!($crate::base::logging::Level::Error, $($arg)*) }; }
#[macro_export]
macro_rules! warn { ($($arg:tt)*) => { $crate::log_at!($crate::base::logging::Level::Warn, $($arg)*) }; }
#[macro_export]
macro_rules! info { ($($arg:tt)*) => { $crate::log_at!($crate::base::logging::Level::Info, $($arg)*) }; }
#[macro_export]
macro_rules! debug { ($($arg:tt)*) => { $crate::log_at!($crate::base::logging::Level::Debug, $($arg)*) }; }

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_by_longest_prefix() {
        let f = Filter::parse("warn,ringmq::storage=debug,ringmq::storage::cache=off").unwrap();
        assert_eq!(f.level_for("ringmq::server"), Level::Warn);
        assert_eq!(f.level_for("ringmq::storage::partition"), Level::Debug);
        assert_eq!(f.level_for("ringmq::storage::cache"), Level::Off);
        assert_eq!(Filter::parse("").unwrap().level_for("x"), Level::Info);
        assert!(Filter::parse("loud").is_err());
        assert!(Filter::parse("ringmq=loud").is_err());
    }
}
