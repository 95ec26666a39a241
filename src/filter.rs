//! Per-target level filters in `RUST_LOG` syntax: `warn,shop=debug,shop::db=off`.
//!
//! Each comma-separated directive is `target=level`, a bare `level` (the default for
//! all targets), or a bare `target` (everything from it). The longest matching target
//! prefix wins, as in env_logger. Levels: `off`, `error`, `warn`, `info`, `debug`,
//! `trace`, in any case. env_logger's `/regex` message filter is not supported and is
//! refused with an error rather than ignored.

use log::LevelFilter;
use std::fmt;

/// Per-target level directives in `RUST_LOG` syntax, parsed: which records the `log`
/// logger sends.
///
/// ```
/// use distlog::filter::TargetFilter;
/// use log::Level;
/// let f: TargetFilter = "warn,shop=debug,shop::db=off".parse().unwrap();
/// assert!(f.enabled(Level::Debug, "shop::orders"));
/// assert!(!f.enabled(Level::Error, "shop::db"));
/// assert!(!f.enabled(Level::Info, "other"));
/// assert!(f.enabled(Level::Warn, "other"));
///
/// let err = "shop=loud".parse::<TargetFilter>().unwrap_err();
/// assert_eq!(err.to_string(), "bad log filter directive \"shop=loud\": unknown level \"loud\"");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetFilter {
    default: LevelFilter,
    /// Sorted longest target first, so the first match is the most specific.
    targets: Vec<(String, LevelFilter)>,
}

impl Default for TargetFilter {
    /// Everything from INFO up, like Python's usual configuration.
    fn default() -> Self {
        TargetFilter {
            default: LevelFilter::Info,
            targets: Vec::new(),
        }
    }
}

/// A directive that could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct TargetFilterError {
    /// The directive as written.
    pub directive: String,
    /// What is wrong with it.
    pub reason: String,
}

impl fmt::Display for TargetFilterError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "bad log filter directive {:?}: {}",
            self.directive, self.reason
        )
    }
}

impl std::error::Error for TargetFilterError {}

fn level(s: &str) -> Option<LevelFilter> {
    s.trim().parse().ok()
}

impl std::str::FromStr for TargetFilter {
    type Err = TargetFilterError;

    fn from_str(spec: &str) -> Result<Self, TargetFilterError> {
        let mut f = TargetFilter {
            default: LevelFilter::Error,
            targets: Vec::new(),
        };
        for directive in spec.split(',').map(str::trim).filter(|d| !d.is_empty()) {
            let bad = |reason: String| TargetFilterError {
                directive: directive.to_string(),
                reason,
            };
            if directive.contains('/') {
                return Err(bad("message filters (/regex) are not supported".into()));
            }
            match directive.split_once('=') {
                Some((target, lvl)) => {
                    let lvl =
                        level(lvl).ok_or_else(|| bad(format!("unknown level {:?}", lvl.trim())))?;
                    if target.trim().is_empty() {
                        return Err(bad("empty target".into()));
                    }
                    f.targets.push((target.trim().to_string(), lvl));
                }
                None => match level(directive) {
                    Some(lvl) => f.default = lvl,
                    None => f.targets.push((directive.to_string(), LevelFilter::Trace)),
                },
            }
        }
        f.targets.sort_by_key(|t| std::cmp::Reverse(t.0.len()));
        Ok(f)
    }
}

impl TargetFilter {
    /// Whether a record at `level` from `target` passes.
    pub fn enabled(&self, level: log::Level, target: &str) -> bool {
        level <= self.level_for(target)
    }

    /// The most verbose level that passes for `target`.
    pub fn level_for(&self, target: &str) -> LevelFilter {
        self.targets
            .iter()
            .find(|(prefix, _)| target.starts_with(prefix.as_str()))
            .map_or(self.default, |(_, l)| *l)
    }

    /// The most verbose level any target allows, for `log::set_max_level`.
    pub fn max_level(&self) -> LevelFilter {
        self.targets
            .iter()
            .map(|(_, l)| *l)
            .fold(self.default, std::cmp::Ord::max)
    }

    /// Reads `DISTLOG_LOG`, else `RUST_LOG`; the default filter if neither is set.
    pub fn from_env() -> Result<TargetFilter, TargetFilterError> {
        match std::env::var("DISTLOG_LOG").or_else(|_| std::env::var("RUST_LOG")) {
            Ok(spec) => spec.parse(),
            Err(_) => Ok(TargetFilter::default()),
        }
    }
}
