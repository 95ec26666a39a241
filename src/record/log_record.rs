//! [`Record`]: the ordered `(key, value)` pairs of one record, however it was sent.

use super::standard_keys::standard_index;
use crate::value::Value;
use std::borrow::Cow;

/// A record key: the well-known ones are static strings, so building a record from a
/// `log` call allocates no key.
pub type Key = Cow<'static, str>;

/// One log record.
///
/// ```
/// use distlog::{Record, Value};
/// let mut r = Record::new();
/// r.insert("name", "shop.orders");
/// r.insert("levelno", 20);
/// assert_eq!(r.name(), Some("shop.orders"));
/// assert_eq!(r.levelno(), Some(20));
/// r.insert("levelno", 30); // replaces in place, as a Python dict does
/// assert_eq!(r.len(), 2);
/// assert_eq!(r.get("levelno"), Some(&Value::Int(30)));
/// ```
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Record {
    pub(super) fields: Vec<(Key, Value)>,
}

impl Record {
    /// An empty record.
    pub fn new() -> Self {
        Record::default()
    }

    /// An empty record with room for `n` fields.
    pub fn with_capacity(n: usize) -> Self {
        Record {
            fields: Vec::with_capacity(n),
        }
    }

    /// A record from pairs, kept in the given order. A repeated key keeps its first
    /// position and its last value, as a Python dict would.
    pub fn from_pairs<K: Into<Key>>(pairs: impl IntoIterator<Item = (K, Value)>) -> Self {
        let mut r = Record::new();
        for (k, v) in pairs {
            r.insert(k, v);
        }
        r
    }

    /// Builds from pairs known to have no repeated key (the decoders check that).
    pub(crate) fn from_unique_pairs(fields: Vec<(Key, Value)>) -> Self {
        Record { fields }
    }

    /// Sets a key: replaces the value in place if the key is there, else appends.
    pub fn insert(&mut self, key: impl Into<Key>, value: impl Into<Value>) {
        let key = key.into();
        let value = value.into();
        match self.fields.iter_mut().find(|(k, _)| *k == key) {
            Some(slot) => slot.1 = value,
            None => self.fields.push((key, value)),
        }
    }

    /// Appends a key known not to be present yet; the record builder uses it.
    pub(crate) fn push(&mut self, key: impl Into<Key>, value: impl Into<Value>) {
        self.fields.push((key.into(), value.into()));
    }

    /// The value under `key`.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.fields.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    /// Removes a key and returns its value.
    pub fn remove(&mut self, key: &str) -> Option<Value> {
        let i = self.fields.iter().position(|(k, _)| k == key)?;
        Some(self.fields.remove(i).1)
    }

    /// The fields in order.
    pub fn fields(&self) -> impl ExactSizeIterator<Item = (&str, &Value)> {
        self.fields.iter().map(|(k, v)| (k.as_ref(), v))
    }

    /// The fields, to take apart.
    pub fn into_fields(self) -> Vec<(Key, Value)> {
        self.fields
    }

    /// How many keys the record has.
    pub fn len(&self) -> usize {
        self.fields.len()
    }

    /// Whether the record has no key.
    pub fn is_empty(&self) -> bool {
        self.fields.is_empty()
    }

    /// The fields that are not among Python's standard keys: `extra=` data, `log`
    /// key-values, anything a newer Python adds.
    pub fn extras(&self) -> impl Iterator<Item = (&str, &Value)> {
        self.fields().filter(|(k, _)| standard_index(k).is_none())
    }

    fn str_of(&self, key: &str) -> Option<&str> {
        self.get(key).and_then(Value::as_str)
    }

    /// `name`: the logger name (the `log` target).
    pub fn name(&self) -> Option<&str> {
        self.str_of("name")
    }
    /// `message`: the interpolated message, newlines escaped as `\n`.
    pub fn message(&self) -> Option<&str> {
        self.str_of("message")
    }
    /// `levelname`, such as `INFO`.
    pub fn levelname(&self) -> Option<&str> {
        self.str_of("levelname")
    }
    /// `levelno`: 10 DEBUG … 50 CRITICAL, 5 TRACE.
    pub fn levelno(&self) -> Option<i64> {
        self.get("levelno").and_then(Value::as_i64)
    }
    /// `created`: seconds since the Unix epoch.
    pub fn created(&self) -> Option<f64> {
        self.get("created").and_then(Value::as_f64)
    }
    /// `hostname` of the sender.
    pub fn hostname(&self) -> Option<&str> {
        self.str_of("hostname")
    }
    /// `asctime`: local time as `YYYY-MM-DD HH:MM:SS,mmm`.
    pub fn asctime(&self) -> Option<&str> {
        self.str_of("asctime")
    }
    /// `exc_text`: the formatted error, if any.
    pub fn exc_text(&self) -> Option<&str> {
        self.str_of("exc_text")
    }
    /// `context`: the task context dict, `None` outside a task.
    pub fn context(&self) -> Option<&Value> {
        self.get("context").filter(|v| !v.is_none())
    }
    /// The task key of `context`, `<counter>@<task id>`.
    pub fn context_key(&self) -> Option<&str> {
        self.context()
            .and_then(|c| c.get("key"))
            .and_then(Value::as_str)
    }
    /// The task id: the context key without its counter.
    pub fn task_id(&self) -> Option<&str> {
        self.context_key()
            .map(|k| k.split_once('@').map_or(k, |(_, id)| id))
    }
}

impl serde::Serialize for Record {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = s.serialize_map(Some(self.fields.len()))?;
        for (k, v) in &self.fields {
            map.serialize_entry(k.as_ref(), v)?;
        }
        map.end()
    }
}

/// Escapes newlines as Python distlog does (`\n` becomes the two characters `\` `n`);
/// borrows when there is nothing to escape.
pub(crate) fn escape_newlines(s: &str) -> Cow<'_, str> {
    if s.contains('\n') {
        Cow::Owned(s.replace('\n', "\\n"))
    } else {
        Cow::Borrowed(s)
    }
}
