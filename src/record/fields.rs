//! A record's fields seen one by one, borrowed, for encoders: from a [`Record`] or from
//! an event not yet built into one.

use super::log_record::Record;
use super::standard_keys::{standard_index, STANDARD_KEYS};
use crate::value::Value;

/// One field's value, borrowed: what encoders read from a [`Record`] or an [`Event`].
#[derive(Debug, Clone, Copy)]
pub(crate) enum FieldRef<'a> {
    /// `None`.
    None,
    /// A string.
    Str(&'a str),
    /// A signed integer.
    Int(i64),
    /// An unsigned integer (thread ids).
    U64(u64),
    /// A float.
    Float(f64),
    /// Any other value.
    Value(&'a Value),
}

impl FieldRef<'_> {
    /// The owned value.
    pub(crate) fn to_value(self) -> Value {
        match self {
            FieldRef::None => Value::None,
            FieldRef::Str(s) => Value::Str(s.to_string()),
            FieldRef::Int(i) => Value::Int(i),
            FieldRef::U64(u) => Value::from(u),
            FieldRef::Float(f) => Value::Float(f),
            FieldRef::Value(v) => v.clone(),
        }
    }
}

/// A field's key, and its index in [`STANDARD_KEYS`] when it is one of Python's, so
/// that encoders can write standard keys from a pre-encoded table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Name<'a> {
    pub(super) text: &'a str,
    pub(super) standard: Option<u8>,
}

impl<'a> Name<'a> {
    /// Any key. Its standard index is looked up, so encoders still take the fast path.
    pub(crate) fn new(text: &'a str) -> Name<'a> {
        let standard = standard_index(text).map(|i| i as u8);
        Name { text, standard }
    }

    /// A standard key, resolved at compile time (in a `const`, as the event module's
    /// `std_name!` does).
    pub(crate) const fn standard(text: &'static str) -> Name<'static> {
        let mut i = 0;
        while i < STANDARD_KEYS.len() {
            if const_eq(STANDARD_KEYS[i], text) {
                return Name {
                    text,
                    standard: Some(i as u8),
                };
            }
            i += 1;
        }
        Name {
            text,
            standard: None,
        }
    }

    /// The key text.
    pub(crate) fn as_str(&self) -> &'a str {
        self.text
    }

    /// Its index in [`STANDARD_KEYS`], if it is one.
    pub(crate) fn standard_index(&self) -> Option<usize> {
        self.standard.map(usize::from)
    }
}

const fn const_eq(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    let mut i = 0;
    while i < a.len() {
        if a[i] != b[i] {
            return false;
        }
        i += 1;
    }
    true
}

/// The fields of a record in order, however they are held.
pub(crate) trait Fields {
    /// How many fields `for_each` gives.
    fn len(&self) -> usize;
    /// Calls `f` with each key and value, in order, each key once.
    fn for_each(&self, f: &mut dyn FnMut(Name<'_>, FieldRef<'_>));
}

impl Fields for Record {
    fn len(&self) -> usize {
        self.fields.len()
    }
    fn for_each(&self, f: &mut dyn FnMut(Name<'_>, FieldRef<'_>)) {
        for (k, v) in &self.fields {
            f(Name::new(k), FieldRef::Value(v));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_gives_its_fields_in_order() {
        let r = Record::from_pairs([("name", "app".into()), ("levelno", 20.into())]);
        let mut keys = Vec::new();
        r.for_each(&mut |k, _| keys.push(k.as_str().to_string()));
        assert_eq!(keys, ["name", "levelno"]);
        assert_eq!(Fields::len(&r), 2);
    }
}
