//! Prometheus metrics at `http://ADDR/metrics` (`--metrics-bind ADDR`).
//!
//! The hot paths keep counting as they did: the receive loop in its own
//! [`CollectorStats`], the sink thread in plain per-sink counters. Each copies its
//! totals here once per batch (the receive loop at every hand-over to the sink
//! thread, under a short uncontended lock; the sink thread into atomics), never per
//! record. A scrape reads the copies through a [`Collector`]: every total only ever
//! grows, so exposing it as a counter is monotonic as Prometheus requires. The nats
//! sink's thread keeps atomic counters of its own (its stats line reads them too): a
//! scrape reads those directly, and the thread observes each PubAck's latency into
//! the histogram here.
//!
//! The exposition format is `prometheus-client`'s ([`prometheus_text`], version
//! 0.0.4). HTTP is a `std::net::TcpListener` on a thread of its own: a request of at
//! most [`MAX_REQUEST`] bytes, read within [`REQUEST_TIMEOUT`] in all, one response,
//! then the connection is closed. Each connection has a thread, at most
//! [`MAX_CONNECTIONS`] at once, so a client that sends nothing or never ends its
//! header holds one slot for [`REQUEST_TIMEOUT`] at most and never delays a scrape.

use crate::config::{Config, OutputFormat, SinkKind};
#[cfg(feature = "nats")]
use crate::nats::NatsStats;
use crate::stats::{AckCounts, CollectorStats, CurveCounts};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{prometheus_text, DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;
use std::io::{self, Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// The longest request (request line and headers) read; past it the answer is 431.
pub const MAX_REQUEST: usize = 8 * 1024;
/// The time a client has to send its whole request, however it trickles it in.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
/// Connections served at once; one more is answered 503 at once and closed.
pub const MAX_CONNECTIONS: usize = 32;
/// A connection's thread needs little: the response is built on the heap.
const CONNECTION_STACK: usize = 256 * 1024;
/// How long writing a response may take.
const WRITE_TIMEOUT: Duration = Duration::from_secs(5);

/// Every rejection reason the collector knows, exposed from the start with 0 so
/// that `rate()` sees the first one. A reason not listed here still shows once seen.
const REASONS: &[&str] = &[
    "frame_count",
    "bad_topic",
    "bad_body",
    "too_large",
    "forbidden_pickle",
    crate::stats::OVERSIZE,
    crate::ack::REASON_HEADER,
    crate::ack::REASON_VERSION,
];

/// Where a sink is written, which decides where its counts come from.
#[derive(Debug)]
enum Written {
    /// By the sink thread, behind the channel (stdout, files): its totals are copied
    /// here, and its records in flight are the channel's.
    Queued,
    /// From the receive loop (publish), with no queue of ours: totals copied here.
    Direct,
    /// By the nats sink's thread, whose counters a scrape reads (set once the sink
    /// is made; 0 until then).
    #[cfg(feature = "nats")]
    Nats(std::sync::OnceLock<NatsStats>),
}

/// One sink's counts, by its place in [`Config::sinks`].
#[derive(Debug)]
struct SinkMetrics {
    /// `stdout`, `file:PATH`, `publish:ENDPOINT` or `nats:STREAM`.
    label: String,
    written_by: Written,
    written: AtomicU64,
    failed: AtomicU64,
}

impl SinkMetrics {
    /// Records written, records failed, and records in flight (`queued` being the
    /// sink thread's) now.
    fn counts(&self, queued: i64) -> (u64, u64, i64) {
        let copied = (
            self.written.load(Ordering::Relaxed),
            self.failed.load(Ordering::Relaxed),
        );
        match &self.written_by {
            Written::Queued => (copied.0, copied.1, queued),
            Written::Direct => (copied.0, copied.1, 0),
            #[cfg(feature = "nats")]
            Written::Nats(stats) => match stats.get() {
                Some(s) => {
                    let n = s.snapshot();
                    (n.published, n.failed + n.given_up, as_gauge(s.pending()))
                }
                None => (0, 0, 0),
            },
        }
    }
}

/// What the receive loop copies here.
#[derive(Debug, Default)]
struct ReceiveCounts {
    stats: CollectorStats,
    acked: Option<AckCounts>,
    curve: Option<CurveCounts>,
}

/// The collector's counts as the last hand-over left them, and the NATS publish
/// latency histogram. Shared by the receive loop, the sink thread and the server.
#[derive(Debug)]
pub(crate) struct Metrics {
    receive: Mutex<ReceiveCounts>,
    /// By index in [`Config::sinks`]; `None` for a stdout sink with format `none`.
    sinks: Vec<Option<SinkMetrics>>,
    /// Records handed to the sink thread, and records it has been through.
    handed: AtomicU64,
    processed: AtomicU64,
    /// Whether acknowledged inputs are configured: only then are their metrics shown.
    acked: bool,
    nats_publish: Histogram,
}

impl Metrics {
    /// The metrics of a collector with this config, all 0.
    pub(crate) fn new(config: &Config) -> Metrics {
        let mut seen: Vec<String> = Vec::new();
        let sinks = config
            .sinks
            .iter()
            .map(|s| {
                let (label, written_by) = match &s.kind {
                    SinkKind::Stdout {
                        format: OutputFormat::None,
                        ..
                    } => return None,
                    SinkKind::Stdout { .. } => ("stdout".to_string(), Written::Queued),
                    SinkKind::File { path, .. } => {
                        (format!("file:{}", path.display()), Written::Queued)
                    }
                    SinkKind::Publish { endpoint } => {
                        (format!("publish:{endpoint}"), Written::Direct)
                    }
                    #[cfg(feature = "nats")]
                    SinkKind::Nats(n) => (
                        format!("nats:{}", n.stream),
                        Written::Nats(std::sync::OnceLock::new()),
                    ),
                    // Config::validate refuses it in a build without the feature.
                    #[cfg(not(feature = "nats"))]
                    SinkKind::Nats(_) => return None,
                };
                // Two sinks of one label (two stdout sinks in a config file) would
                // make one series out of two: the second becomes `stdout#2`.
                let n = seen.iter().filter(|l| **l == label).count();
                seen.push(label.clone());
                let label = if n == 0 {
                    label
                } else {
                    format!("{label}#{}", n + 1)
                };
                Some(SinkMetrics {
                    label,
                    written_by,
                    written: AtomicU64::new(0),
                    failed: AtomicU64::new(0),
                })
            })
            .collect();
        Metrics {
            receive: Mutex::new(ReceiveCounts::default()),
            sinks,
            handed: AtomicU64::new(0),
            processed: AtomicU64::new(0),
            acked: !config.ack_inputs.is_empty(),
            // 100 µs to about 6.5 s: a PubAck from a local node up to a cluster
            // that is electing a leader.
            nats_publish: Histogram::new(exponential_buckets(0.0001, 2.0, 17)),
        }
    }

    /// Copies the receive loop's totals (called once per hand-over, not per record).
    pub(crate) fn set_received(
        &self,
        stats: &CollectorStats,
        acked: Option<AckCounts>,
        curve: Option<CurveCounts>,
    ) {
        let mut r = self.receive.lock().unwrap_or_else(|e| e.into_inner());
        r.stats.clone_from(stats);
        r.acked = acked;
        r.curve = curve;
    }

    /// Sets the totals of the sink at `index` in [`Config::sinks`].
    pub(crate) fn set_sink(&self, index: usize, written: u64, failed: u64) {
        if let Some(Some(s)) = self.sinks.get(index) {
            s.written.store(written, Ordering::Relaxed);
            s.failed.store(failed, Ordering::Relaxed);
        }
    }

    /// Where the scrape reads the nats sink at `index` in [`Config::sinks`] from.
    #[cfg(feature = "nats")]
    pub(crate) fn set_nats_sink(&self, index: usize, stats: NatsStats) {
        if let Some(Some(SinkMetrics {
            written_by: Written::Nats(cell),
            ..
        })) = self.sinks.get(index)
        {
            let _ = cell.set(stats);
        }
    }

    /// Counts records handed over to the sink thread.
    pub(crate) fn add_handed(&self, n: u64) {
        self.handed.fetch_add(n, Ordering::Relaxed);
    }

    /// Counts records the sink thread has been through.
    pub(crate) fn add_processed(&self, n: u64) {
        self.processed.fetch_add(n, Ordering::Relaxed);
    }

    /// Records the time from publishing one record to JetStream to its PubAck (the
    /// nats sink's thread, once per PubAck).
    #[cfg_attr(not(feature = "nats"), allow(dead_code))]
    pub(crate) fn observe_nats_publish(&self, took: Duration) {
        self.nats_publish.observe(took.as_secs_f64());
    }

    /// The metrics in the Prometheus text format, version 0.0.4.
    pub(crate) fn encode(self: &Arc<Self>) -> String {
        let mut registry = Registry::with_prefix("distlogd");
        registry.register_collector(Box::new(Scrape(self.clone())));
        let mut out = String::new();
        // Writing to a String fails only if an encoder does, which ours do not.
        let _ = prometheus_text::encode(&mut out, &registry);
        out
    }
}

/// Reads [`Metrics`] at each scrape.
#[derive(Debug)]
struct Scrape(Arc<Metrics>);

fn counter(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    value: u64,
) -> Result<(), std::fmt::Error> {
    let c = ConstCounter::new(value);
    c.encode(encoder.encode_descriptor(name, help, None, MetricType::Counter)?)
}

fn gauge(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    value: i64,
) -> Result<(), std::fmt::Error> {
    let g = ConstGauge::new(value);
    g.encode(encoder.encode_descriptor(name, help, None, MetricType::Gauge)?)
}

/// A counter family with one label.
fn counters<'a>(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    label: &str,
    values: impl IntoIterator<Item = (&'a str, u64)>,
) -> Result<(), std::fmt::Error> {
    let mut family = encoder.encode_descriptor(name, help, None, MetricType::Counter)?;
    for (value, n) in values {
        let labels = [(label, value)];
        ConstCounter::new(n).encode(family.encode_family(&labels)?)?;
    }
    Ok(())
}

/// A gauge family with one label.
fn gauges<'a>(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    label: &str,
    values: impl IntoIterator<Item = (&'a str, i64)>,
) -> Result<(), std::fmt::Error> {
    let mut family = encoder.encode_descriptor(name, help, None, MetricType::Gauge)?;
    for (value, n) in values {
        let labels = [(label, value)];
        ConstGauge::new(n).encode(family.encode_family(&labels)?)?;
    }
    Ok(())
}

fn as_gauge(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

impl Collector for Scrape {
    fn encode(&self, mut e: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let m = &self.0;
        // Copied out at once: the receive loop must not wait on the encoding.
        let (stats, acked, curve) = {
            let r = m.receive.lock().unwrap_or_else(|e| e.into_inner());
            (r.stats.clone(), r.acked, r.curve)
        };
        counter(
            &mut e,
            "records_received",
            "Messages taken off the input sockets (PULL, and ROUTER for acknowledged input), \
             accepted, rejected or dropped as duplicates",
            stats.received,
        )?;
        counter(
            &mut e,
            "records_accepted",
            "Messages that were valid records",
            stats.accepted,
        )?;
        let mut reasons: Vec<(&str, u64)> = REASONS
            .iter()
            .map(|r| (*r, stats.rejected_for(r)))
            .collect();
        for (r, n) in &stats.rejected {
            if !REASONS.contains(r) {
                reasons.push((r, *n));
            }
        }
        counters(
            &mut e,
            "records_rejected",
            "Messages rejected, by reason (the names of the stats line's rejected.REASON)",
            "reason",
            reasons,
        )?;
        counter(
            &mut e,
            "transport_errors",
            "Errors the transport reported (a peer that sent bytes that are not ZMTP)",
            stats.transport_errors,
        )?;
        let in_flight = as_gauge(
            m.handed
                .load(Ordering::Relaxed)
                .saturating_sub(m.processed.load(Ordering::Relaxed)),
        );
        // Each sink read once, so that its three series agree.
        let sinks: Vec<(&str, (u64, u64, i64))> = m
            .sinks
            .iter()
            .flatten()
            .map(|s| (s.label.as_str(), s.counts(in_flight)))
            .collect();
        counters(
            &mut e,
            "sink_records_written",
            "Records a sink wrote: for stdout and files into its buffer (flushed when the \
             input goes idle, and fdatasynced on each commit of acknowledged records), for \
             publish handed to zeromq, which drops them for a slow or absent subscriber, for \
             nats stored by JetStream (a PubAck, duplicates JetStream dropped included)",
            "sink",
            sinks.iter().map(|(l, (written, _, _))| (*l, *written)),
        )?;
        counters(
            &mut e,
            "sink_records_failed",
            "Write errors of a sink: each record it could not write (a stdout that closed \
             takes no more, and each record after counts), and each failed flush or \
             fdatasync; for nats each publish that failed and was tried again, and each \
             record given up at shutdown",
            "sink",
            sinks.iter().map(|(l, (_, failed, _))| (*l, *failed)),
        )?;
        gauges(
            &mut e,
            "sink_records_in_flight",
            "Records handed to the sink thread and not yet through it, for stdout and file \
             sinks (one queue feeds them all, so each shows the same number, before its own \
             filter); always 0 for publish sinks, which are written with no queue of ours; \
             for nats, records queued for JetStream or waiting for their PubAck",
            "sink",
            sinks.iter().map(|(l, (_, _, n))| (*l, *n)),
        )?;
        if m.acked {
            let a = acked.unwrap_or_default();
            gauge(
                &mut e,
                "producers_connected",
                "Connections to the acknowledged inputs now (a producer with several links \
                 to this collector counts once per link); plain PULL senders are not counted",
                as_gauge(a.producers),
            )?;
            counter(
                &mut e,
                "acks_sent",
                "Acknowledgements sent to producers (cumulative, one per connection per commit)",
                a.acks_sent,
            )?;
            counter(
                &mut e,
                "records_acknowledged",
                "Acknowledged-mode records covered by an acknowledgement that went out",
                a.acked,
            )?;
            counter(
                &mut e,
                "duplicates",
                "Acknowledged-mode records dropped because their producer's window had them",
                a.duplicates,
            )?;
            counter(
                &mut e,
                "gaps",
                "Seqs of single-endpoint producers that never arrived: records lost upstream",
                a.gaps,
            )?;
            counter(
                &mut e,
                "commit_failures",
                "Commits of acknowledged records that failed (a write or fdatasync error); \
                 their records are not acknowledged, and producers resend them",
                a.commit_failures,
            )?;
        }
        if let Some(c) = curve {
            counters(
                &mut e,
                "curve_handshakes",
                "CURVE handshakes on the input and publish sockets, by result",
                "result",
                [
                    ("accepted", c.accepted),
                    ("not_allowed", c.not_allowed),
                    ("handshake_failed", c.handshake_failed),
                ],
            )?;
        }
        m.nats_publish.encode(e.encode_descriptor(
            "nats_publish_seconds",
            "Seconds from publishing a record to JetStream to its PubAck, for each PubAck \
             (a publish that failed and was tried again is timed again); empty without a \
             nats sink",
            None,
            MetricType::Histogram,
        )?)?;
        Ok(())
    }
}

/// The HTTP server of `/metrics`, stopped when dropped.
pub(crate) struct Server {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Server {
    /// Binds `bind` (`HOST:PORT`; port 0 takes a free one) and serves on a thread.
    pub(crate) fn start(bind: &str, metrics: Arc<Metrics>) -> io::Result<Server> {
        let listener = TcpListener::bind(bind)?;
        let addr = listener.local_addr()?;
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::Builder::new()
            .name("distlogd-metrics".into())
            .spawn(move || accept_loop(listener, metrics, flag))?;
        Ok(Server {
            addr,
            stop,
            thread: Some(thread),
        })
    }

    /// The address bound, with its port resolved.
    pub(crate) fn addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        // `accept` blocks: a connection of our own wakes it to see the flag.
        let mut wake = self.addr;
        if wake.ip().is_unspecified() {
            wake.set_ip(match wake.ip() {
                IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::LOCALHOST),
                IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::LOCALHOST),
            });
        }
        let woken = TcpStream::connect_timeout(&wake, Duration::from_secs(1)).is_ok();
        if let (true, Some(thread)) = (woken, self.thread.take()) {
            let _ = thread.join();
        }
    }
}

fn accept_loop(listener: TcpListener, metrics: Arc<Metrics>, stop: Arc<AtomicBool>) {
    let active = Arc::new(AtomicUsize::new(0));
    loop {
        let accepted = listener.accept();
        if stop.load(Ordering::Relaxed) {
            return;
        }
        let stream = match accepted {
            Ok((stream, _)) => stream,
            Err(_) => {
                // Out of file descriptors, or a connection reset before it was
                // taken: do not spin.
                std::thread::sleep(Duration::from_millis(10));
                continue;
            }
        };
        if active.load(Ordering::Relaxed) >= MAX_CONNECTIONS {
            let _ = stream.set_write_timeout(Some(Duration::from_millis(100)));
            let _ = respond(
                &stream,
                "503 Service Unavailable",
                "text/plain",
                b"busy\n",
                false,
            );
            continue;
        }
        active.fetch_add(1, Ordering::Relaxed);
        let (m, a) = (metrics.clone(), active.clone());
        let spawned = std::thread::Builder::new()
            .name("distlogd-metrics-conn".into())
            .stack_size(CONNECTION_STACK)
            .spawn(move || {
                serve(stream, &m);
                a.fetch_sub(1, Ordering::Relaxed);
            });
        if spawned.is_err() {
            active.fetch_sub(1, Ordering::Relaxed);
        }
    }
}

/// Reads one request and answers it.
fn serve(mut stream: TcpStream, metrics: &Arc<Metrics>) {
    let _ = stream.set_write_timeout(Some(WRITE_TIMEOUT));
    let deadline = Instant::now() + REQUEST_TIMEOUT;
    let mut buf = vec![0u8; MAX_REQUEST];
    let mut len = 0;
    loop {
        if header_end(&buf[..len]) {
            break;
        }
        if len == buf.len() {
            let _ = respond(
                &stream,
                "431 Request Header Fields Too Large",
                "text/plain",
                b"request too large\n",
                false,
            );
            return;
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() || stream.set_read_timeout(Some(left)).is_err() {
            return;
        }
        match stream.read(&mut buf[len..]) {
            Ok(0) | Err(_) => return,
            Ok(n) => len += n,
        }
    }
    let line = buf[..len].split(|b| *b == b'\n').next().unwrap_or_default();
    let line = String::from_utf8_lossy(line);
    let mut parts = line.split_whitespace();
    let (method, target, version) = (parts.next(), parts.next(), parts.next());
    let (Some(method), Some(target), Some(version)) = (method, target, version) else {
        let _ = respond(
            &stream,
            "400 Bad Request",
            "text/plain",
            b"bad request\n",
            false,
        );
        return;
    };
    if !version.starts_with("HTTP/1.") || parts.next().is_some() {
        let _ = respond(
            &stream,
            "400 Bad Request",
            "text/plain",
            b"bad request\n",
            false,
        );
        return;
    }
    let path = target.split('?').next().unwrap_or_default();
    let head = method == "HEAD";
    match (method, path) {
        ("GET" | "HEAD", "/metrics") => {
            let body = metrics.encode();
            let _ = respond(
                &stream,
                "200 OK",
                prometheus_text::CONTENT_TYPE,
                body.as_bytes(),
                head,
            );
        }
        (_, "/metrics") => {
            let _ = respond(
                &stream,
                "405 Method Not Allowed",
                "text/plain",
                b"GET or HEAD only\n",
                false,
            );
        }
        _ => {
            let _ = respond(
                &stream,
                "404 Not Found",
                "text/plain",
                b"not found: the metrics are at /metrics\n",
                head,
            );
        }
    }
}

/// Whether `buf` holds a whole request head (a blank line ends it).
fn header_end(buf: &[u8]) -> bool {
    buf.windows(4).any(|w| w == b"\r\n\r\n") || buf.windows(2).any(|w| w == b"\n\n")
}

fn respond(
    mut stream: &TcpStream,
    status: &str,
    content_type: &str,
    body: &[u8],
    head: bool,
) -> io::Result<()> {
    let header = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    let mut out = header.into_bytes();
    if !head {
        out.extend_from_slice(body);
    }
    stream.write_all(&out)?;
    stream.flush()?;
    // Closing with unread request bytes would reset the connection and could lose
    // the response: say we are done writing first.
    let _ = stream.shutdown(std::net::Shutdown::Write);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::SinkConfig;

    #[test]
    fn text_has_every_family_and_counts() {
        let mut config = Config::default();
        config.ack_inputs.push("tcp://127.0.0.1:0".into());
        config.sinks.push(SinkConfig::new(SinkKind::File {
            path: "/tmp/x.jsonl".into(),
            rotate_bytes: None,
            keep: 0,
        }));
        config.sinks.push(SinkConfig::new(SinkKind::Stdout {
            format: OutputFormat::None,
            color: Default::default(),
        }));
        let m = Arc::new(Metrics::new(&config));
        let mut stats = CollectorStats {
            received: 5,
            accepted: 3,
            ..Default::default()
        };
        stats.reject("bad_body");
        stats.reject("something_new");
        m.set_received(&stats, Some(AckCounts::default()), None);
        m.set_sink(0, 3, 0);
        m.add_handed(3);
        m.add_processed(1);
        m.observe_nats_publish(Duration::from_millis(3));
        let text = m.encode();
        for line in [
            "distlogd_records_received_total 5\n",
            "distlogd_records_accepted_total 3\n",
            "distlogd_records_rejected_total{reason=\"bad_body\"} 1\n",
            "distlogd_records_rejected_total{reason=\"bad_topic\"} 0\n",
            "distlogd_records_rejected_total{reason=\"something_new\"} 1\n",
            "distlogd_sink_records_written_total{sink=\"file:/tmp/x.jsonl\"} 3\n",
            "distlogd_sink_records_in_flight{sink=\"file:/tmp/x.jsonl\"} 2\n",
            "distlogd_producers_connected 0\n",
            "distlogd_nats_publish_seconds_count 1\n",
            "# TYPE distlogd_nats_publish_seconds histogram\n",
        ] {
            assert!(text.contains(line), "no {line:?} in\n{text}");
        }
        assert!(
            !text.contains("sink=\"stdout"),
            "a stdout of format none is no sink"
        );
        assert!(!text.contains("curve"), "no CURVE, no CURVE metrics");
    }

    #[test]
    fn repeated_labels_are_numbered() {
        let mut config = Config::default();
        for _ in 0..2 {
            config.sinks.push(SinkConfig::new(SinkKind::Stdout {
                format: OutputFormat::Jsonl,
                color: Default::default(),
            }));
        }
        let text = Arc::new(Metrics::new(&config)).encode();
        assert!(text.contains("{sink=\"stdout\"}"), "{text}");
        assert!(text.contains("{sink=\"stdout#2\"}"), "{text}");
    }

    #[cfg(feature = "nats")]
    #[test]
    fn a_nats_sink_shows_under_its_stream_from_the_start() {
        let mut config = Config::default();
        let mut nats = crate::config::NatsConfig::new(vec!["nats://127.0.0.1:4222".into()]);
        nats.stream = "LOGS".into();
        config.sinks.push(SinkConfig::new(SinkKind::Nats(nats)));
        let m = Arc::new(Metrics::new(&config));
        let zeros = |m: &Arc<Metrics>| {
            let text = m.encode();
            for line in [
                "distlogd_sink_records_written_total{sink=\"nats:LOGS\"} 0\n",
                "distlogd_sink_records_failed_total{sink=\"nats:LOGS\"} 0\n",
                "distlogd_sink_records_in_flight{sink=\"nats:LOGS\"} 0\n",
            ] {
                assert!(text.contains(line), "no {line:?} in\n{text}");
            }
        };
        // Before the sink is made, and after (nothing published yet).
        zeros(&m);
        let SinkKind::Nats(nats) = &config.sinks[0].kind else {
            unreachable!("the sink pushed above")
        };
        let sink = crate::nats::NatsSink::new(nats, Default::default(), Some(m.clone()))
            .expect("a good URL");
        m.set_nats_sink(0, sink.stats());
        zeros(&m);
    }

    #[test]
    fn header_end_needs_a_blank_line() {
        assert!(!header_end(b"GET /metrics HTTP/1.1\r\nHost: x\r\n"));
        assert!(header_end(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n"));
        assert!(header_end(b"GET /metrics HTTP/1.0\n\n"));
    }
}
