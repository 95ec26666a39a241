//! Where accepted records go: stdout (JSON lines or readable) and rotating files.
//!
//! Both buffer their writes; the collector flushes them when the input goes idle and
//! on exit, so a flood costs one `write` per buffer, not one per record. Records that
//! await an acknowledgement are committed ([`Sinks::commit`]): written out and, for
//! files, `fdatasync`ed, once for every record written since the last commit. (The PUB
//! re-publishing sink lives with the sockets, in the collector's receive loop.) The
//! `nats` sink hands records to a thread of its own ([`crate::nats`]); commits then
//! reach the receive loop through it, once JetStream has stored what they cover.

use super::config::{OutputFormat, SinkConfig, SinkKind};
use super::filter::RecordFilter;
use super::format::{write_jsonl_body, write_jsonl_from, write_pretty};
use super::stats::RateLimit;
use crate::ack::Origin;
use crate::batch::Verdict;
use crate::metrics::Metrics;
#[cfg(feature = "nats")]
use crate::nats::{NatsSink, NatsStats};
use crate::{CollectorError, Committed};
use bytes::Bytes;
use distlog::serialize::{json, Limits};
use distlog::topic::Topic;
use distlog::Record;
use std::fs::{File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

const BUFFER: usize = 256 * 1024;

/// A JSON-lines file that rotates by size: when a line would take it past
/// `rotate_bytes`, `PATH` becomes `PATH.1`, `PATH.1` becomes `PATH.2` and so on up to
/// `PATH.<keep>`; the oldest is deleted. Lines are never split across files, and the
/// line that caused the rotation is the first of the fresh file.
///
/// With `keep` 0 there are no rotated copies: `PATH` itself is emptied and written on
/// from the start. It is truncated in place, never removed, so the file and anyone
/// following it (`tail -f`, a log shipper) stay attached to it.
#[derive(Debug)]
pub(crate) struct RotatingFile {
    path: PathBuf,
    rotate_bytes: Option<u64>,
    keep: usize,
    out: BufWriter<File>,
    size: u64,
}

impl RotatingFile {
    /// Opens `path` for appending (creating it); `rotate_bytes` of `None` never rotates.
    pub fn open(path: &Path, rotate_bytes: Option<u64>, keep: usize) -> io::Result<Self> {
        let file = OpenOptions::new().create(true).append(true).open(path)?;
        let size = file.metadata()?.len();
        Ok(RotatingFile {
            path: path.to_path_buf(),
            rotate_bytes,
            keep,
            out: BufWriter::with_capacity(BUFFER, file),
            size,
        })
    }

    /// The path written to.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends one whole line (which should end in `\n`), rotating first if needed.
    pub fn write_line(&mut self, line: &[u8]) -> io::Result<()> {
        if let Some(limit) = self.rotate_bytes {
            if self.size > 0 && self.size + line.len() as u64 > limit {
                self.rotate()?;
            }
        }
        self.out.write_all(line)?;
        self.size += line.len() as u64;
        Ok(())
    }

    /// Writes out the buffer.
    pub fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }

    /// Writes out the buffer and waits until the data is on the disk (`fdatasync`).
    pub fn sync(&mut self) -> io::Result<()> {
        self.out.flush()?;
        self.out.get_ref().sync_data()
    }

    fn numbered(&self, n: usize) -> PathBuf {
        let mut name = self.path.clone().into_os_string();
        name.push(format!(".{n}"));
        PathBuf::from(name)
    }

    fn rotate(&mut self) -> io::Result<()> {
        self.out.flush()?;
        // Acknowledged records written since the last commit are in this file: it is
        // synced before it is renamed, which costs one sync per rotation.
        self.out.get_ref().sync_data()?;
        if self.keep == 0 {
            // Removing and recreating the live file would leave its readers on a
            // deleted file and, for a path like /dev/stdout, delete the device.
            // Opened for appending, it goes on at the new end: the start.
            self.out.get_ref().set_len(0)?;
            self.size = 0;
            return Ok(());
        }
        remove_if_present(&self.numbered(self.keep))?;
        for n in (1..self.keep).rev() {
            let from = self.numbered(n);
            if from.exists() {
                std::fs::rename(&from, self.numbered(n + 1))?;
            }
        }
        std::fs::rename(&self.path, self.numbered(1))?;
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)?;
        self.out = BufWriter::with_capacity(BUFFER, file);
        self.size = 0;
        Ok(())
    }
}

