//! The log record: Python's `LogRecord.__dict__`, keys in the order Python emits them.
//!
//! A [`Record`] is an ordered list of `(key, value)` pairs rather than a struct, so that
//! a record decoded from any sender (CPython 3.12's `taskName`, user `extra=` fields,
//! a `lineno` that someone sent as a string) is kept exactly and re-encoded unchanged.
//! Typed accessors read the well-known keys.

mod event;
mod fields;
mod log_record;
mod process;
mod standard_keys;
mod time;

pub use event::{Event, EventFields};
pub use fields::{FieldRef, Fields, Name};
pub use log_record::{escape_newlines, Key, Record};
pub use process::{hostname, ProcessInfo, ThreadInfo};
pub(crate) use standard_keys::standard_index_of;
pub use standard_keys::{standard_index, STANDARD_KEYS};
pub(crate) use time::AscTime;
pub use time::{asctime, epoch_seconds};

#[cfg(test)]
mod tests;
