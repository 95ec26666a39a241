//! The collector behind `distlogd`: receive records on PULL sockets, filter them, fan
//! them out to stdout, rotating files and a PUB socket; and the `distlog tail` and
//! `distlog replay` clients.
//!
//! Differences from Python's `distlogd`, on purpose:
//! - it binds loopback (`tcp://127.0.0.1:5010`) by default, not all interfaces;
//! - pickle bodies are decoded as data only ([`distlog::serialize::pickle`]); a pickle
//!   that would import or call anything is rejected, never run;
//! - a malformed or hostile message is counted and reported on stderr (rate-limited),
//!   and never stops the collector; bodies past [`Config::max_body_bytes`] are refused
//!   before decoding;
//! - it runs until SIGINT or SIGTERM, then drains, flushes and exits 0.
//!
//! Records are kept exactly as received: the decoders keep key order, unknown keys,
//! big integers and `NaN`, and the JSON encoder writes what Python's `json.dumps` would.
//! The PUB sink re-publishes the original `[topic, body]` frames untouched.
//!
//! # Threads and memory
//! The calling thread runs the sockets: it receives, checks and decodes each message,
//! and re-publishes it. With [`Config::receive_threads`] above one, the TCP inputs'
//! connections are dealt out among it and receive lanes, threads of their
//! own that check or decode what their peers send and hand it to the calling thread
//! over a bounded channel. Decoded records go in batches over a bounded channel to one
//! sink thread that filters, formats and writes them through large buffers, flushed
//! whenever the input goes idle. When the sinks fall behind, the channel fills and the
//! receive loop waits, so the PULL socket stops reading and TCP pushes back on the
//! senders: memory stays bounded under any flood.
//!
//! # Acknowledged delivery
//! With [`Config::ack_inputs`], ROUTER sockets take `[header, topic, body]` from
//! producers in acknowledged mode (the README's "Acknowledged delivery", module
//! [`ack`]). Each record goes through the same checks, filters and sinks; a per-producer
//! window drops a record taken before, counting it. Each batch handed to the sink
//! thread has a ticket; once the sink thread has committed (written, flushed and, for
//! files, `fdatasync`ed) every batch up to a ticket, it says so, and the receive loop
//! sends each connection one cumulative acknowledgement for what it carried. The sink
//! thread commits when its channel runs empty, and at least every 5 ms while busy, but
//! only when acknowledged records wait: plain traffic is written as before. A commit
//! that fails is reported too: the connections waiting on it are never acknowledged
//! again, and the window forgets its records, so that the producers' resends, on new
//! connections, are written (see `AckState::on_commit`).
//!
//! # Metrics
//! With [`Config::metrics_bind`], a thread of its own serves Prometheus metrics at
//! `/metrics` (the `distlogd` README lists them). The receive loop and the sink thread
//! keep counting as they do without it, and copy their totals out once per batch.
//!
//! ```no_run
//! use distlogd::Config;
//! use distlogd::config::{OutputFormat, SinkConfig, SinkKind};
//! use std::sync::atomic::AtomicBool;
//!
//! let mut config = Config::default();
//! config.sinks.push(SinkConfig::new(SinkKind::Stdout {
//!     format: OutputFormat::Jsonl,
//!     color: Default::default(),
//! }));
//! static STOP: AtomicBool = AtomicBool::new(false);
//! let stats = distlogd::run(&config, &STOP).unwrap();
//! eprintln!("{stats}");
//! ```

pub mod ack;
mod acks;
mod batch;
pub mod config;
mod curve;
mod dedup;
mod error;
mod examine;
pub mod filter;
pub mod format;
pub mod keygen;
mod lanes;
mod metrics;
#[cfg(feature = "nats")]
pub mod nats;
mod receive;
#[cfg(feature = "nats")]
pub mod replay;
mod runtime;
pub mod signal;
#[cfg(feature = "nats")]
pub mod since;
mod sink;
mod sink_thread;
pub mod stats;
pub mod subject;
pub mod tail;
pub mod tree;

pub(crate) use batch::Committed;
pub use config::{Config, ConfigError};
pub use error::CollectorError;
pub use filter::RecordFilter;
pub use stats::CollectorStats;

use crate::runtime::block_on_here;
use batch::{Batch, Channels};
use config::SinkKind;
use futures::channel::mpsc::unbounded;
use metrics::Metrics;
use receive::{receive, ReceiveOptions};
use sink::Sinks;
use sink_thread::sink_loop;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// Runs the collector until `shutdown` becomes true, then drains the input, flushes
/// every sink and returns the final counts (also printed on stderr).
///
/// Each bound endpoint is announced on stderr as `distlogd: listening on ENDPOINT`
/// (PULL) or `distlogd: publishing on ENDPOINT` (PUB), with the port resolved, so an
/// endpoint with port 0 can be used and discovered; so is the metrics address
/// ([`Config::metrics_bind`]), as `distlogd: metrics on http://ADDR/metrics`.
pub fn run(config: &Config, shutdown: &AtomicBool) -> Result<CollectorStats, CollectorError> {
    run_with_reload(config, shutdown, &AtomicBool::new(false))
}

