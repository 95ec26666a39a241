//! # distlog
//!
//! Distributed logging over ZeroMQ, in pure Rust and wire-compatible with the Python
//! package `distlog`: every `log` record becomes a two-frame message `[topic, body]`
//! pushed to a central collector, where a Python or Rust collector reads it.

#![warn(missing_docs)]

pub mod collector;
pub mod record;
mod runtime;
pub mod serialize;
pub mod topic;
pub mod value;

pub use record::Record;
pub use value::Value;