fn remove_if_present(path: &Path) -> io::Result<()> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

/// One output of the sink thread.
enum Output {
    Stdout {
        format: OutputFormat,
        color: bool,
        out: BufWriter<io::Stdout>,
    },
    File(RotatingFile),
}

/// What one write carries to the sinks.
#[derive(Clone, Copy)]
enum Line<'a> {
    Record(&'a Record, Option<&'a Origin>),
    Body(&'a Bytes, Option<&'a Origin>),
}

struct Sink {
    filter: RecordFilter,
    output: Output,
    /// Set after a write error on stdout (a closed pipe): the sink stops writing.
    dead: bool,
    errors: RateLimit,
    /// Its place in the config's sinks, which names it in the metrics.
    index: usize,
    /// Records written (into the buffer), and write, flush and sync errors.
    written: u64,
    failed: u64,
}

impl Sink {
    /// Whether this sink looks inside records: a readable format, or a filter on
    /// level, logger or task.
    fn needs_record(&self) -> bool {
        self.filter.needs_record()
            || matches!(
                self.output,
                Output::Stdout {
                    format: OutputFormat::Pretty,
                    ..
                }
            )
    }
}

/// The buffered sinks, written by one thread. Filters are applied here, and each
/// record is encoded at most once per format however many sinks take it.
pub(crate) struct Sinks {
    sinks: Vec<Sink>,
    json: Vec<u8>,
    pretty: Vec<u8>,
    errors: u64,
    /// `errors` at the last commit: a commit with new errors holds nothing for sure.
    errors_committed: u64,
    /// The JetStream sink (at most one, [`Config::validate`](crate::Config::validate)
    /// says).
    #[cfg(feature = "nats")]
    nats: Option<NatsSink>,
    /// Where the per-sink counts go, with `--metrics-bind`.
    metrics: Option<Arc<Metrics>>,
}

impl Sinks {
    /// Opens the stdout and file sinks of `configs` and checks the nats one (which
    /// starts with [`Sinks::start_nats`]); publish sinks are skipped.
    pub fn open(
        configs: &[SinkConfig],
        metrics: Option<Arc<Metrics>>,
    ) -> Result<Sinks, CollectorError> {
        let mut sinks = Vec::new();
        #[cfg(feature = "nats")]
        let mut nats = None;
        for (index, c) in configs.iter().enumerate() {
            let output = match &c.kind {
                SinkKind::Stdout { format, color } => {
                    if *format == OutputFormat::None {
                        continue;
                    }
                    Output::Stdout {
                        format: *format,
                        color: *format == OutputFormat::Pretty && color.for_stdout(),
                        out: BufWriter::with_capacity(BUFFER, io::stdout()),
                    }
                }
                SinkKind::File {
                    path,
                    rotate_bytes,
                    keep,
                } => Output::File(RotatingFile::open(path, *rotate_bytes, *keep).map_err(
                    |source| CollectorError::Open {
                        path: path.clone(),
                        source,
                    },
                )?),
                SinkKind::Publish { .. } => continue,
                #[cfg(feature = "nats")]
                SinkKind::Nats(config) => {
                    let sink = NatsSink::new(config, c.filter.clone(), metrics.clone())
                        .map_err(CollectorError::Nats)?;
                    // A scrape reads its counters where the NATS thread keeps them.
                    if let Some(m) = &metrics {
                        m.set_nats_sink(index, sink.stats());
                    }
                    nats = Some(sink);
                    continue;
                }
                // Config::validate refuses it in a build without the feature.
                #[cfg(not(feature = "nats"))]
                SinkKind::Nats(_) => continue,
            };
            sinks.push(Sink {
                filter: c.filter.clone(),
                output,
                dead: false,
                errors: RateLimit::new(3, Duration::from_secs(10)),
                index,
                written: 0,
                failed: 0,
            });
        }
        Ok(Sinks {
            sinks,
            json: Vec::with_capacity(4096),
            pretty: Vec::with_capacity(4096),
            errors: 0,
            errors_committed: 0,
            #[cfg(feature = "nats")]
            nats,
            metrics,
        })
    }