/// [`run`], and whenever `reload` becomes true (`distlogd` sets it on SIGHUP, see
/// [`signal::reload_on_sighup`]) clears it and rereads the CURVE allow file
/// ([`config::CurveConfig::allow_file`]). A file that cannot be read or holds a bad
/// key leaves the keys allowed before in force; stderr says which happened.
///
/// ```no_run
/// use distlogd::config::{Config, CurveConfig};
/// let mut config = Config::default();
/// let mut curve = CurveConfig::new("collector.key".into());
/// curve.allow_file = Some("allowed".into());
/// config.curve = Some(curve);
/// let stop = distlogd::signal::shutdown_on_signals().unwrap();
/// let reload = distlogd::signal::reload_on_sighup().unwrap();
/// let stats = distlogd::run_with_reload(&config, stop, reload).unwrap();
/// eprintln!("{stats}");
/// ```
pub fn run_with_reload(
    config: &Config,
    shutdown: &AtomicBool,
    reload: &AtomicBool,
) -> Result<CollectorStats, CollectorError> {
    config.validate()?;
    // Keys first: a bad key file should not leave behind a file sink just opened.
    let curve = config
        .curve
        .as_ref()
        .map(curve::Curve::load)
        .transpose()
        .map_err(CollectorError::Curve)?;
    // Served until the sinks are flushed and the final counts are in.
    let metrics = config
        .metrics_bind
        .as_ref()
        .map(|addr| {
            let metrics = Arc::new(Metrics::new(config));
            let server = metrics::Server::start(addr, metrics.clone()).map_err(|source| {
                CollectorError::MetricsBind {
                    addr: addr.clone(),
                    source,
                }
            })?;
            eprintln!("distlogd: metrics on http://{}/metrics", server.addr());
            Ok::<_, CollectorError>((metrics, server))
        })
        .transpose()?;
    let (metrics, _server) = metrics.unzip();
    #[allow(unused_mut)]
    let mut sinks = Sinks::open(&config.sinks, metrics.clone())?;
    let keep_bodies = sinks.has_nats();
    let copies_bodies = sinks.copies_bodies();
    #[cfg(feature = "nats")]
    let nats_stats = sinks.nats_stats();
    // Set once shutdown begins: the nats sink then gives up after drain_max.
    let stopping = Arc::new(AtomicBool::new(false));
    // When nothing looks inside records, JSON bodies are checked, not decoded, and
    // canonical ones are copied to the output: the same verdicts and bytes, for a
    // fraction of the work.
    let check_only = !sinks.need_records()
        && config
            .sinks
            .iter()
            .all(|s| !matches!(s.kind, SinkKind::Publish { .. }) || !s.filter.needs_record());
    let (tx, sink_thread) = if sinks.is_empty() {
        (None, None)
    } else {
        let (tx, rx) = crossbeam_channel::bounded::<Batch>(config.channel_batches);
        let (back_tx, back_rx) = crossbeam_channel::bounded::<Batch>(config.channel_batches + 1);
        // Unbounded but small: at most one message per commit, drained by the
        // receive loop, which it also wakes.
        let (committed_tx, committed_rx) = unbounded::<Committed>();
        #[cfg(feature = "nats")]
        sinks.start_nats(committed_tx.clone(), stopping.clone(), config.drain_max)?;
        let handle = std::thread::Builder::new()
            .name("distlogd-sinks".into())
            .spawn(move || sink_loop(sinks, rx, back_tx, committed_tx))
            .map_err(CollectorError::SinkThreadStart)?;
        (
            Some(Channels {
                tx,
                back: back_rx,
                committed: committed_rx,
            }),
            Some(handle),
        )
    };
    let options = ReceiveOptions {
        check_only,
        keep_bodies,
        copies_bodies,
        stopping: stopping.clone(),
        #[cfg(feature = "nats")]
        nats_stats: nats_stats.clone(),
    };
    let result = block_on_here(receive(
        config, shutdown, reload, curve, tx, options, metrics,
    ))
    .map_err(CollectorError::Runtime)
    .and_then(|r| r);
    // Whatever ended the loop, the nats sink gives up on time.
    stopping.store(true, Ordering::Relaxed);
    let sink_errors = match sink_thread.map(|h| h.join()) {
        None => 0,
        Some(Ok(n)) => n,
        Some(Err(_)) => return Err(CollectorError::SinkThread("it panicked")),
    };
    let mut stats = result?;
    stats.sink_errors += sink_errors;
    #[cfg(feature = "nats")]
    {
        stats.nats = nats_stats.as_ref().map(nats::NatsStats::snapshot);
    }
    eprintln!("distlogd: final stats {stats}");
    Ok(stats)
}
