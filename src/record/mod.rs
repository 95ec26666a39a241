//! The log record: Python's `LogRecord.__dict__`, keys in the order Python emits them.
//!
//! A [`Record`] is an ordered list of `(key, value)` pairs rather than a struct, so that
//! a record decoded from any sender (CPython 3.12's `taskName`, user `extra=` fields,
//! a `lineno` that someone sent as a string) is kept exactly and re-encoded unchanged.
//! Typed accessors read the well-known keys.

mod event;
mod fields;
mod log_record;
mod packed;
mod process;
mod standard_keys;
mod time;

pub use event::Event;
pub(crate) use event::EventFields;
pub(crate) use fields::{FieldRef, Fields, Name};
pub(crate) use log_record::escape_newlines;
pub use log_record::{Key, Record};
pub(crate) use packed::PackedEvent;
pub use process::{ProcessInfo, ThreadInfo};
pub(crate) use standard_keys::{standard_index_of, STANDARD_KEYS};
pub use time::asctime;
pub(crate) use time::{epoch_seconds, AscTime};

#[cfg(test)]
mod tests;
