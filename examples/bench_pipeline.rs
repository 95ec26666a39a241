//! Issue 6's ratio table, measured side by side in one run on this machine.
//!
//! ```text
//! cargo build --release --bins --examples
//! target/release/examples/bench_pipeline            # all sections
//! DISTLOG_PYTHON=.venv/bin/python target/release/examples/bench_pipeline --records 300000
//! target/release/examples/bench_pipeline --only jetstream   # the JetStream rows alone
//! target/release/examples/bench_pipeline --only queues      # the queue shapes alone
//! target/release/examples/bench_pipeline --section caller_tail --endpoint E   # what the slowest calls met
//! ```
//!
//! Each section runs in a child process of its own (a process has one global logger),
//! against a real `distlogd` started from `target/release/`. Rates are records per
//! second from one application thread, the median of three runs; caller cost is the
//! time one `log::info!` with three key-values takes on the calling thread.
//!
//! Built with `--no-default-features --features async-std,tracing` (and distlogd with
//! it), the same table measures the async-std runtime.

#[path = "bench_pipeline/queues.rs"]
mod queues;
#[path = "bench_pipeline/tail.rs"]
mod tail;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let get = |flag: &str| {
        args.iter()
            .position(|a| a == flag)
            .and_then(|i| args.get(i + 1))
            .cloned()
    };
    let records: u64 = get("--records")
        .and_then(|v| v.parse().ok())
        .unwrap_or(200_000);
    if let Some(section) = get("--section") {
        let endpoint = get("--endpoint").unwrap_or_default();
        let server_key = get("--server-key").unwrap_or_default();
        run_section(&section, &endpoint, records, &server_key);
        return;
    }
    let release = std::env::current_exe()
        .ok()
        .and_then(|p| p.parent().and_then(Path::parent).map(Path::to_path_buf));
    let Some(dir) = release.filter(|d| d.join("distlogd").exists()) else {
        eprintln!("bench_pipeline: distlogd not found next to this example; run `cargo build --release --bins --examples` first");
        std::process::exit(2);
    };
    let mut table: Vec<(String, String)> = Vec::new();
    let mut row = |name: &str, value: String| {
        println!("{name:<62} {value}");
        table.push((name.to_string(), value));
    };

    println!("runtime: {RUNTIME}, {records} records per run, medians of 3 runs");
    if get("--only").as_deref() == Some("jetstream") {
        jetstream(&dir, records, &mut row);
        return;
    }
    let idle_producers: usize = get("--producers")
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000);
    if get("--only").as_deref() == Some("producers") {
        producers(&dir, records, idle_producers, &mut row);
        return;
    }
    if get("--only").as_deref() == Some("queues") {
        queues::rows(&mut row);
        return;
    }
    if get("--only").as_deref() == Some("connections") {
        connections_rows(&dir, idle_producers, &mut row);
        return;
    }
    let n = records.to_string();
    let raw = median3(|| child_metric(&["--section", "raw", "--records", &n], "raw_per_s"));
    row(
        &format!(
            "raw zeromq PUSH->PULL, {}-byte bodies (records/s)",
            body().len()
        ),
        format!("{raw:.0}"),
    );
    // CURVE (ZMTP-CURVE, issue 14), fork against fork and C libzmq against C libzmq,
    // with the same two-frame messages.
    let raw_curve =
        median3(|| child_metric(&["--section", "raw_curve", "--records", &n], "raw_per_s"));
    row(
        "raw zeromq PUSH->PULL with CURVE (records/s)",
        format!("{raw_curve:.0}"),
    );
    row(
        "  ratio to raw zeromq without CURVE (target >= 0.5)",
        format!("{:.2}", raw_curve / raw),
    );
    let c_null = match (
        c_libzmq(&dir, "null", records),
        c_libzmq(&dir, "curve", records),
    ) {
        (Ok(c_null), Ok(c_curve)) => {
            row(
                "C libzmq PUSH->PULL, same messages (records/s)",
                format!("{c_null:.0}"),
            );
            row(
                "  raw zeromq (this fork) / C libzmq",
                format!("{:.2}", raw / c_null),
            );
            row(
                "C libzmq PUSH->PULL with CURVE (records/s)",
                format!("{c_curve:.0}"),
            );
            row(
                "  raw zeromq with CURVE / C libzmq with CURVE (target >= 1.0)",
                format!("{:.2}", raw_curve / c_curve),
            );
            Some(c_null)
        }
        (Err(why), _) | (_, Err(why)) => {
            row("C libzmq PUSH->PULL", format!("skipped: {why}"));
            None
        }
    };
    let bare = median3(|| child_metric(&["--section", "bare", "--records", &n], "bare_per_s"));
    row(
        "distlog log::info! -> bare zeromq PULL, no collector (records/s)",
        format!("{bare:.0}"),
    );
    row(
        "  ratio to raw zeromq (stretch: > 1)",
        format!("{:.2}", bare / raw),
    );

    let mut received = Vec::new();
    // CPU time per record of each side, from the rusage of the waited-for children.
    let (mut producer_cpu, mut collector_cpu) = (Vec::new(), Vec::new());
    let e2e = median3(|| {
        let (daemon, endpoint) = distlogd(&dir, &["--output", "none"]);
        let before = children_cpu();
        let rate = child_metric(
            &["--section", "e2e", "--endpoint", &endpoint, "--records", &n],
            "e2e_per_s",
        );
        let producer_done = children_cpu();
        received.push(stop(daemon));
        let per_record = |d: Duration| d.as_secs_f64() * 1e6 / (records + 1) as f64;
        producer_cpu.push(per_record(producer_done - before));
        collector_cpu.push(per_record(children_cpu() - producer_done));
        rate
    });
    row(
        "distlog log::info! -> distlogd --output none (records/s)",
        format!("{e2e:.0}"),
    );
    row(
        "  distlogd received, each run",
        format!("{received:?} of {} (incl. warm-up)", records + 1),
    );
    row(
        "  ratio to raw zeromq (target >= 0.8)",
        format!("{:.2}", e2e / raw),
    );
    if let Some(c_null) = c_null {
        row(
            "  ratio to C libzmq PUSH->PULL (issue 15 target >= 1.0)",
            format!("{:.2}", e2e / c_null),
        );
    }
    // The same through CURVE: distlogd with a secret key, the producer with its
    // public key and a key pair of its own.
    match curve_e2e(&dir, &n) {
        Ok(e2e_curve) => {
            row(
                "distlog log::info! -> distlogd --output none, CURVE (records/s)",
                format!("{e2e_curve:.0}"),
            );
            row(
                "  ratio to the same without CURVE (target >= 0.5)",
                format!("{:.2}", e2e_curve / e2e),
            );
        }
        Err(why) => row("distlog -> distlogd with CURVE", format!("skipped: {why}")),
    }
    // Acknowledged delivery (issue 12): the producer keeps every record until distlogd
    // says its sinks hold it.
    let mut received = Vec::new();
    let acked = median3(|| {
        let (daemon, endpoint) = distlogd_acked(&dir, &["--output", "none"]);
        let rate = child_metric(
            &[
                "--section",
                "e2e_acked",
                "--endpoint",
                &endpoint,
                "--records",
                &n,
            ],
            "e2e_per_s",
        );
        received.push(stop(daemon));
        rate
    });
    row(
        "distlog log::info! -> distlogd --output none, acknowledged (records/s)",
        format!("{acked:.0}"),
    );
    row("  distlogd received, each run", format!("{received:?}"));
    row(
        "  ratio to the same without acknowledgements (issue 12 target >= 0.7)",
        format!("{:.2}", acked / e2e),
    );
    row(
        "  ratio to the same sender with no collector (collector keeps up: 1)",
        format!("{:.2}", e2e / bare),
    );
    let (producer_cpu, collector_cpu) = (median(producer_cpu), median(collector_cpu));
    row(
        "  CPU per record, µs: producer (application + sender) / distlogd",
        format!("{producer_cpu:.2} / {collector_cpu:.2}"),
    );
    row(
        "  distlogd's CPU per record over the producer's (keeps up: <= 1)",
        format!("{:.2}", collector_cpu / producer_cpu),
    );

    let file = std::env::temp_dir().join(format!("distlog-bench-{}.jsonl", std::process::id()));
    let file_arg = file.to_string_lossy().into_owned();
    let mut received = Vec::new();
    let to_file = median3(|| {
        let (daemon, endpoint) = distlogd(&dir, &["--output", "none", "--file", &file_arg]);
        let rate = child_metric(
            &["--section", "e2e", "--endpoint", &endpoint, "--records", &n],
            "e2e_per_s",
        );
        received.push(stop(daemon));
        let _ = std::fs::remove_file(&file);
        rate
    });
    row(
        "distlog log::info! -> distlogd --file (jsonl) (records/s)",
        format!("{to_file:.0}"),
    );
    row("  distlogd received, each run", format!("{received:?}"));
    let ingest = median3(|| {
        let (daemon, endpoint) = distlogd(&dir, &["--output", "none", "--file", &file_arg]);
        let rate = child_metric(
            &[
                "--section",
                "ingest",
                "--endpoint",
                &endpoint,
                "--records",
                &n,
                "--file",
                &file_arg,
            ],
            "ingest_per_s",
        );
        stop(daemon);
        let _ = std::fs::remove_file(&file);
        rate
    });
    row(
        "distlogd --file ingest, fed pre-encoded records (records/s; target >= 500,000)",
        format!("{ingest:.0}"),
    );
    let mut received = Vec::new();
    let acked_file = median3(|| {
        let (daemon, endpoint) = distlogd_acked(&dir, &["--output", "none", "--file", &file_arg]);
        let rate = child_metric(
            &[
                "--section",
                "e2e_acked",
                "--endpoint",
                &endpoint,
                "--records",
                &n,
            ],
            "e2e_per_s",
        );
        received.push(stop(daemon));
        let _ = std::fs::remove_file(&file);
        rate
    });
    row(
        "distlog log::info! -> distlogd --file, acknowledged: fdatasync group commit (records/s)",
        format!("{acked_file:.0}"),
    );
    row("  distlogd received, each run", format!("{received:?}"));
    row(
        "  ratio to --file without acknowledgements",
        format!("{:.2}", acked_file / to_file),
    );

    jetstream(&dir, records, &mut row);

    match python() {
        Some(py) => {
            let (daemon, endpoint) = distlogd(&dir, &["--output", "none"]);
            let n = (records / 10).max(10_000);
            let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/py/python_handler.py");
            let out = Command::new(py)
                .arg(script)
                .arg(&endpoint)
                .arg(n.to_string())
                .output();
            stop(daemon);
            let py_rate = out
                .ok()
                .and_then(|o| metric(&String::from_utf8_lossy(&o.stdout), "python_records_per_s"));
            match py_rate {
                Some(r) => {
                    row(
                        "Python distlog handler, JSON (records/s)",
                        format!("{r:.0}"),
                    );
                    row(
                        "  distlog / Python (target >= 30)",
                        format!("{:.1}", e2e / r),
                    );
                }
                None => row("Python distlog handler", "failed to run".into()),
            }
        }
        None => row(
            "Python distlog handler",
            "skipped: set DISTLOG_PYTHON or create .venv".into(),
        ),
    }

    let (daemon, endpoint) = distlogd(&dir, &["--output", "none"]);
    let caller = child_output(&[
        "--section",
        "caller",
        "--endpoint",
        &endpoint,
        "--records",
        &records.to_string(),
    ]);
    stop(daemon);
    let (daemon, endpoint) = distlogd(&dir, &["--output", "none"]);
    let paced = child_output(&[
        "--section",
        "caller_paced",
        "--endpoint",
        &endpoint,
        "--records",
        "100000",
    ]);
    let paced_tail = tail::child(&endpoint);
    stop(daemon);
    let (daemon, endpoint) = distlogd_acked(&dir, &["--output", "none"]);
    let caller_acked = child_output(&[
        "--section",
        "caller_acked",
        "--endpoint",
        &endpoint,
        "--records",
        &records.to_string(),
    ]);
    stop(daemon);
    let ta = child_output(&["--section", "appender", "--records", &records.to_string()]);
    let cm = metric(&caller, "median_ns").unwrap_or(f64::NAN);
    let tm = metric(&ta, "median_ns").unwrap_or(f64::NAN);
    row(
        "caller cost, log::info! + 3 key-values, median ns (target <= 250)",
        format!("{cm:.0}"),
    );
    row(
        "  p99 ns",
        format!("{:.0}", metric(&caller, "p99_ns").unwrap_or(f64::NAN)),
    );
    row(
        "  p99.9 ns (target <= 20,000)",
        format!("{:.0}", metric(&caller, "p999_ns").unwrap_or(f64::NAN)),
    );
    row(
        "same call in acknowledged mode: median / p99 / p99.9 ns (issue 6: <= 250 / - / 20,000)",
        percentile_row(&caller_acked),
    );
    row(
        "same call paced at 100,000 a second: median / p99 / p99.9 ns",
        percentile_row(&paced),
    );
    tail::row(&paced_tail, &mut row);
    let floor = child_output(&[
        "--section",
        "caller_floor",
        "--records",
        &records.to_string(),
    ]);
    let floor_paced = child_output(&["--section", "caller_floor_paced", "--records", "100000"]);
    row(
        "the log crate's own part (format + key-value visit, no queue): back to back median ns",
        format!("{:.0}", metric(&floor, "median_ns").unwrap_or(f64::NAN)),
    );
    row(
        "  paced: median / p99 / p99.9 ns (the floor under issue 15's 100 ns / 1 us)",
        percentile_row(&floor_paced),
    );
    queues::rows(&mut row);
    row(
        "tracing-appender non-blocking JSON, median ns",
        format!("{tm:.0}"),
    );
    row(
        "  p99.9 ns",
        format!("{:.0}", metric(&ta, "p999_ns").unwrap_or(f64::NAN)),
    );
    row(
        "  distlog / tracing-appender median (target <= 0.5)",
        format!("{:.2}", cm / tm),
    );
    let enc = child_output(&[
        "--section",
        "caller_encode",
        "--records",
        &records.to_string(),
    ]);
    row(
        "same call if the caller also encoded the JSON body, median ns",
        format!("{:.0}", metric(&enc, "median_ns").unwrap_or(f64::NAN)),
    );

    let emit = dir.join("examples/emit");
    let (rss_kib, bound_kib) = emit_peak_rss(&emit);
    row(
        "emit 1,000,000 records, collector down: peak RSS (KiB)",
        format!("{rss_kib}"),
    );
    row(
        "  bound: queue capacity x record size + 16 MiB (KiB)",
        format!("{bound_kib}"),
    );

    producers(&dir, records, idle_producers, &mut row);
}