    /// Copies each sink's totals to the metrics, if any, counting `processed` more
    /// records through (once per batch, not per record).
    pub fn publish_metrics(&self, processed: usize) {
        if let Some(m) = &self.metrics {
            m.add_processed(processed as u64);
            for sink in &self.sinks {
                m.set_sink(sink.index, sink.written, sink.failed);
            }
        }
    }

    /// Whether there is any sink to write.
    pub fn is_empty(&self) -> bool {
        #[cfg(feature = "nats")]
        if self.nats.is_some() {
            return false;
        }
        self.sinks.is_empty()
    }

    /// Whether a sink copies canonical JSON bodies as they came (every JSON-lines
    /// sink may): then the receive loop must find out which bodies are canonical.
    pub fn copies_bodies(&self) -> bool {
        !self.sinks.is_empty()
    }

    /// Whether a nats sink is configured: it needs the bodies as received.
    pub fn has_nats(&self) -> bool {
        #[cfg(feature = "nats")]
        return self.nats.is_some();
        #[cfg(not(feature = "nats"))]
        false
    }

    /// The nats sink's counters, for the stats line.
    #[cfg(feature = "nats")]
    pub fn nats_stats(&self) -> Option<NatsStats> {
        self.nats.as_ref().map(NatsSink::stats)
    }

    /// Starts the nats sink's thread, if there is one (see [`NatsSink::start`]).
    #[cfg(feature = "nats")]
    pub fn start_nats(
        &mut self,
        committed: futures::channel::mpsc::UnboundedSender<Committed>,
        stopping: std::sync::Arc<std::sync::atomic::AtomicBool>,
        drain_max: Duration,
    ) -> Result<(), CollectorError> {
        match self.nats.as_mut() {
            Some(n) => n
                .start(committed, stopping, drain_max)
                .map_err(CollectorError::Nats),
            None => Ok(()),
        }
    }

    /// Where a commit's report goes: behind the records queued for JetStream, when
    /// there is a nats sink (`None` then), else straight to the receive loop.
    pub fn route_commit(&mut self, report: Committed) -> Option<Committed> {
        #[cfg(feature = "nats")]
        if let Some(n) = &self.nats {
            n.commit(report);
            return None;
        }
        Some(report)
    }

    /// Ends the nats sink (waiting, at most `drain_max` past the start of the
    /// shutdown, for JetStream to store what it was given) and returns every record
    /// that could not be written, the nats sink's given up included.
    pub fn finish(&mut self) -> u64 {
        #[cfg(feature = "nats")]
        if let Some(n) = self.nats.as_mut() {
            self.errors += n.finish();
        }
        self.errors
    }

    /// Whether some sink looks inside records: a readable format, or a filter on
    /// level, logger or task. When none does, canonical JSON bodies can go to
    /// [`Sinks::write_body`] without being decoded.
    pub fn need_records(&self) -> bool {
        // The nats sink's subject names the logger, which checking finds (see
        // `write_body`): only its filter may need the record.
        #[cfg(feature = "nats")]
        if self.nats.as_ref().is_some_and(|n| n.filter.needs_record()) {
            return true;
        }
        self.sinks.iter().any(Sink::needs_record)
    }

