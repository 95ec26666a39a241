//! Python's logging levels: the one table of level numbers and names that records,
//! filters and collectors share, with TRACE at 5 for Rust's extra level.
//!
//! ```
//! use distlog::level;
//! assert_eq!(level::of(log::Level::Warn), (30, "WARNING"));
//! assert_eq!(level::name(35), "WARNING");
//! assert_eq!(level::parse("fatal"), Ok(50));
//! ```

use std::fmt;

/// Each level Python distlog and distlog know, lowest first. `WARN` and `FATAL` are
/// accepted as aliases by [`parse`], as Python's `logging` accepts them.
const LEVELS: [(i64, &str); 6] = [
    (5, "TRACE"),
    (10, "DEBUG"),
    (20, "INFO"),
    (30, "WARNING"),
    (40, "ERROR"),
    (50, "CRITICAL"),
];

/// The level number and name that Python gives a `log` level.
///
/// ```
/// assert_eq!(distlog::level::of(log::Level::Trace), (5, "TRACE"));
/// assert_eq!(distlog::level::of(log::Level::Error), (40, "ERROR"));
/// ```
pub fn of(level: log::Level) -> (i64, &'static str) {
    let i = match level {
        log::Level::Trace => 0,
        log::Level::Debug => 1,
        log::Level::Info => 2,
        log::Level::Warn => 3,
        log::Level::Error => 4,
    };
    LEVELS[i]
}

/// The name of the highest level at or below `levelno` (TRACE below 10), for a record
/// that carries a number but no `levelname`.
///
/// ```
/// assert_eq!(distlog::level::name(20), "INFO");
/// assert_eq!(distlog::level::name(45), "ERROR");
/// assert_eq!(distlog::level::name(-3), "TRACE");
/// assert_eq!(distlog::level::name(90), "CRITICAL");
/// ```
pub fn name(levelno: i64) -> &'static str {
    LEVELS
        .iter()
        .rev()
        .find(|(n, _)| *n <= levelno)
        .map_or(LEVELS[0].1, |(_, name)| name)
}

/// Reads a level as Python names it (any case, `WARN` and `FATAL` too) or as a number.
///
/// ```
/// use distlog::level::parse;
/// assert_eq!(parse("INFO"), Ok(20));
/// assert_eq!(parse(" warn "), Ok(30));
/// assert_eq!(parse("35"), Ok(35));
/// assert_eq!(
///     parse("loud").unwrap_err().to_string(),
///     "unknown level \"loud\": expected TRACE, DEBUG, INFO, WARNING, ERROR, CRITICAL or a number"
/// );
/// ```
pub fn parse(s: &str) -> Result<i64, LevelError> {
    let t = s.trim();
    if let Ok(n) = t.parse::<i64>() {
        return Ok(n);
    }
    let upper = t.to_ascii_uppercase();
    let canonical = match upper.as_str() {
        "WARN" => "WARNING",
        "FATAL" => "CRITICAL",
        other => other,
    };
    LEVELS
        .iter()
        .find(|(_, name)| *name == canonical)
        .map(|(n, _)| *n)
        .ok_or_else(|| LevelError(s.to_string()))
}

/// A level name or number that is not one, as written.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct LevelError(pub String);

impl fmt::Display for LevelError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "unknown level {:?}: expected ", self.0)?;
        for (i, (_, name)) in LEVELS.iter().enumerate() {
            let sep = if i == 0 { "" } else { ", " };
            write!(f, "{sep}{name}")?;
        }
        f.write_str(" or a number")
    }
}

impl std::error::Error for LevelError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_name_parses_back_to_its_number() {
        for (n, name) in LEVELS {
            assert_eq!(parse(name), Ok(n));
            assert_eq!(parse(&name.to_ascii_lowercase()), Ok(n));
            assert_eq!(self::name(n), name);
            assert_eq!(self::name(n + 4), name);
        }
    }

    #[test]
    fn log_levels_map_in_order() {
        let all = [
            log::Level::Trace,
            log::Level::Debug,
            log::Level::Info,
            log::Level::Warn,
            log::Level::Error,
        ];
        let numbers: Vec<i64> = all.iter().map(|l| of(*l).0).collect();
        assert_eq!(numbers, [5, 10, 20, 30, 40]);
    }
}