/// The JetStream rows (issue 13), on a one-node `nats-server -js` with file storage:
/// async-nats alone, distlogd fed pre-encoded records, and acknowledged `log::info!` end
/// to end. Each run fills a stream of its own.
fn jetstream(dir: &Path, records: u64, row: &mut impl FnMut(&str, String)) {
    let tool = dir.join("examples/jetstream_bench");
    if distlog_testkit::nats_server_path().is_none() || !tool.exists() {
        row(
            "JetStream rows",
            "skipped: needs nats-server and examples/jetstream_bench".into(),
        );
        return;
    }
    let server = distlog_testkit::NatsServer::start();
    let url = server.url();
    // JetStream stores far slower than zeromq carries: fewer records keep the runs short.
    let n = records.min(100_000).to_string();
    let mut streams = 0;
    // A stream of its own per run, and the distlogd flags that fill it.
    let mut next_stream = || {
        streams += 1;
        let stream = format!("BENCH{streams}");
        let flags = [
            "--output",
            "none",
            "--nats",
            &url,
            "--nats-stream",
            &stream,
            "--nats-subject-prefix",
            &format!("bench{streams}"),
        ]
        .map(String::from);
        (stream, flags)
    };
    // Two references: async-nats's JetStream publish (a future per PubAck), and the
    // way distlogd's sink publishes (every PubAck on one subscription).
    let alone = |mode: &str, stream: &str| {
        let out = Command::new(&tool)
            .args([mode, &url, stream, &n, &body().len().to_string()])
            .output();
        out.ok()
            .and_then(|o| metric(&String::from_utf8_lossy(&o.stdout), "publish_per_s"))
            .unwrap_or(f64::NAN)
    };
    // Each run of distlogd follows a run of each reference, so that every ratio
    // compares runs that saw the same load on this shared machine.
    let (mut futures, mut inbox, mut via, mut received) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for _ in 0..3 {
        futures.push(alone("publish", &next_stream().0));
        inbox.push(alone("publish-inbox", &next_stream().0));
        let (stream, flags) = next_stream();
        let nats = flags.each_ref().map(String::as_str);
        let (daemon, endpoint) = distlogd(dir, &nats);
        via.push(child_metric(
            &[
                "--section",
                "ingest",
                "--endpoint",
                &endpoint,
                "--records",
                &n,
                "--jetstream",
                &url,
                &stream,
            ],
            "ingest_per_s",
        ));
        received.push(stop(daemon));
    }
    let runs = |rates: &[f64], digits: usize| {
        let shown: Vec<_> = rates.iter().map(|r| format!("{r:.digits$}")).collect();
        format!(
            "{} / {:.digits$}",
            shown.join(" / "),
            median(rates.to_vec())
        )
    };
    row(
        &format!(
            "async-nats alone -> JetStream (file), {}-byte bodies (records/s): runs / median",
            body().len()
        ),
        runs(&futures, 0),
    );
    row(
        "async-nats alone, PubAcks on one subscription (records/s): runs / median",
        runs(&inbox, 0),
    );
    row(
        "distlogd --nats, fed pre-encoded records (records/s): runs / median",
        runs(&via, 0),
    );
    row("  distlogd received, each run", format!("{received:?}"));
    let ratios: Vec<f64> = (0..via.len())
        .map(|i| via[i] / futures[i].max(inbox[i]))
        .collect();
    row(
        "  ratio to the faster async-nats alone of the same round (target >= 0.8): runs / median",
        runs(&ratios, 2),
    );
    let mut received = Vec::new();
    let acked = median3(|| {
        let (_, flags) = next_stream();
        let nats = flags.each_ref().map(String::as_str);
        let (daemon, endpoint) = distlogd_acked(dir, &nats);
        let rate = child_metric(
            &[
                "--section",
                "e2e_acked",
                "--endpoint",
                &endpoint,
                "--records",
                &n,
            ],
            "e2e_per_s",
        );
        received.push(stop(daemon));
        rate
    });
    row(
        "distlog log::info!, acknowledged -> distlogd -> JetStream (records/s)",
        format!("{acked:.0}"),
    );
    row("  distlogd received, each run", format!("{received:?}"));
    drop(server);
}

fn python() -> Option<PathBuf> {
    let p = std::env::var_os("DISTLOG_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/python"));
    p.exists().then_some(p)
}

fn metric(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(name).and_then(|v| v.trim().parse().ok()))
}

fn child_output(args: &[&str]) -> String {
    let exe = std::env::current_exe().unwrap_or_else(|_| PathBuf::from("bench_pipeline"));
    match Command::new(exe)
        .args(args)
        .stderr(Stdio::inherit())
        .output()
    {
        Ok(o) => String::from_utf8_lossy(&o.stdout).into_owned(),
        Err(e) => format!("failed: {e}"),
    }
}

fn child_metric(args: &[&str], name: &str) -> f64 {
    metric(&child_output(args), name).unwrap_or(f64::NAN)
}