    /// Writes a record to every sink whose filter takes it; one that came with an
    /// acknowledged-delivery header names its `origin` in JSON lines. `body` is the
    /// body as received, which the nats sink publishes (it is there when
    /// [`Sinks::has_nats`]).
    pub fn write(
        &mut self,
        topic: Topic,
        record: &Record,
        origin: Option<&Origin>,
        body: Option<&Bytes>,
    ) {
        self.write_line(topic, Line::Record(record, origin));
        #[cfg(feature = "nats")]
        if let (Some(n), Some(body)) = (&self.nats, body) {
            if n.filter.matches(topic, record) {
                n.write(topic, record.name().unwrap_or(""), body, origin);
            }
        }
        #[cfg(not(feature = "nats"))]
        let _ = body;
    }

    /// Writes a JSON body taken as it came to every sink whose filter takes its
    /// topic: copied as it is when [`check_record`](distlog::serialize::json::check_record)
    /// found it canonical. Meant for sinks that do not [need records](Sinks::need_records);
    /// a readable sink decodes the body all the same.
    ///
    /// The nats sink takes the logger's name from `verdict`; the receive loop decodes
    /// the rare body whose name examining could not read (escaped, not a string), so
    /// this decodes only if it is handed one all the same.
    pub fn write_body(
        &mut self,
        topic: Topic,
        body: &Bytes,
        origin: Option<&Origin>,
        verdict: &Verdict,
    ) {
        match verdict {
            Verdict::Canonical(_) => self.write_line(topic, Line::Body(body, origin)),
            // Not known to be canonical: a JSON-lines sink gets it re-encoded. The
            // receive loop only hands these over when no such sink is there.
            Verdict::Named(_) if self.copies_bodies() => {
                if let Ok(record) = json::decode_record(body, &Limits::default()) {
                    self.write_line(topic, Line::Record(&record, origin));
                }
            }
            Verdict::Named(_) => {}
        }
        #[cfg(feature = "nats")]
        if let Some(n) = &self.nats {
            if n.filter.matches_topic(topic) {
                match verdict.plain_name(body) {
                    Some(name) => n.write(topic, name, body, origin),
                    None => {
                        let record = json::decode_record(body, &Limits::default()).ok();
                        let name = record.as_ref().and_then(Record::name).unwrap_or("");
                        n.write(topic, name, body, origin);
                    }
                }
            }
        }
    }

    fn write_line(&mut self, topic: Topic, line: Line<'_>) {
        self.json.clear();
        self.pretty.clear();
        let mut decoded: Option<Record> = None;
        for sink in &mut self.sinks {
            let record = match line {
                Line::Record(r, _) => Some(r),
                Line::Body(body, _) if sink.needs_record() => {
                    if decoded.is_none() {
                        decoded = json::decode_record(body, &Limits::default()).ok();
                    }
                    decoded.as_ref()
                }
                Line::Body(..) => None,
            };
            let passes = match record {
                Some(r) => sink.filter.matches(topic, r),
                None => sink.filter.matches_topic(topic),
            };
            if !passes {
                continue;
            }
            if sink.dead {
                // A closed stdout takes no more: the record it should have had is
                // one it failed to write.
                sink.failed += 1;
                continue;
            }
            let result = match &mut sink.output {
                Output::Stdout { format, color, out } => {
                    if *format == OutputFormat::Pretty {
                        let Some(record) = record else { continue };
                        if self.pretty.is_empty() {
                            write_pretty(&mut self.pretty, record, *color);
                        }
                        out.write_all(&self.pretty)
                    } else {
                        out.write_all(jsonl(&mut self.json, topic, line))
                    }
                }
                Output::File(file) => file.write_line(jsonl(&mut self.json, topic, line)),
            };
            match result {
                Ok(()) => sink.written += 1,
                Err(e) => {
                    self.errors += 1;
                    sink.failed += 1;
                    report(sink, &e);
                }
            }
        }
    }

