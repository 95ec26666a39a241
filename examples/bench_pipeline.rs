//! Issue 6's ratio table, measured side by side in one run on this machine.
//!
//! ```text
//! cargo build --release --bins --examples
//! target/release/examples/bench_pipeline            # all sections
//! DISTLOG_PYTHON=.venv/bin/python target/release/examples/bench_pipeline --records 300000
//! target/release/examples/bench_pipeline --only jetstream   # the JetStream rows alone
//! ```
//!
//! Each section runs in a child process of its own (a process has one global logger),
//! against a real `distlogd` started from `target/release/`. Rates are records per
//! second from one application thread, the median of three runs; caller cost is the
//! time one `log::info!` with three key-values takes on the calling thread.
//!
//! Built with `--no-default-features --features async-std,tracing` (and distlogd with
//! it), the same table measures the async-std runtime.

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
        format!(
            "{:.0} / {:.0} / {:.0}",
            metric(&caller_acked, "median_ns").unwrap_or(f64::NAN),
            metric(&caller_acked, "p99_ns").unwrap_or(f64::NAN),
            metric(&caller_acked, "p999_ns").unwrap_or(f64::NAN)
        ),
    );
    row(
        "same call paced at 100,000 a second: median / p99 / p99.9 ns",
        format!(
            "{:.0} / {:.0} / {:.0}",
            metric(&paced, "median_ns").unwrap_or(f64::NAN),
            metric(&paced, "p99_ns").unwrap_or(f64::NAN),
            metric(&paced, "p999_ns").unwrap_or(f64::NAN)
        ),
    );
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
    let mut next_stream = || {
        streams += 1;
        (format!("BENCH{streams}"), format!("bench{streams}"))
    };
    let alone = median3(|| {
        let (stream, _) = next_stream();
        let out = Command::new(&tool)
            .args(["publish", &url, &stream, &n, &body().len().to_string()])
            .output();
        out.ok()
            .and_then(|o| metric(&String::from_utf8_lossy(&o.stdout), "publish_per_s"))
            .unwrap_or(f64::NAN)
    });
    row(
        &format!(
            "async-nats alone -> JetStream (file), {}-byte bodies (records/s)",
            body().len()
        ),
        format!("{alone:.0}"),
    );
    let mut received = Vec::new();
    let via = median3(|| {
        let (stream, prefix) = next_stream();
        let nats = [
            "--output",
            "none",
            "--nats",
            &url,
            "--nats-stream",
            &stream,
            "--nats-subject-prefix",
            &prefix,
        ];
        let (daemon, endpoint) = distlogd(dir, &nats);
        let rate = child_metric(
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
        );
        received.push(stop(daemon));
        rate
    });
    row(
        "distlogd --nats, fed pre-encoded records (records/s)",
        format!("{via:.0}"),
    );
    row("  distlogd received, each run", format!("{received:?}"));
    row(
        "  ratio to async-nats alone (target >= 0.8)",
        format!("{:.2}", via / alone),
    );
    let mut received = Vec::new();
    let acked = median3(|| {
        let (stream, prefix) = next_stream();
        let nats = [
            "--output",
            "none",
            "--nats",
            &url,
            "--nats-stream",
            &stream,
            "--nats-subject-prefix",
            &prefix,
        ];
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
fn stop(mut child: Child) -> u64 {
    // SAFETY: kill with a pid we own has no memory-safety preconditions.
    unsafe {
        libc::kill(child.id() as i32, libc::SIGTERM);
    }
    let mut received = 0;
    if let Some(err) = child.stderr.take() {
        for line in BufReader::new(err).lines().map_while(Result::ok) {
            if let Some(rest) = line.split("received=").nth(1) {
                received = rest
                    .split_whitespace()
                    .next()
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(0);
            }
        }
    }
    let _ = child.wait();
    received
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
        "appender" => appender_cost(records),
        other => eprintln!("unknown section {other}"),
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
    let start = Instant::now();
    for i in 0..n {
        log::info!(target: "bench", order_id = i, amount = 9.5, user = "alice"; "order {i} paid");
    }
    let report = guard.shutdown();
    let elapsed = start.elapsed();
    println!("e2e_per_s {:.0}", n as f64 / elapsed.as_secs_f64());
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
    drop(guard);
    percentiles(ns);
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