/// Starts `distlogd` on a free port; returns it and its endpoint once it listens.
fn distlogd(dir: &Path, extra: &[&str]) -> (Child, String) {
    distlogd_on("--bind", dir, extra)
}

/// The same with the port as an acknowledged input (`--ack-bind`).
fn distlogd_acked(dir: &Path, extra: &[&str]) -> (Child, String) {
    distlogd_on("--ack-bind", dir, extra)
}

fn distlogd_on(input: &str, dir: &Path, extra: &[&str]) -> (Child, String) {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or(5710);
    let endpoint = format!("tcp://127.0.0.1:{port}");
    let child = Command::new(dir.join("distlogd"))
        .args([input, &endpoint, "--stats-interval", "0"])
        .args(extra)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn();
    let Ok(child) = child else {
        eprintln!("bench_pipeline: cannot start distlogd");
        std::process::exit(2);
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    (child, endpoint)
}

/// SIGTERMs distlogd and returns how many records it says it received.
fn stop(child: Child) -> u64 {
    stat(&stop_stats(child), "received").unwrap_or(0)
}

/// SIGTERMs distlogd and returns its last stats line (`received=N accepted=N ...`),
/// empty if it printed none.
fn stop_stats(mut child: Child) -> String {
    // SAFETY: kill with a pid we own has no memory-safety preconditions.
    unsafe {
        libc::kill(child.id() as i32, libc::SIGTERM);
    }
    let mut last = String::new();
    if let Some(err) = child.stderr.take() {
        for line in BufReader::new(err).lines().map_while(Result::ok) {
            if let Some(at) = line.find("received=") {
                last = line[at..].to_string();
            }
        }
    }
    let _ = child.wait();
    last
}

/// One `name=N` count of a distlogd stats line.
fn stat(line: &str, name: &str) -> Option<u64> {
    line.split_whitespace()
        .find_map(|kv| kv.strip_prefix(name)?.strip_prefix('=')?.parse().ok())
}

/// `server_key`: the Z85 public key of a CURVE distlogd, for `e2e_curve`.
fn run_section(section: &str, endpoint: &str, records: u64, server_key: &str) {
    match section {
        "raw" => raw_zeromq(records, false),
        "raw_curve" => raw_zeromq(records, true),
        "bare" => bare_pull(records),
        "e2e" => end_to_end(endpoint, records, None, false),
        "e2e_acked" => end_to_end(endpoint, records, None, true),
        "e2e_curve" => match distlog::curve::CurvePublicKey::from_z85(server_key) {
            Ok(key) => end_to_end(endpoint, records, Some(key), false),
            Err(e) => eprintln!("e2e_curve: --server-key {server_key:?}: {e}"),
        },
        "ingest" => ingest(endpoint, records),
        "caller_encode" => caller_encode(records),
        "caller" => caller_cost(endpoint, records, false, false),
        "caller_acked" => caller_cost(endpoint, records, false, true),
        "caller_paced" => caller_cost(endpoint, records, true, false),
        "caller_tail" => tail::caller_tail(endpoint, records),
        "caller_floor" => caller_floor(records, false),
        "caller_floor_paced" => caller_floor(records, true),
        "appender" => appender_cost(records),
        "connections" => many_connections(endpoint, records as usize),
        other => {
            if !queues::run_section(other, records) {
                eprintln!("unknown section {other}");
            }
        }
    }
}

/// The JSON body of bench record `i`, as distlog's encoder writes it for
/// `log::info!(target: "bench", order_id = i, amount = 9.5, user = "alice"; "order {i} paid")`.
fn bench_body(i: u64) -> Vec<u8> {
    use distlog::record::{Event, ProcessInfo};
    let mut e = Event::new(log::Level::Info, "bench", format!("order {i} paid"));
    e.file = Some("examples/bench_pipeline.rs".into());
    e.line = Some(400);
    e.module_path = Some("bench_pipeline".into());
    e.extra.push(("order_id".into(), (i as i64).into()));
    e.extra.push(("amount".into(), 9.5.into()));
    e.extra.push(("user".into(), "alice".into()));
    let mut body = Vec::new();
    distlog::serialize::encode_event(
        &e,
        &ProcessInfo::current(),
        distlog::topic::Encoding::Json,
        &mut body,
    );
    body
}

#[cfg(feature = "async-std")]
const RUNTIME: &str = "async-std";
#[cfg(all(feature = "tokio", not(feature = "async-std")))]
const RUNTIME: &str = "tokio";

#[cfg(feature = "async-std")]
fn block_on<F: std::future::Future>(f: F) -> F::Output {
    async_std::task::block_on(f)
}

#[cfg(all(feature = "tokio", not(feature = "async-std")))]
fn block_on<F: std::future::Future>(f: F) -> F::Output {
    match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
    {
        Ok(rt) => rt.block_on(f),
        Err(e) => {
            eprintln!("bench_pipeline: no tokio runtime: {e}");
            std::process::exit(2);
        }
    }
}

/// The middle measurement (the upper middle of an even count).
fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
}

/// User and system time of the children waited for so far.
fn children_cpu() -> Duration {
    // SAFETY: getrusage writes into the struct it is given and nothing else.
    let usage = unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_CHILDREN, &mut usage);
        usage
    };
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    tv(usage.ru_utime) + tv(usage.ru_stime)
}

/// The median of three measurements.
fn median3(mut f: impl FnMut() -> f64) -> f64 {
    median(vec![f(), f(), f()])
}

/// A body of the size of a bench record, for the raw zeromq reference.
fn body() -> bytes::Bytes {
    bytes::Bytes::from(vec![b'x'; bench_body(100_000).len()])
}

fn free_endpoint() -> String {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or(5713);
    format!("tcp://127.0.0.1:{port}")
}

/// A PULL socket on a thread of its own that counts what arrives; returns the
/// endpoint, the count and the instant the last of `n` arrived.
fn counting_pull(
    n: u64,
) -> (
    String,
    std::sync::Arc<std::sync::atomic::AtomicU64>,
    std::thread::JoinHandle<Option<Instant>>,
) {
    counting_pull_with(n, zeromq::SocketOptions::default())
}

/// [`counting_pull`] with socket options (CURVE for the encrypted reference).
fn counting_pull_with(
    n: u64,
    options: zeromq::SocketOptions,
) -> (
    String,
    std::sync::Arc<std::sync::atomic::AtomicU64>,
    std::thread::JoinHandle<Option<Instant>>,
) {
    use std::sync::atomic::{AtomicU64, Ordering};
    use zeromq::{Socket, SocketRecv};
    let endpoint = free_endpoint();
    let ep = endpoint.clone();
    let count = std::sync::Arc::new(AtomicU64::new(0));
    let c = count.clone();
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let receiver = std::thread::spawn(move || {
        block_on(async move {
            let mut pull = zeromq::PullSocket::with_options(options);
            if pull.bind(&ep).await.is_err() {
                return None;
            }
            let _ = ready_tx.send(());
            while c.load(Ordering::Relaxed) < n {
                pull.recv().await.ok()?;
                c.fetch_add(1, Ordering::Relaxed);
            }
            Some(Instant::now())
        })
    });
    let _ = ready_rx.recv_timeout(Duration::from_secs(10));
    (endpoint, count, receiver)
}

/// distlog's sender alone: `log::info!` to a PULL socket that only counts.
fn bare_pull(n: u64) {
    let (endpoint, _count, receiver) = counting_pull(n + 1);
    let guard = install(&endpoint, QUEUE);
    log::info!(target: "bench", "warm up");
    guard.handler().flush_within(Duration::from_secs(30));
    let start = Instant::now();
    for i in 0..n {
        log::info!(target: "bench", order_id = i, amount = 9.5, user = "alice"; "order {i} paid");
    }
    let Ok(Some(end)) = receiver.join() else {
        eprintln!("bare: the PULL socket failed");
        return;
    };
    println!(
        "bare_per_s {:.0}",
        n as f64 / end.duration_since(start).as_secs_f64()
    );
    drop(guard);
}

/// distlogd's own ingest rate: records encoded beforehand by distlog's encoder, framed
/// in batches and pushed as fast as zeromq takes them. With `--file F`, timed until the
/// JSON-lines file holds every line; with `--jetstream URL STREAM`, rated by
/// `jetstream_bench stored` from the stream's own timestamps once it holds every record.
fn ingest(endpoint: &str, n: u64) {
    use zeromq::Socket;
    let distinct = 4096u64;
    let bodies: Vec<Vec<u8>> = (0..distinct).map(|i| bench_body(100_000 + i)).collect();
    // What distlogd writes: `{"topic": "TLJ", "record": <body>}` and a newline.
    let line_overhead = r#"{"topic": "TLJ", "record": }"#.len() as u64 + 1;
    let expected: u64 = (0..n)
        .map(|i| bodies[(i % distinct) as usize].len() as u64 + line_overhead)
        .sum();
    let args: Vec<String> = std::env::args().collect();
    let after = |flag: &str, k: usize| {
        args.iter()
            .position(|a| a == flag)
            .and_then(|i| args.get(i + k))
            .cloned()
    };
    let file = after("--file", 1).map(PathBuf::from);
    let jetstream = after("--jetstream", 1).zip(after("--jetstream", 2));
    if file.is_none() && jetstream.is_none() {
        eprintln!("ingest: --file F or --jetstream URL STREAM is required");
        return;
    }
    let outcome = block_on(async {
        let mut push = zeromq::PushSocket::new();
        if push.connect(endpoint).await.is_err() {
            return None;
        }
        let start = Instant::now();
        let mut i = 0;
        while i < n {
            let mut batch = bytes::BytesMut::with_capacity(512 * 800);
            for _ in 0..512.min(n - i) {
                let body = &bodies[(i % distinct) as usize];
                zeromq::encode_frames(&[b"TLJ".as_slice(), body], &mut batch);
                i += 1;
            }
            push.send_framed(batch.freeze()).await.ok()?;
        }
        // Keep the socket until everything is stored.
        if let Some((url, stream)) = &jetstream {
            let tool = std::env::current_exe()
                .ok()?
                .with_file_name("jetstream_bench");
            let out = Command::new(tool)
                .args(["stored", url, stream, &n.to_string()])
                .output()
                .ok()?;
            eprint!("{}", String::from_utf8_lossy(&out.stderr));
            return metric(&String::from_utf8_lossy(&out.stdout), "stored_per_s");
        }
        let file = file.as_ref()?;
        let deadline = Instant::now() + Duration::from_secs(120);
        while std::fs::metadata(file).map_or(0, |m| m.len()) < expected {
            if Instant::now() > deadline {
                return None;
            }
            async_io_sleep().await;
        }
        Some(n as f64 / start.elapsed().as_secs_f64())
    });
    match outcome {
        Some(rate) => println!("ingest_per_s {rate:.0}"),
        None => eprintln!("ingest: distlogd did not store every record"),
    }
}

