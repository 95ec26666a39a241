//! Which records a sink takes: by system, kind, minimum level, logger and task.
//!
//! Every criterion that is set must match (they combine with AND); within one criterion
//! a record matches if it matches any of the listed values (OR). An empty filter takes
//! everything.

use distlog::topic::{Kind, System, Topic};
use distlog::Record;

/// Which records one sink of the collector takes (not to be confused with the level
/// filter of the `distlog` library's handler).
///
/// Logger names match Python's `logging.Filter`: `shop` takes `shop` and `shop.orders`
/// but not `shopping`. Task ids match the same way at `/`: `abc/1` takes `abc/1` and
/// `abc/1/2` but not `abc/10`. A record with no `levelno` (performance data) is not held
/// back by a minimum level; a record with no task is held back by a task filter.
///
/// ```
/// use distlogd::filter::RecordFilter;
/// use distlog::level::parse as parse_level;
/// use distlog::topic::Topic;
/// use distlog::{Record, Value};
///
/// let mut filter = RecordFilter::default();
/// filter.min_level = Some(parse_level("warning").unwrap());
/// filter.loggers = vec!["shop".into()];
/// let topic: Topic = "PLJ".parse().unwrap();
/// let mut r = Record::new();
/// r.insert("name", "shop.orders");
/// r.insert("levelno", 40);
/// assert!(filter.matches(topic, &r));
/// r.insert("name", "shopping");
/// assert!(!filter.matches(topic, &r));
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct RecordFilter {
    /// Systems to take; empty takes all.
    pub systems: Vec<System>,
    /// Kinds to take; empty takes all.
    pub kinds: Vec<Kind>,
    /// The lowest `levelno` to take.
    pub min_level: Option<i64>,
    /// Logger name prefixes (dotted hierarchy); empty takes all.
    pub loggers: Vec<String>,
    /// Task id prefixes (`/` hierarchy); empty takes all.
    pub tasks: Vec<String>,
}

impl RecordFilter {
    /// Whether this filter takes everything.
    pub fn is_empty(&self) -> bool {
        self.systems.is_empty()
            && self.kinds.is_empty()
            && self.min_level.is_none()
            && self.loggers.is_empty()
            && self.tasks.is_empty()
    }

    /// Whether this filter looks inside records (level, logger or task), not only at
    /// their topic. A collector whose filters do not can skip decoding records.
    pub(crate) fn needs_record(&self) -> bool {
        self.min_level.is_some() || !self.loggers.is_empty() || !self.tasks.is_empty()
    }

    /// Whether the topic passes the system and kind criteria: for a filter that does
    /// not [need the record](RecordFilter::needs_record), the whole verdict.
    pub(crate) fn matches_topic(&self, topic: Topic) -> bool {
        (self.systems.is_empty() || self.systems.contains(&topic.system))
            && (self.kinds.is_empty() || self.kinds.contains(&topic.kind))
    }

    /// Whether a record with this topic passes.
    pub fn matches(&self, topic: Topic, record: &Record) -> bool {
        if !self.matches_topic(topic) {
            return false;
        }
        if let (Some(min), Some(level)) = (self.min_level, record.levelno()) {
            if level < min {
                return false;
            }
        }
        if !self.loggers.is_empty() {
            let name = record.name().unwrap_or("");
            if !self.loggers.iter().any(|p| hierarchy_prefix(p, name, '.')) {
                return false;
            }
        }
        if !self.tasks.is_empty() {
            match record.task_id() {
                Some(id) => {
                    if !self.tasks.iter().any(|p| hierarchy_prefix(p, id, '/')) {
                        return false;
                    }
                }
                None => return false,
            }
        }
        true
    }
}

/// Whether `prefix` names `name` or one of its descendants, components split by `sep`.
/// An empty prefix matches everything; a prefix ending in `sep` matches as plain text.
fn hierarchy_prefix(prefix: &str, name: &str, sep: char) -> bool {
    if prefix.is_empty() || prefix.ends_with(sep) {
        return name.starts_with(prefix);
    }
    match name.strip_prefix(prefix) {
        Some(rest) => rest.is_empty() || rest.starts_with(sep),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use distlog::Value;

    fn rec(name: &str, level: i64, key: Option<&str>) -> Record {
        let mut r = Record::new();
        r.insert("name", name);
        r.insert("levelno", level);
        r.insert(
            "context",
            match key {
                Some(k) => Value::Dict(vec![("key".into(), k.into())]),
                None => Value::None,
            },
        );
        r
    }

    #[test]
    fn criteria_combine() {
        let t: Topic = "TLJ".parse().unwrap();
        let p: Topic = "PPP".parse().unwrap();
        assert!(RecordFilter::default().matches(t, &rec("a", 1, None)));
        assert!(RecordFilter::default().is_empty());

        let f = RecordFilter {
            systems: vec![System::Test],
            ..Default::default()
        };
        assert!(f.matches(t, &rec("a", 1, None)));
        assert!(!f.matches(p, &rec("a", 1, None)));

        let f = RecordFilter {
            kinds: vec![Kind::Performance],
            ..Default::default()
        };
        assert!(!f.matches(t, &rec("a", 1, None)));
        assert!(f.matches(p, &rec("a", 1, None)));

        let f = RecordFilter {
            tasks: vec!["abc/1".into()],
            ..Default::default()
        };
        assert!(f.matches(t, &rec("a", 1, Some("0@abc/1"))));
        assert!(f.matches(t, &rec("a", 1, Some("4@abc/1/3"))));
        assert!(!f.matches(t, &rec("a", 1, Some("0@abc/10"))));
        assert!(!f.matches(t, &rec("a", 1, Some("0@abc"))));
        assert!(!f.matches(t, &rec("a", 1, None)));

        let f = RecordFilter {
            min_level: Some(30),
            ..Default::default()
        };
        assert!(!f.matches(t, &rec("a", 20, None)));
        assert!(f.matches(t, &rec("a", 30, None)));
        let mut perf = Record::new();
        perf.insert("name", "perf");
        assert!(f.matches(p, &perf));
    }

    #[test]
    fn only_level_logger_and_task_need_the_record() {
        let f = RecordFilter {
            systems: vec![System::Test],
            kinds: vec![Kind::Log],
            ..Default::default()
        };
        assert!(!f.needs_record());
        for f in [
            RecordFilter {
                min_level: Some(30),
                ..Default::default()
            },
            RecordFilter {
                loggers: vec!["a".into()],
                ..Default::default()
            },
            RecordFilter {
                tasks: vec!["a".into()],
                ..Default::default()
            },
        ] {
            assert!(f.needs_record(), "{f:?}");
        }
    }

    #[test]
    fn hierarchy() {
        assert!(hierarchy_prefix("shop", "shop", '.'));
        assert!(hierarchy_prefix("shop", "shop.orders", '.'));
        assert!(!hierarchy_prefix("shop", "shopping", '.'));
        assert!(hierarchy_prefix("shop.", "shop.orders", '.'));
        assert!(!hierarchy_prefix("shop.", "shop", '.'));
        assert!(hierarchy_prefix("", "anything", '.'));
    }
}
