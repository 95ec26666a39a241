//! # distlog
//!
//! Distributed logging over ZeroMQ, in pure Rust and wire-compatible with the Python
//! package `distlog`: every `log` record becomes a two-frame message `[topic, body]`
//! pushed to a central collector, where a Python or Rust collector reads it.

#![warn(missing_docs)]

pub mod filter;
pub mod handler;
mod logger;
pub mod record;
mod runtime;
pub mod serialize;
pub mod topic;
pub mod value;
#[cfg(feature = "arbitrary")]
mod value_arbitrary;

pub use record::Record;
pub use value::Value;

pub use logger::{event_from, InitError, LogBuilder, Logger};

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