/// A short pause that lets the runtime's other tasks (the socket writer) run.
async fn async_io_sleep() {
    #[cfg(feature = "async-std")]
    async_std::task::sleep(Duration::from_micros(500)).await;
    #[cfg(all(feature = "tokio", not(feature = "async-std")))]
    tokio::time::sleep(Duration::from_micros(500)).await;
}

/// What the caller would pay if it built and encoded the JSON body itself, instead of
/// handing the event to the sender thread.
fn caller_encode(n: u64) {
    use distlog::record::{Event, ProcessInfo};
    let process = ProcessInfo::current();
    let mut body = Vec::with_capacity(1024);
    let mut ns = Vec::with_capacity(n as usize);
    for i in 0..n {
        let t = Instant::now();
        let mut e = Event::new(log::Level::Info, "bench", format!("order {i} paid"));
        e.extra.push(("order_id".into(), (i as i64).into()));
        e.extra.push(("amount".into(), 9.5.into()));
        e.extra.push(("user".into(), "alice".into()));
        body.clear();
        distlog::serialize::encode_event(&e, &process, distlog::topic::Encoding::Json, &mut body);
        std::hint::black_box(&body);
        ns.push(t.elapsed().as_nanos() as u64);
    }
    percentiles(ns);
}

/// zeromq alone: one PUSH thread sending 400-byte bodies to a PULL socket.
fn raw_zeromq(n: u64, curve: bool) {
    use zeromq::{Socket, SocketSend, ZmqMessage};
    let (pull_options, push_options) = if curve {
        match curve_options() {
            Some(o) => o,
            None => {
                eprintln!("raw: cannot make CURVE keys");
                return;
            }
        }
    } else {
        Default::default()
    };
    let (endpoint, _count, receiver) = counting_pull_with(n, pull_options);
    let body = body();
    let start = block_on(async {
        let mut push = zeromq::PushSocket::with_options(push_options);
        push.connect(&endpoint).await.ok()?;
        let start = Instant::now();
        for _ in 0..n {
            let mut m = ZmqMessage::from(bytes::Bytes::from_static(b"TLJ"));
            m.push_back(body.clone());
            push.send(m).await.ok()?;
        }
        // Keep the socket until the last message is in.
        let end = receiver.join().ok().flatten()?;
        Some((start, end))
    });
    match start {
        Some((start, end)) => println!(
            "raw_per_s {:.0}",
            n as f64 / end.duration_since(start).as_secs_f64()
        ),
        None => eprintln!("raw: zeromq failed"),
    }
}

/// Socket options for a CURVE server (the PULL) and a client that knows its key,
/// with fresh keys.
fn curve_options() -> Option<(zeromq::SocketOptions, zeromq::SocketOptions)> {
    use zeromq::curve::{CurveClient, CurveKeyPair, CurveServer};
    let server = CurveKeyPair::generate().ok()?;
    let client = CurveKeyPair::generate().ok()?;
    let mut pull = zeromq::SocketOptions::default();
    pull.curve_server(CurveServer::new(server.secret.clone()));
    let mut push = zeromq::SocketOptions::default();
    push.curve_client(CurveClient::new(server.public, client));
    Some((pull, push))
}

/// C libzmq's PUSH->PULL (`benches/c/zmq_push_pull.c`), compiled here with `cc` and
/// Debian's `libzmq3-dev`: the reference implementation on the same machine, in the
/// same run. Messages per second, or why there is no figure.
fn c_libzmq(dir: &Path, mechanism: &str, n: u64) -> Result<f64, String> {
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/c/zmq_push_pull.c");
    let program = dir.join("zmq_push_pull");
    let fresh = |p: &Path| p.metadata().and_then(|m| m.modified()).ok();
    if fresh(&program) < fresh(&source) || fresh(&program).is_none() {
        let built = Command::new("cc")
            .args(["-O2", "-o"])
            .arg(&program)
            .arg(&source)
            .args(["-lzmq", "-lpthread"])
            .output()
            .map_err(|e| format!("cannot run cc ({e}); install a C compiler"))?;
        if !built.status.success() {
            return Err(format!(
                "cc failed (needs libzmq3-dev): {}",
                String::from_utf8_lossy(&built.stderr)
                    .lines()
                    .next()
                    .unwrap_or("")
            ));
        }
    }
    let body = body().len().to_string();
    let runs: Vec<f64> = (0..3)
        .map(|_| {
            let out = Command::new(&program)
                .args([mechanism, &n.to_string(), &body])
                .output()
                .map_err(|e| format!("cannot run {}: {e}", program.display()))?;
            let text = String::from_utf8_lossy(&out.stdout);
            metric(&text, "c_per_s").ok_or_else(|| {
                format!(
                    "{} {mechanism} failed: {}",
                    program.display(),
                    String::from_utf8_lossy(&out.stderr).trim()
                )
            })
        })
        .collect::<Result<_, _>>()?;
    Ok(median(runs))
}

/// The default queue capacity, for the throughput sections.
const QUEUE: usize = 65_536;

fn install(endpoint: &str, capacity: usize) -> distlog::handler::Guard {
    install_with(endpoint, capacity, |b| b)
}

fn install_with(
    endpoint: &str,
    capacity: usize,
    more: impl FnOnce(distlog::LogBuilder) -> distlog::LogBuilder,
) -> distlog::handler::Guard {
    match more(distlog::builder())
        .endpoint(endpoint)
        .system(distlog::topic::System::Test)
        .queue_capacity(capacity)
        .overflow(distlog::handler::Overflow::Block(Duration::from_secs(10)))
        .flush_timeout(Duration::from_secs(120))
        .filter("info")
        .install()
    {
        Ok(g) => g,
        Err(e) => {
            eprintln!("bench_pipeline: {e}");
            std::process::exit(2);
        }
    }
}

/// One application thread logging through `log::info!` until distlogd's host has
/// acknowledged every record.
fn end_to_end(endpoint: &str, n: u64, curve: Option<distlog::curve::CurvePublicKey>, acked: bool) {
    let guard = match curve {
        None => install_with(endpoint, QUEUE, |b| b.acknowledged(acked)),
        Some(server) => {
            let Ok(me) = distlog::curve::CurveKeyPair::generate() else {
                eprintln!("e2e: cannot make a CURVE key pair");
                return;
            };
            install_with(endpoint, QUEUE, |b| b.curve(server, me))
        }
    };
    log::info!(target: "bench", "warm up");
    guard.handler().flush_within(Duration::from_secs(30));
    // With `--start-at NS` (Unix time in ns), several producer processes start together.
    let late_ms = start_barrier();
    let start = Instant::now();
    let start_ns = unix_ns();
    for i in 0..n {
        log::info!(target: "bench", order_id = i, amount = 9.5, user = "alice"; "order {i} paid");
    }
    let report = guard.shutdown();
    let elapsed = start.elapsed();
    println!("e2e_per_s {:.0}", n as f64 / elapsed.as_secs_f64());
    println!("start_unix_ns {start_ns}");
    println!("end_unix_ns {}", unix_ns());
    if let Some(late) = late_ms {
        println!("late_ms {late:.1}");
    }
    eprintln!(
        "e2e: sent {} dropped {} in {:.2?}",
        report.sent, report.dropped, elapsed
    );
}

fn percentiles(mut ns: Vec<u64>) {
    ns.sort_unstable();
    let at = |q: f64| ns[((ns.len() as f64 * q) as usize).min(ns.len() - 1)];
    println!("median_ns {}", at(0.5));
    println!("p99_ns {}", at(0.99));
    println!("p999_ns {}", at(0.999));
}

/// A caller section's median, p99 and p99.9 in ns as one row: "median / p99 / p99.9".
fn percentile_row(out: &str) -> String {
    let at = |name| metric(out, name).unwrap_or(f64::NAN);
    format!(
        "{:.0} / {:.0} / {:.0}",
        at("median_ns"),
        at("p99_ns"),
        at("p999_ns")
    )
}

/// Time on the calling thread of one `log::info!` with three key-values: back to back,
/// with a queue that holds them all (the cost of the call, not of backpressure, as
/// with tracing-appender's 128,000-line buffer); or `paced`, one call every 10 µs.
/// `acked`: in acknowledged mode, against an `--ack-bind` input.
fn caller_cost(endpoint: &str, n: u64, paced: bool, acked: bool) {
    let capacity = if paced { QUEUE } else { 1 << 20 };
    // In acknowledged mode half the capacity waits for acknowledgements: the queue
    // itself must still hold every call, as in plain mode.
    let capacity = if acked { capacity * 2 } else { capacity };
    let guard = install_with(endpoint, capacity, |b| b.acknowledged(acked));
    log::info!(target: "bench", "warm up");
    guard.handler().flush_within(Duration::from_secs(30));
    let ns = time_calls(n, paced);
    drop(guard);
    percentiles(ns);
}

