//! The smoke tool: logs N INFO records through `log` and reports what was delivered.
//!
//! ```text
//! cargo run --release --example emit -- --endpoint tcp://127.0.0.1:5010 \
//!     --encoding json --system T --count 1000
//! ```
//!
//! `--interval-ms MS` sleeps MS between records (a slow stream, for tests and demos);
//! `--heartbeat-ms MS` turns on ZMTP heartbeats on the links (a PING every MS, the
//! connection dropped and remade if nothing comes back within 3 × MS).
//! `--curve-server-key Z85 --curve-secret FILE` sends over CURVE to a collector with
//! that public key (`distlogd --curve-secret`), as the client whose secret key file
//! (from `distlog keygen`) is given; both or neither.
//!
//! `--endpoint` is repeatable: records go round-robin over the endpoints that are up.
//! `--acked` turns on acknowledged delivery (endpoints are `distlogd --ack-bind`
//! inputs): records fail over between endpoints, and emit exits 0 only when all N
//! were acknowledged; `--ack-timeout-ms MS` sets how long a link may leave records
//! unacknowledged before they go elsewhere (default 2000).
//!
//! Each record has target `emit` and message `record <i> of <N>`. With no collector
//! the queue fills, one log call waits up to 2 s, and shutdown gives up after the
//! flush timeout (5 s), so the tool always exits well within 15 s.

use distlog::curve::{self, CurvePublicKey, CurveSecretKey};
use distlog::handler::Overflow;
use distlog::topic::{Encoding, System};
use std::process::ExitCode;
use std::time::Duration;

struct Args {
    endpoints: Vec<String>,
    acked: bool,
    ack_timeout: Option<Duration>,
    encoding: Encoding,
    system: System,
    count: u64,
    queue: usize,
    interval: Option<Duration>,
    heartbeat: Option<Duration>,
    curve_server: Option<CurvePublicKey>,
    curve_secret: Option<CurveSecretKey>,
}

fn millis(flag: &str, v: String) -> Result<Duration, String> {
    v.parse()
        .map(Duration::from_millis)
        .map_err(|_| format!("{flag}: {v:?} is not a whole number of milliseconds"))
}

fn parse() -> Result<Args, String> {
    let mut args = Args {
        endpoints: Vec::new(),
        acked: false,
        ack_timeout: None,
        encoding: Encoding::Json,
        system: System::Production,
        count: 10,
        queue: 65_536,
        interval: None,
        heartbeat: None,
        curve_server: None,
        curve_secret: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or_else(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--endpoint" => args.endpoints.push(value()?),
            "--acked" => args.acked = true,
            "--ack-timeout-ms" => args.ack_timeout = Some(millis(&flag, value()?)?),
            "--encoding" => args.encoding = value()?.parse().map_err(|e| format!("--encoding: {e}"))?,
            "--system" => args.system = value()?.parse().map_err(|e| format!("--system: {e}"))?,
            "--count" => {
                let v = value()?;
                args.count = v.parse().map_err(|_| format!("--count: {v:?} is not a whole number"))?;
            }
            "--queue" => {
                let v = value()?;
                args.queue = v.parse().map_err(|_| format!("--queue: {v:?} is not a whole number"))?;
            }
            "--interval-ms" => args.interval = Some(millis(&flag, value()?)?),
            "--heartbeat-ms" => args.heartbeat = Some(millis(&flag, value()?)?),
            "--curve-server-key" => {
                let v = value()?;
                let key = CurvePublicKey::from_z85(v.trim())
                    .map_err(|e| format!("--curve-server-key: {v:?} is not a CURVE public key: {e}"))?;
                args.curve_server = Some(key);
            }
            "--curve-secret" => {
                let path = value()?;
                let key = curve::read_secret_key(path.as_ref()).map_err(|e| format!("--curve-secret: {e}"))?;
                args.curve_secret = Some(key);
            }
            "-h" | "--help" => {
                return Err("usage: emit --endpoint ENDPOINT [--endpoint ENDPOINT ...] [--acked [--ack-timeout-ms MS]] --encoding json|pickle --system T|S|P --count N [--queue CAPACITY] [--interval-ms MS] [--heartbeat-ms MS] [--curve-server-key Z85 --curve-secret FILE]".into())
            }
            other => return Err(format!("unknown argument {other:?} (try --help)")),
        }
    }
    if args.endpoints.is_empty() {
        args.endpoints.push("tcp://127.0.0.1:5010".into());
    }
    if args.curve_server.is_some() != args.curve_secret.is_some() {
        return Err("--curve-server-key and --curve-secret go together".into());
    }
    Ok(args)
}

fn main() -> ExitCode {
    let args = match parse() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("emit: {e}");
            return ExitCode::from(2);
        }
    };
    let mut builder = distlog::builder();
    for endpoint in &args.endpoints {
        builder = builder.endpoint(endpoint);
    }
    builder = builder
        .acknowledged(args.acked)
        .encoding(args.encoding)
        .system(args.system)
        .queue_capacity(args.queue)
        .overflow(Overflow::Block(Duration::from_secs(2)))
        .flush_timeout(Duration::from_secs(5))
        .filter("info");
    if let Some(t) = args.ack_timeout {
        builder = builder.ack_timeout(t);
    }
    if let Some(ms) = args.heartbeat {
        builder = builder.heartbeat(ms, ms * 3);
    }
    if let (Some(server), Some(secret)) = (args.curve_server, args.curve_secret) {
        builder = builder.curve(server, secret);
    }
    let guard = match builder.install() {
        Ok(g) => g,
        Err(e) => {
            eprintln!("emit: {e}");
            return ExitCode::from(2);
        }
    };
    let n = args.count;
    for i in 0..n {
        if i > 0 {
            if let Some(pause) = args.interval {
                std::thread::sleep(pause);
            }
        }
        log::info!(target: "emit", "record {i} of {n}");
    }
    let handler = guard.handler().clone();
    let report = guard.shutdown();
    eprintln!("sent {} dropped {}", report.sent, report.dropped);
    if report.sent < n {
        if let Some(why) = handler.last_connect_error() {
            eprintln!("emit: last connection error: {why}");
        }
    }
    if args.acked && (report.sent != n || report.dropped != 0) {
        // Acknowledged mode promises every record: say plainly when that failed.
        eprintln!(
            "emit: only {} of {n} records were acknowledged",
            report.sent
        );
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}