    /// Flushes every sink's buffer.
    pub fn flush(&mut self) {
        for sink in &mut self.sinks {
            if sink.dead {
                continue;
            }
            let result = match &mut sink.output {
                Output::Stdout { out, .. } => out.flush(),
                Output::File(file) => file.flush(),
            };
            if let Err(e) = result {
                self.errors += 1;
                sink.failed += 1;
                report(sink, &e);
            }
        }
    }

    /// Flushes every sink and syncs every file to the disk: afterwards each record
    /// written so far is held. `false` when some write or sync failed since the last
    /// commit, so that nothing is acknowledged on a guess. A stdout that closed is
    /// not counted against it: it stopped taking records, and said so.
    pub fn commit(&mut self) -> bool {
        let mut ok = true;
        for sink in &mut self.sinks {
            if sink.dead {
                continue;
            }
            let result = match &mut sink.output {
                Output::Stdout { out, .. } => out.flush(),
                Output::File(file) => file.sync(),
            };
            if let Err(e) = result {
                self.errors += 1;
                sink.failed += 1;
                ok = matches!(sink.output, Output::Stdout { .. }) && ok;
                report(sink, &e);
            }
        }
        let clean = self.errors == self.errors_committed;
        self.errors_committed = self.errors;
        ok && clean
    }
}

/// The JSON line for what a write carries, made once however many sinks take it.
fn jsonl<'b>(json: &'b mut Vec<u8>, topic: Topic, line: Line<'_>) -> &'b [u8] {
    if json.is_empty() {
        match line {
            Line::Record(r, origin) => write_jsonl_from(json, topic, origin, r),
            Line::Body(body, origin) => write_jsonl_body(json, topic, origin, body),
        }
    }
    json
}

fn report(sink: &mut Sink, e: &io::Error) {
    let what = match &sink.output {
        Output::Stdout { .. } => {
            // A closed stdout will not reopen: stop writing to it, keep the others.
            sink.dead = true;
            eprintln!("distlogd: cannot write to stdout ({e}); stdout output stopped");
            return;
        }
        Output::File(f) => f.path().display().to_string(),
    };
    if let Some(held) = sink.errors.check() {
        let held = if held > 0 {
            format!(" ({held} more errors not shown)")
        } else {
            String::new()
        };
        eprintln!("distlogd: cannot write to {what}: {e}{held}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rotation_keeps_k_files() {
        let dir = std::env::temp_dir().join(format!("distlog-rot-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("x.jsonl");
        let mut f = RotatingFile::open(&path, Some(12), 2).unwrap();
        for i in 0..10 {
            f.write_line(format!("line {i:02}\n").as_bytes()).unwrap();
        }
        f.flush().unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "line 09\n");
        assert_eq!(
            std::fs::read_to_string(dir.join("x.jsonl.1")).unwrap(),
            "line 08\n"
        );
        assert_eq!(
            std::fs::read_to_string(dir.join("x.jsonl.2")).unwrap(),
            "line 07\n"
        );
        assert!(!dir.join("x.jsonl.3").exists());

        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn keep_zero_starts_the_live_file_over_in_place() {
        use std::io::{Read, Seek};
        let dir = std::env::temp_dir().join(format!("distlog-rot0-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("x.jsonl");
        let mut f = RotatingFile::open(&path, Some(12), 0).unwrap();
        f.write_line(b"line 01\n").unwrap();
        f.flush().unwrap();
        // A reader following the file, as `tail -f` would.
        let mut follower = File::open(&path).unwrap();
        f.write_line(b"line 02\n").unwrap();
        f.write_line(b"line 03\n").unwrap();
        f.flush().unwrap();
        // The record that caused each rotation is kept; nothing else is left over.
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "line 03\n");
        assert!(!dir.join("x.jsonl.1").exists());
        // The follower still reads the live file, not a deleted one.
        let mut seen = String::new();
        follower.rewind().unwrap();
        follower.read_to_string(&mut seen).unwrap();
        assert_eq!(seen, "line 03\n");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