/// The time of each of `n` calls of the bench's `log::info!`, back to back or one
/// every 10 µs.
fn time_calls(n: u64, paced: bool) -> Vec<u64> {
    let mut ns = Vec::with_capacity(n as usize);
    let start = Instant::now();
    for i in 0..n {
        if paced {
            let due = start + Duration::from_micros(10 * i);
            while Instant::now() < due {
                std::hint::spin_loop();
            }
        }
        let t = Instant::now();
        log::info!(target: "bench", order_id = i, amount = 9.5, user = "alice"; "order {i} paid");
        ns.push(t.elapsed().as_nanos() as u64);
    }
    ns
}

/// The floor under any `log` backend that keeps the message and key-values: a
/// logger that only formats the message and visits the key-values into buffers of
/// its own thread, reused, and then forgets them. No clock, no queue, no other
/// thread. What `caller_cost` measures above this is distlog's own.
struct Floor;

thread_local! {
    static FLOOR: std::cell::RefCell<(String, Vec<u8>)> =
        std::cell::RefCell::new((String::with_capacity(256), Vec::with_capacity(256)));
}

struct FloorValues<'a>(&'a mut Vec<u8>);

impl<'kvs> log::kv::VisitSource<'kvs> for FloorValues<'_> {
    fn visit_pair(
        &mut self,
        key: log::kv::Key<'kvs>,
        value: log::kv::Value<'kvs>,
    ) -> Result<(), log::kv::Error> {
        self.0.extend_from_slice(key.as_str().as_bytes());
        value.visit(self)
    }
}

impl<'v> log::kv::VisitValue<'v> for FloorValues<'_> {
    fn visit_any(&mut self, value: log::kv::Value<'_>) -> Result<(), log::kv::Error> {
        self.0.extend_from_slice(value.to_string().as_bytes());
        Ok(())
    }
    fn visit_u64(&mut self, v: u64) -> Result<(), log::kv::Error> {
        self.0.extend_from_slice(&v.to_le_bytes());
        Ok(())
    }
    fn visit_f64(&mut self, v: f64) -> Result<(), log::kv::Error> {
        self.0.extend_from_slice(&v.to_le_bytes());
        Ok(())
    }
    fn visit_str(&mut self, v: &str) -> Result<(), log::kv::Error> {
        self.0.extend_from_slice(v.as_bytes());
        Ok(())
    }
}

impl log::Log for Floor {
    fn enabled(&self, _: &log::Metadata<'_>) -> bool {
        true
    }
    fn log(&self, record: &log::Record<'_>) {
        let _ = FLOOR.try_with(|buffers| {
            let mut buffers = buffers.borrow_mut();
            let (message, values) = &mut *buffers;
            message.clear();
            values.clear();
            let _ = std::fmt::Write::write_fmt(message, *record.args());
            let _ = record.key_values().visit(&mut FloorValues(values));
            std::hint::black_box((message, values));
        });
    }
    fn flush(&self) {}
}

/// [`caller_cost`]'s calls into [`Floor`].
fn caller_floor(n: u64, paced: bool) {
    static LOGGER: Floor = Floor;
    if log::set_logger(&LOGGER).is_err() {
        eprintln!("bench_pipeline: a logger is already set");
        return;
    }
    log::set_max_level(log::LevelFilter::Info);
    percentiles(time_calls(n, paced));
}

/// The same call through `tracing` with tracing-appender's non-blocking writer and
/// tracing-subscriber's JSON formatter, writing to a file.
fn appender_cost(n: u64) {
    use tracing_subscriber::layer::SubscriberExt;
    let path = std::env::temp_dir().join(format!(
        "distlog-bench-appender-{}.json",
        std::process::id()
    ));
    let Ok(file) = std::fs::File::create(&path) else {
        return;
    };
    let (writer, guard) = tracing_appender::non_blocking(file);
    let subscriber = tracing_subscriber::registry()
        .with(tracing_subscriber::fmt::layer().json().with_writer(writer));
    let mut ns = Vec::with_capacity(n as usize);
    tracing::subscriber::with_default(subscriber, || {
        for i in 0..n {
            let t = Instant::now();
            tracing::info!(target: "bench", order_id = i, amount = 9.5, user = "alice", "order {i} paid");
            ns.push(t.elapsed().as_nanos() as u64);
        }
    });
    drop(guard);
    let _ = std::fs::remove_file(&path);
    percentiles(ns);
}

/// Peak RSS of `emit` logging 1,000,000 records with no collector, and the bound.
fn emit_peak_rss(emit: &Path) -> (u64, u64) {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or(5712);
    let capacity: u64 = 65_536;
    let child = Command::new(emit)
        .args([
            "--endpoint",
            &format!("tcp://127.0.0.1:{port}"),
            "--count",
            "1000000",
            "--queue",
            &capacity.to_string(),
        ])
        .stderr(Stdio::null())
        .spawn();
    let Ok(child) = child else {
        return (0, 0);
    };
    // wait4 reports this child's own peak, not the largest of all children so far.
    let mut status = 0;
    // SAFETY: a zeroed rusage is valid; wait4 writes into it and into status.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: valid pointers; the pid is our own child.
    unsafe { libc::wait4(child.id() as i32, &mut status, 0, &mut usage) };
    // What one queued record holds: the event itself plus its heap strings (target,
    // message "record <i> of 1000000").
    let record = (std::mem::size_of::<distlog::record::Event>() + 32 + 32) as u64;
    (
        usage.ru_maxrss as u64,
        (capacity * record + 16 * 1024 * 1024) / 1024,
    )
}

/// `log::info!` to `distlogd --output none --curve-secret`: the median of three runs
/// in records/s, or why there is none.
fn curve_e2e(dir: &Path, n: &str) -> Result<f64, String> {
    let server = distlog::curve::CurveKeyPair::generate()
        .map_err(|e| format!("cannot make a CURVE key pair: {e}"))?;
    let key_file = std::env::temp_dir().join(format!("bench_pipeline-{}.key", std::process::id()));
    std::fs::write(&key_file, format!("{}\n", server.secret.to_z85()))
        .map_err(|e| format!("cannot write {}: {e}", key_file.display()))?;
    let key_arg = key_file.display().to_string();
    let public = server.public.to_z85();
    let rate = median3(|| {
        let (daemon, endpoint) = distlogd(dir, &["--output", "none", "--curve-secret", &key_arg]);
        let rate = child_metric(
            &[
                "--section",
                "e2e_curve",
                "--endpoint",
                &endpoint,
                "--records",
                n,
                "--server-key",
                &public,
            ],
            "e2e_per_s",
        );
        stop(daemon);
        rate
    });
    let _ = std::fs::remove_file(&key_file);
    if rate.is_nan() {
        return Err("the CURVE producer failed".into());
    }
    Ok(rate)
}

// ---------------------------------------------------------------------------------
// Many producers (issue 15): 16 producer processes into one distlogd, and 1,000
// connected producers, idle and then all busy.

/// Producer processes of the many-producer rows.
const MANY: u64 = 16;

/// Records a second each of the 1,000 busy producers offers: 1,000 of them offer
/// 800,000 a second, about twice what distlogd takes on this machine.
const RATE: f64 = 800.0;

/// The window over which the busy producers' shares are counted.
const WINDOW: Duration = Duration::from_secs(6);

/// Issue 15's two many-producer measurements, side by side in one run.
fn producers(dir: &Path, records: u64, connections: usize, row: &mut impl FnMut(&str, String)) {
    // 1 and 16 producer processes, alternated so that both see the same load.
    let (mut one, mut many) = (Vec::new(), Vec::new());
    for _ in 0..3 {
        one.push(producer_run(dir, records, 1));
        many.push(producer_run(dir, records, MANY));
    }
    let show = |runs: &[Result<ProducerRun, String>], rate: fn(&ProducerRun) -> f64| {
        runs.iter()
            .map(|r| {
                r.as_ref()
                    .map_or("failed".into(), |r| format!("{:.0}", rate(r)))
            })
            .collect::<Vec<_>>()
            .join(" / ")
    };
    let med = |runs: &[Result<ProducerRun, String>], rate: fn(&ProducerRun) -> f64| {
        median(
            runs.iter()
                .map(|r| r.as_ref().map_or(f64::NAN, rate))
                .collect(),
        )
    };
    for r in one.iter().chain(&many) {
        if let Err(why) = r {
            eprintln!("bench_pipeline: producers: {why}");
        }
    }
    let total = (records / MANY) * MANY;
    for (p, runs) in [(1, &one), (MANY, &many)] {
        row(
            &format!(
                "{p} producer process(es), {total} records in all -> distlogd --output none: \
                 received/s, runs / median"
            ),
            format!(
                "{} / {:.0}",
                show(runs, |r| r.received_rate),
                med(runs, |r| r.received_rate)
            ),
        );
        row(
            "  the same, first start to last producer finished (records/s)",
            show(runs, |r| r.sent_rate),
        );
        row(
            "  distlogd received / expected (incl. one warm-up each), accepted, rejected",
            runs.iter()
                .map(|r| {
                    r.as_ref().map_or("failed".into(), |r| {
                        format!(
                            "{}/{} {} {}",
                            r.received, r.expected, r.accepted, r.rejected
                        )
                    })
                })
                .collect::<Vec<_>>()
                .join(", "),
        );
        row(
            "  latest producer past the common start (ms)",
            show(runs, |r| r.late_ms),
        );
        row(
            "  CPU per record, µs: all producers (incl. start-up) / distlogd",
            runs.iter()
                .map(|r| {
                    r.as_ref().map_or("failed".into(), |r| {
                        format!("{:.2} / {:.2}", r.producer_us, r.distlogd_us)
                    })
                })
                .collect::<Vec<_>>()
                .join(", "),
        );
    }
    let ratios: Vec<f64> = one
        .iter()
        .zip(&many)
        .map(|(a, b)| match (a, b) {
            (Ok(a), Ok(b)) => b.received_rate / a.received_rate,
            _ => f64::NAN,
        })
        .collect();
    row(
        &format!("  {MANY} processes / 1, per run / median (target >= 0.9, every record accepted)"),
        format!(
            "{} / {:.2}",
            ratios
                .iter()
                .map(|r| format!("{r:.2}"))
                .collect::<Vec<_>>()
                .join(" / "),
            median(ratios.clone())
        ),
    );
    let all_accepted = one.iter().chain(&many).all(|r| {
        r.as_ref()
            .is_ok_and(|r| r.received == r.expected && r.accepted == r.expected && r.rejected == 0)
    });
    row(
        "  every record received and accepted, every run",
        (if all_accepted { "yes" } else { "NO" }).into(),
    );

    connections_rows(dir, connections, row);
}

