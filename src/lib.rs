//! # distlog
//!
//! Distributed logging over ZeroMQ, in pure Rust and wire-compatible with the Python
//! package `distlog`: every `log` record becomes a two-frame message `[topic, body]`
//! pushed to a central collector, where a Python or Rust collector reads it.

#![warn(missing_docs)]

pub mod context;
pub mod curve;
pub mod filter;
mod fnv;
mod global;
pub mod handler;
mod intern;
pub mod level;
mod logger;
mod loop_guard;
pub mod perf;
pub mod record;
mod runtime;
pub mod serialize;
pub mod topic;
#[cfg(feature = "tracing")]
pub mod tracing_layer;
pub mod value;
#[cfg(feature = "arbitrary")]
mod value_arbitrary;

pub use record::Record;
pub use value::Value;

pub use context::{import_task, task, to};
pub use logger::{event_from, InitError, LogBuilder, Logger};

/// The handler of the logger installed by [`LogBuilder::install`] (or [`init`]), for
/// sending performance messages or records of your own; `None` before that.
///
/// ```
/// assert!(distlog::global_handler().is_none()); // nothing installed in this example
/// ```
pub fn global_handler() -> Option<&'static handler::Handler> {
    global::global_handler()
}

/// A builder for distlog as the global `log` logger.
///
/// ```no_run
/// let _guard = distlog::builder().endpoint("tcp://127.0.0.1:5010").install().unwrap();
/// log::info!("hello");
/// ```
pub fn builder() -> LogBuilder {
    LogBuilder::default()
}

/// Installs distlog as the global `log` logger, sending to `endpoint` with the
/// defaults (JSON, production, filters from `DISTLOG_LOG` or `RUST_LOG`). Keep the
/// returned guard alive: dropping it delivers what is queued.
///
/// ```no_run
/// let _guard = distlog::init("tcp://127.0.0.1:5010").expect("distlog installed");
/// log::warn!(target: "shop.orders", "stock low");
/// ```
pub fn init(endpoint: &str) -> Result<handler::Guard, InitError> {
    builder().endpoint(endpoint).install()
}

/// The README's examples, compiled as doctests so they cannot rot.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