/// The rows of [`idle_and_busy`], or why there are none.
fn connections_rows(dir: &Path, connections: usize, row: &mut impl FnMut(&str, String)) {
    // Fairness depends on how many records a producer hands over per send: 64, one
    // run of distlogd's fair queue, and 16.
    for batch in [64, 16] {
        match idle_and_busy(dir, connections, batch) {
            Ok(rows) => {
                for (name, value) in rows {
                    row(&name, value);
                }
            }
            Err(why) => row(
                &format!("{connections} connected producers, {batch} records per send"),
                format!("failed: {why}"),
            ),
        }
    }
}

struct ProducerRun {
    /// Records of the timed loops over first start to distlogd's count reaching them.
    received_rate: f64,
    /// The same to the last producer's `shutdown` returning.
    sent_rate: f64,
    received: u64,
    accepted: u64,
    rejected: u64,
    expected: u64,
    late_ms: f64,
    /// CPU per record of all producer processes (start-up and warm-up included).
    producer_us: f64,
    /// distlogd's CPU per record, from its start to holding every record.
    distlogd_us: f64,
}

/// `p` producer processes (the `e2e` section, one `log::info!` thread each) sending
/// `total / p` records each, all starting at one instant, into one `distlogd --output
/// none`. The end is when distlogd's own count (from `--metrics-bind`, polled every
/// 5 ms) holds every record.
fn producer_run(dir: &Path, total: u64, p: u64) -> Result<ProducerRun, String> {
    let each = total / p;
    let metrics_port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| format!("no free port: {e}"))?;
    let metrics_addr = format!("127.0.0.1:{metrics_port}");
    let (daemon, endpoint) = distlogd(dir, &["--output", "none", "--metrics-bind", &metrics_addr]);
    // Time to start p processes and connect them on a loaded machine.
    let start_at = unix_ns() + 500_000_000 + 150_000_000 * p as u128;
    let exe = std::env::current_exe().map_err(|e| format!("current_exe: {e}"))?;
    let daemon_cpu0 = cpu_time(daemon.id());
    let producers_cpu0 = children_cpu();
    let mut children = Vec::new();
    for _ in 0..p {
        let child = Command::new(&exe)
            .args(["--section", "e2e", "--endpoint", &endpoint])
            .args(["--records", &each.to_string()])
            .args(["--start-at", &start_at.to_string()])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn();
        match child {
            Ok(c) => children.push(c),
            Err(e) => {
                stop(daemon);
                return Err(format!("cannot start a producer: {e}"));
            }
        }
    }
    // Every producer's warm-up record and its timed ones.
    let expected = p * (each + 1);
    let deadline = Instant::now() + Duration::from_secs(300);
    let (mut all_in, mut polled_error, mut gone_at) = (None, None, None);
    while Instant::now() < deadline {
        match scrape_received(&metrics_addr) {
            Ok(n) if n >= expected => {
                all_in = Some(unix_ns());
                break;
            }
            Ok(_) => {}
            Err(e) => polled_error = Some(e),
        }
        // Every producer gone and the count short for 20 s more: it stays short.
        let gone = children
            .iter_mut()
            .all(|c| matches!(c.try_wait(), Ok(Some(_))));
        match gone_at {
            None if gone => gone_at = Some(Instant::now()),
            Some(t) if t.elapsed() > Duration::from_secs(20) => break,
            _ => {}
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let daemon_cpu = daemon_cpu0
        .zip(cpu_time(daemon.id()))
        .map_or(Duration::ZERO, |(a, b)| b - a);
    let outputs: Vec<_> = children.into_iter().map(|c| c.wait_with_output()).collect();
    let producers_cpu = children_cpu() - producers_cpu0;
    let stats = stop_stats(daemon);
    let (mut first_start, mut last_end, mut late_ms) = (u128::MAX, 0u128, 0f64);
    for o in outputs {
        let o = o.map_err(|e| format!("a producer: {e}"))?;
        let text = String::from_utf8_lossy(&o.stdout);
        let field = |name: &str| {
            text.lines().find_map(|l| {
                l.strip_prefix(name)
                    .and_then(|v| v.trim().parse::<u128>().ok())
            })
        };
        let (Some(s), Some(e)) = (field("start_unix_ns"), field("end_unix_ns")) else {
            return Err(format!(
                "a producer printed no times (exit {:?}): {}",
                o.status.code(),
                String::from_utf8_lossy(&o.stderr).trim()
            ));
        };
        first_start = first_start.min(s);
        last_end = last_end.max(e);
        late_ms = late_ms.max(metric(&text, "late_ms").unwrap_or(0.0));
    }
    let received = stat(&stats, "received").unwrap_or(0);
    let rate = |end: u128| (p * each) as f64 / ((end.saturating_sub(first_start)) as f64 / 1e9);
    let Some(all_in) = all_in else {
        return Err(format!(
            "distlogd never counted {expected} records (final stats: {stats:?}; last scrape error: {polled_error:?})"
        ));
    };
    Ok(ProducerRun {
        received_rate: rate(all_in),
        sent_rate: rate(last_end),
        received,
        accepted: stat(&stats, "accepted").unwrap_or(0),
        rejected: stat(&stats, "rejected").unwrap_or(0),
        expected,
        late_ms,
        producer_us: producers_cpu.as_secs_f64() * 1e6 / (p * each) as f64,
        distlogd_us: daemon_cpu.as_secs_f64() * 1e6 / (p * each) as f64,
    })
}

/// `distlogd_records_received_total` from distlogd's Prometheus endpoint.
fn scrape_received(addr: &str) -> Result<u64, String> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).map_err(|e| format!("connect {addr}: {e}"))?;
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    s.write_all(b"GET /metrics HTTP/1.0\r\nHost: bench\r\n\r\n")
        .map_err(|e| format!("write: {e}"))?;
    let mut body = String::new();
    s.read_to_string(&mut body)
        .map_err(|e| format!("read: {e}"))?;
    body.lines()
        .find_map(|l| {
            l.strip_prefix("distlogd_records_received_total ")
                .and_then(|v| v.trim().parse().ok())
        })
        .ok_or_else(|| "no distlogd_records_received_total in /metrics".to_string())
}

fn unix_ns() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos())
}

/// Waits until `--start-at NS`, if given; how late this process got there (ms), if so.
fn start_barrier() -> Option<f64> {
    let args: Vec<String> = std::env::args().collect();
    let at: u128 = args
        .iter()
        .position(|a| a == "--start-at")
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())?;
    let now = unix_ns();
    if now >= at {
        return Some((now - at) as f64 / 1e6);
    }
    std::thread::sleep(Duration::from_nanos((at - now) as u64));
    Some(0.0)
}

/// The first key of producer `k`'s records, as it starts each line of distlogd's
/// `--file`: `{"topic": "TLJ", "record": {"producer": "0042", ...`.
const LINE_PREFIX: &[u8] = br#"{"topic": "TLJ", "record": {"producer": ""#;

/// Producer `k`'s body: a bench record with `"producer": "kkkk"` as its first key.
fn producer_body(k: usize) -> Vec<u8> {
    let bench = bench_body(100_000 + k as u64);
    let mut body = format!(r#"{{"producer": "{k:04}", "#).into_bytes();
    body.extend_from_slice(&bench[1..]);
    body
}

/// distlogd's resident set (VmRSS), KiB.
fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
}

/// User plus system CPU time of a process so far, from /proc/PID/stat.
fn cpu_time(pid: u32) -> Option<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // After "pid (comm) ": state is field 3, utime 14, stime 15.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    // SAFETY: sysconf has no memory-safety preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
    Some(Duration::from_secs_f64(ticks as f64 / hz as f64))
}

/// Open sockets of a process (its /proc/PID/fd entries that are sockets).
fn socket_fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |d| {
        d.filter_map(Result::ok)
            .filter(|e| {
                std::fs::read_link(e.path())
                    .is_ok_and(|l| l.to_string_lossy().starts_with("socket:"))
            })
            .count()
    })
}

/// A process's soft limit on open files, from /proc/PID/limits.
fn nofile_limit(pid: u32) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/limits"))
        .ok()
        .and_then(|l| {
            l.lines()
                .find(|l| l.starts_with("Max open files"))
                .and_then(|l| l.split_whitespace().nth(3).map(str::to_string))
        })
        .unwrap_or_else(|| "?".into())
}

/// The kernel's TCP buffer memory in use, all sockets (/proc/net/sockstat), MiB.
fn tcp_mem_mib() -> Option<f64> {
    let s = std::fs::read_to_string("/proc/net/sockstat").ok()?;
    let line = s.lines().find(|l| l.starts_with("TCP:"))?;
    let mut it = line.split_whitespace();
    it.position(|w| w == "mem")?;
    let pages: f64 = it.next()?.parse().ok()?;
    Some(pages * 4096.0 / (1024.0 * 1024.0))
}

/// A process's CPU time over `over` of wall time, percent of one core.
fn cpu_percent(pid: u32, over: Duration) -> Option<f64> {
    let before = cpu_time(pid)?;
    let t = Instant::now();
    std::thread::sleep(over);
    let after = cpu_time(pid)?;
    Some((after - before).as_secs_f64() * 100.0 / t.elapsed().as_secs_f64())
}

/// `n` producers connected to one `distlogd --output none --file FIFO`, from one helper
/// process (section `connections`: one zeromq `PushSocket` each, on one runtime
/// thread): first idle (distlogd's RSS and CPU), then all sending as fast as they can,
/// each its own tagged records; a reader of the FIFO in this process counts, per
/// producer, the lines distlogd writes during a fixed window.
fn idle_and_busy(dir: &Path, n: usize, batch: usize) -> Result<Vec<(String, String)>, String> {
    use std::io::Write;
    use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
    use std::sync::Arc;
    let mut rows = Vec::new();
    let fifo = std::env::temp_dir().join(format!("distlog-bench-{}.fifo", std::process::id()));
    let _ = std::fs::remove_file(&fifo);
    let c_path = std::ffi::CString::new(fifo.to_string_lossy().as_bytes())
        .map_err(|e| format!("fifo path: {e}"))?;
    // SAFETY: a valid NUL-terminated path.
    if unsafe { libc::mkfifo(c_path.as_ptr(), 0o600) } != 0 {
        return Err(format!(
            "mkfifo {}: {}",
            fifo.display(),
            std::io::Error::last_os_error()
        ));
    }
    // 0: before the window, 1: counting, 2: after.
    let window = Arc::new(AtomicU8::new(0));
    let counts: Arc<Vec<AtomicU64>> = Arc::new((0..n).map(|_| AtomicU64::new(0)).collect());
    let (w, c, path) = (window.clone(), counts.clone(), fifo.clone());
    // Lines in all, and lines in the window that name no producer.
    let reader = std::thread::spawn(move || -> Result<(u64, u64), String> {
        let file = std::fs::File::open(&path).map_err(|e| format!("open fifo: {e}"))?;
        let mut r = BufReader::with_capacity(1 << 20, file);
        let (mut lines, mut strays) = (0u64, 0u64);
        let mut line = Vec::with_capacity(1024);
        loop {
            line.clear();
            match r.read_until(b'\n', &mut line) {
                Ok(0) => return Ok((lines, strays)),
                Ok(_) => {}
                Err(e) => return Err(format!("read fifo: {e}")),
            }
            lines += 1;
            if w.load(Ordering::Relaxed) != 1 {
                continue;
            }
            let k = line
                .strip_prefix(LINE_PREFIX)
                .and_then(|rest| rest.get(..4))
                .and_then(|d| std::str::from_utf8(d).ok())
                .and_then(|d| d.parse::<usize>().ok());
            match k.and_then(|k| c.get(k)) {
                Some(count) => {
                    count.fetch_add(1, Ordering::Relaxed);
                }
                None => strays += 1,
            }
        }
    });
    let fifo_arg = fifo.to_string_lossy().into_owned();
    let metrics_addr = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.to_string())
        .map_err(|e| format!("no free port: {e}"))?;
    let (daemon, endpoint) = distlogd(
        dir,
        &[
            "--output",
            "none",
            "--file",
            &fifo_arg,
            "--metrics-bind",
            &metrics_addr,
        ],
    );
    let pid = daemon.id();
    let result = (|| {
        let rss0 = rss_kib(pid).ok_or("no VmRSS for distlogd")?;
        let sockets0 = socket_fds(pid);
        rows.push((
            "distlogd's soft limit on open files (inherited)".to_string(),
            nofile_limit(pid),
        ));
        let exe = std::env::current_exe().map_err(|e| format!("current_exe: {e}"))?;
        let mut helper = Command::new(exe)
            .args(["--section", "connections", "--endpoint", &endpoint])
            .args(["--records", &n.to_string(), "--batch", &batch.to_string()])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| format!("cannot start the connections helper: {e}"))?;
        let helper_pid = helper.id();
        let mut to_helper = helper.stdin.take().ok_or("no helper stdin")?;
        let mut from_helper = BufReader::new(helper.stdout.take().ok_or("no helper stdout")?);
        let mut expect = |what: &str| -> Result<String, String> {
            let mut line = String::new();
            loop {
                line.clear();
                match from_helper.read_line(&mut line) {
                    Ok(0) => return Err(format!("the helper ended before {what:?}")),
                    Ok(_) if line.starts_with(what) => return Ok(line.trim().to_string()),
                    Ok(_) => eprintln!("connections helper: {}", line.trim()),
                    Err(e) => return Err(format!("reading the helper: {e}")),
                }
            }
        };
        let connect_start = Instant::now();
        let connected = expect("connected");
        let connect_time = connect_start.elapsed();
        let connected = match connected {
            Ok(c) => c,
            Err(e) => {
                let _ = helper.kill();
                let _ = helper.wait();
                return Err(format!("{e} (distlogd holds {} sockets)", socket_fds(pid)));
            }
        };
        // distlogd has accepted each connection once it holds its socket.
        let deadline = Instant::now() + Duration::from_secs(30);
        // Its listening socket and one per producer.
        while socket_fds(pid) < n + 1 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        let sockets = socket_fds(pid);
        rows.push((
            format!("{n} producers (one helper process, one PushSocket each): connected in"),
            format!(
                "{:.2} s; helper: {connected:?}; distlogd sockets {sockets0} -> {sockets}",
                connect_time.as_secs_f64()
            ),
        ));
        std::thread::sleep(Duration::from_secs(1));
        let idle_cpu = cpu_percent(pid, Duration::from_secs(3)).ok_or("no /proc stat")?;
        let helper_idle_cpu = cpu_percent(helper_pid, Duration::from_secs(1)).unwrap_or(f64::NAN);
        let rss = rss_kib(pid).ok_or("no VmRSS for distlogd")?;
        rows.push((
            format!("  distlogd RSS with {n} idle producers, MiB (target < 64)"),
            format!(
                "{:.1} ({:.1} before they connected: {:.1} KiB per connection)",
                rss as f64 / 1024.0,
                rss0 as f64 / 1024.0,
                (rss as f64 - rss0 as f64) / n as f64
            ),
        ));
        rows.push((
            "  distlogd CPU while they idle, % of a core over 3 s (target: idle)".to_string(),
            format!("{idle_cpu:.2} (the helper: {helper_idle_cpu:.2})"),
        ));

        // All busy.
        let netstat0 = tcp_counters();
        writeln!(to_helper, "busy").map_err(|e| format!("to the helper: {e}"))?;
        let busy = expect("busy")?;
        std::thread::sleep(Duration::from_secs(1));
        let cpu_before = (cpu_time(pid), cpu_time(helper_pid));
        let t = Instant::now();
        window.store(1, Ordering::Relaxed);
        std::thread::sleep(WINDOW);
        window.store(2, Ordering::Relaxed);
        let span = t.elapsed();
        let percent = |a: Option<Duration>, b: Option<Duration>| {
            a.zip(b).map_or(f64::NAN, |(a, b)| {
                (b - a).as_secs_f64() * 100.0 / span.as_secs_f64()
            })
        };
        let busy_cpu = percent(cpu_before.0, cpu_time(pid));
        let helper_cpu = percent(cpu_before.1, cpu_time(helper_pid));
        let busy_rss = rss_kib(pid).unwrap_or(0);
        let tcp_mem = tcp_mem_mib().unwrap_or(f64::NAN);
        writeln!(to_helper, "stop").map_err(|e| format!("to the helper: {e}"))?;
        let sent = expect("sent");
        // Every record the helper handed to zeromq should reach distlogd.
        let handed: Option<u64> = sent
            .as_ref()
            .ok()
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok());
        let drain = Instant::now();
        let mut got = scrape_received(&metrics_addr);
        while let (Some(h), Ok(g)) = (handed, &got) {
            if *g >= h || drain.elapsed() > Duration::from_secs(60) {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
            got = scrape_received(&metrics_addr);
        }
        let drained = drain.elapsed();
        let netstat = tcp_counters();
        writeln!(to_helper, "exit").map_err(|e| format!("to the helper: {e}"))?;
        let _ = helper.wait();
        rows.push((
            "  after the window: every record handed to zeromq received (received / handed, drain time)".to_string(),
            format!(
                "{} ({got:?} / {handed:?}, {:.1} s)",
                if handed.is_some() && got.as_ref().ok() == handed.as_ref() { "yes" } else { "NO" },
                drained.as_secs_f64()
            ),
        ));
        rows.push((
            "  kernel TCP counters over the busy phase (whole machine)".to_string(),
            counter_deltas(&netstat0, &netstat),
        ));
        let per: Vec<u64> = counts.iter().map(|c| c.load(Ordering::Relaxed)).collect();
        if let Some(path) = std::env::var_os("DISTLOG_BENCH_SHARES") {
            let text: String = per
                .iter()
                .enumerate()
                .map(|(k, c)| format!("{k} {c}\n"))
                .collect();
            if let Err(e) = std::fs::write(&path, text) {
                eprintln!("bench_pipeline: DISTLOG_BENCH_SHARES: {e}");
            }
        }
        let total: u64 = per.iter().sum();
        let mean = total as f64 / n as f64;
        let (min, max) = (
            per.iter().copied().min().unwrap_or(0),
            per.iter().copied().max().unwrap_or(0),
        );
        let outside = per
            .iter()
            .filter(|&&c| (c as f64 - mean).abs() > 0.2 * mean)
            .count();
        let zero = per.iter().filter(|&&c| c == 0).count();
        let mut sorted = per.clone();
        sorted.sort_unstable();
        let pct = |q: f64| sorted[((n as f64 * q) as usize).min(n - 1)] as f64 / mean;
        rows.push((
            format!(
                "  all {n} busy, {batch} records per send, each offering {RATE:.0}/s: records distlogd wrote in a {:.1} s window",
                span.as_secs_f64()
            ),
            format!(
                "{total} ({:.0}/s); CPU: distlogd {busy_cpu:.0} %, helper {helper_cpu:.0} %; distlogd RSS {:.1} MiB; kernel TCP buffers {tcp_mem:.0} MiB; helper {busy:?}, {sent:?}",
                total as f64 / span.as_secs_f64(),
                busy_rss as f64 / 1024.0
            ),
        ));
        rows.push((
            "  each producer's share / the mean: min / p10 / median / p90 / max (target 0.8 to 1.2)"
                .to_string(),
            format!(
                "{:.2} / {:.2} / {:.2} / {:.2} / {:.2} (mean {mean:.0} records)",
                min as f64 / mean,
                pct(0.1),
                pct(0.5),
                pct(0.9),
                max as f64 / mean
            ),
        ));
        rows.push((
            "  producers outside +-20 % of the mean / with none in the window".to_string(),
            format!("{outside} / {zero} of {n}"),
        ));
        Ok::<(), String>(())
    })();
    let stats = stop_stats(daemon);
    // If distlogd never opened the FIFO, the reader still waits in open: release it.
    if !reader.is_finished() {
        let _ = std::fs::OpenOptions::new().write(true).open(&fifo);
    }
    let read = reader.join();
    let _ = std::fs::remove_file(&fifo);
    result?;
    let (lines, strays) = match read {
        Ok(Ok(r)) => r,
        Ok(Err(e)) => return Err(e),
        Err(_) => return Err("the FIFO reader panicked".into()),
    };
    rows.push((
        "  distlogd's final stats; lines read from its --file; window lines naming no producer"
            .to_string(),
        format!("{stats}; {lines}; {strays}"),
    ));
    Ok(rows)
}

/// The helper of [`idle_and_busy`]: `n` PushSockets connected to `endpoint`, then, on
/// the command `busy` (a line on stdin), each sending batches of its own tagged
/// records as fast as it can, one task per socket, until `stop`.
fn many_connections(endpoint: &str, n: usize) {
    use std::io::Write;
    use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
    use std::sync::Arc;
    use zeromq::Socket;
    // Each connection is a descriptor here and one in distlogd.
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit read and write the struct they are given.
    unsafe {
        libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit);
        if limit.rlim_cur < (n + 64) as libc::rlim_t {
            limit.rlim_cur = limit.rlim_max;
            if libc::setrlimit(libc::RLIMIT_NOFILE, &limit) != 0 {
                eprintln!(
                    "connections: setrlimit: {}",
                    std::io::Error::last_os_error()
                );
            }
        }
    }
    let say = |line: String| {
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{line}");
        let _ = out.flush();
    };
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    std::thread::spawn(move || {
        for line in std::io::stdin().lock().lines().map_while(Result::ok) {
            if tx.send(line.trim().to_string()).is_err() {
                break;
            }
        }
    });
    let wait_for = |what: &'static str| {
        let rx = &rx;
        async move {
            loop {
                match rx.try_recv() {
                    Ok(l) if l == what => return true,
                    Ok(_) => {}
                    Err(std::sync::mpsc::TryRecvError::Empty) => idle_sleep().await,
                    Err(std::sync::mpsc::TryRecvError::Disconnected) => return false,
                }
            }
        }
    };
    // Records per send (`--batch`): distlog's sender frames up to 512, and distlogd's
    // fair queue reads runs of up to 64 from one peer.
    let args: Vec<String> = std::env::args().collect();
    let batch: usize = args
        .iter()
        .position(|a| a == "--batch")
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(64);
    // Records a second each producer offers.
    let rate: f64 = args
        .iter()
        .position(|a| a == "--rate")
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(RATE);
    block_on(async {
        let mut sockets = Vec::with_capacity(n);
        for i in 0..n {
            let mut push = zeromq::PushSocket::new();
            if let Err(e) = push.connect(endpoint).await {
                say(format!("connect_failed at {i}: {e}"));
                return;
            }
            sockets.push(push);
        }
        say(format!("connected {n} nofile {}", limit.rlim_cur));
        if !wait_for("busy").await {
            return;
        }
        let stop = Arc::new(AtomicBool::new(false));
        let started = Arc::new(AtomicUsize::new(0));
        let done = Arc::new(AtomicUsize::new(0));
        let failed = Arc::new(AtomicUsize::new(0));
        let sent: Arc<Vec<AtomicU64>> = Arc::new((0..n).map(|_| AtomicU64::new(0)).collect());
        let parked = Arc::new(std::sync::Mutex::new(Vec::with_capacity(n)));
        for (k, mut push) in sockets.into_iter().enumerate() {
            let body = producer_body(k);
            let mut frames = bytes::BytesMut::with_capacity(batch * (body.len() + 16));
            for _ in 0..batch {
                zeromq::encode_frames(&[b"TLJ".as_slice(), &body], &mut frames);
            }
            let frames = frames.freeze();
            let (stop, started, done, failed, sent, parked) = (
                stop.clone(),
                started.clone(),
                done.clone(),
                failed.clone(),
                sent.clone(),
                parked.clone(),
            );
            spawn(async move {
                let mut first = true;
                let t0 = Instant::now();
                let mut mine = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    // Offered, not as fast as zeromq queues: its per-peer queue holds
                    // 100,000 sends whatever their size, so unpaced the backlog is
                    // unbounded. Paced at `rate`, far above each one's share of what
                    // distlogd takes, every producer always has records waiting.
                    let due = t0 + Duration::from_secs_f64(mine as f64 / rate);
                    let now = Instant::now();
                    if due > now {
                        sleep_for(due - now).await;
                    }
                    mine += batch as u64;
                    if push.send_framed(frames.clone()).await.is_err() {
                        failed.fetch_add(1, Ordering::Relaxed);
                        break;
                    }
                    sent[k].fetch_add(batch as u64, Ordering::Relaxed);
                    if first {
                        started.fetch_add(1, Ordering::Relaxed);
                        first = false;
                    }
                    yield_now().await;
                }
                // Kept open until the parent says "exit": a dropped PushSocket does not
                // linger, and what it still queues would be lost.
                parked.lock().unwrap_or_else(|e| e.into_inner()).push(push);
                done.fetch_add(1, Ordering::Relaxed);
            });
        }
        let deadline = Instant::now() + Duration::from_secs(60);
        while started.load(Ordering::Relaxed) + failed.load(Ordering::Relaxed) < n
            && Instant::now() < deadline
        {
            async_io_sleep().await;
        }
        say(format!(
            "busy: {} of {n} sending, {} failed",
            started.load(Ordering::Relaxed),
            failed.load(Ordering::Relaxed)
        ));
        wait_for("stop").await;
        stop.store(true, Ordering::Relaxed);
        let deadline = Instant::now() + Duration::from_secs(30);
        while done.load(Ordering::Relaxed) < n && Instant::now() < deadline {
            async_io_sleep().await;
        }
        let per: Vec<u64> = sent.iter().map(|s| s.load(Ordering::Relaxed)).collect();
        say(format!(
            "sent {} records, per producer {} to {}, {} failed, {} of {n} stopped",
            per.iter().sum::<u64>(),
            per.iter().min().unwrap_or(&0),
            per.iter().max().unwrap_or(&0),
            failed.load(Ordering::Relaxed),
            done.load(Ordering::Relaxed)
        ));
        wait_for("exit").await;
        drop(parked);
    });
}

#[cfg(feature = "async-std")]
fn spawn<F: std::future::Future<Output = ()> + Send + 'static>(f: F) {
    async_std::task::spawn(f);
}

#[cfg(all(feature = "tokio", not(feature = "async-std")))]
fn spawn<F: std::future::Future<Output = ()> + Send + 'static>(f: F) {
    tokio::spawn(f);
}

#[cfg(feature = "async-std")]
async fn yield_now() {
    async_std::task::yield_now().await;
}

#[cfg(all(feature = "tokio", not(feature = "async-std")))]
async fn yield_now() {
    tokio::task::yield_now().await;
}

/// A pause that keeps a waiting helper from taking measurable CPU.
async fn idle_sleep() {
    #[cfg(feature = "async-std")]
    async_std::task::sleep(Duration::from_millis(50)).await;
    #[cfg(all(feature = "tokio", not(feature = "async-std")))]
    tokio::time::sleep(Duration::from_millis(50)).await;
}

/// The kernel's TCP counters that tell of memory pressure and aborted connections
/// (/proc/net/netstat, whole machine).
fn tcp_counters() -> Vec<(String, u64)> {
    const WANTED: [&str; 6] = [
        "TCPMemoryPressures",
        "PruneCalled",
        "TCPRcvQDrop",
        "TCPOFODrop",
        "TCPAbortOnClose",
        "TCPAbortOnData",
    ];
    let text = std::fs::read_to_string("/proc/net/netstat").unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    let mut out = Vec::new();
    for pair in lines.chunks(2) {
        let [names, values] = pair else { continue };
        for (k, v) in names.split_whitespace().zip(values.split_whitespace()) {
            if WANTED.contains(&k) {
                out.push((k.to_string(), v.parse().unwrap_or(0)));
            }
        }
    }
    out
}

fn counter_deltas(before: &[(String, u64)], after: &[(String, u64)]) -> String {
    after
        .iter()
        .map(|(k, v)| {
            let b = before.iter().find(|(n, _)| n == k).map_or(0, |(_, b)| *b);
            format!("{k} +{}", v.saturating_sub(b))
        })
        .collect::<Vec<_>>()
        .join(", ")
}

async fn sleep_for(d: Duration) {
    #[cfg(feature = "async-std")]
    async_std::task::sleep(d).await;
    #[cfg(all(feature = "tokio", not(feature = "async-std")))]
    tokio::time::sleep(d).await;
}
