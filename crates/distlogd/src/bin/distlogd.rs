//! `distlogd`: the distlog collector. Receives records on PULL sockets, filters them and
//! writes them to stdout, rotating files and a PUB socket. See `distlogd --help` and
//! the `distlogd` crate docs.

use clap::Parser;
use distlog::level::parse as parse_level;
use distlog::topic::{Kind, System};
use distlogd::config::{
    Config, CurveConfig, NatsConfig, OutputFormat, SinkConfig, SinkKind, DEFAULT_NATS_STREAM,
    DEFAULT_NATS_SUBJECT_PREFIX,
};
use distlogd::filter::RecordFilter;
use distlogd::format::Color;
use distlogd::signal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

/// The distlog collector: receive log records over ZeroMQ, filter, fan out.
///
/// Records arrive on PULL sockets as [topic, body] (JSON or pickle, decoded as data
/// only), or with --ack-bind on ROUTER sockets as [header, topic, body], acknowledged
/// once every sink holds them. Stdout carries only records; diagnostics and stats go to stderr. SIGINT or
/// SIGTERM drains the input, flushes every sink and exits 0; SIGHUP rereads the CURVE
/// allow file.
#[derive(Parser, Debug)]
#[command(version, max_term_width = 100)]
struct Args {
    /// PULL endpoint to bind; repeat for several. Replaces the --config file's [[input]]
    /// tables [default: tcp://127.0.0.1:5010, or none with --ack-bind (or [[ack_input]])
    /// unless the --config file has [[input]] tables]
    #[arg(long, value_name = "ENDPOINT")]
    bind: Vec<String>,

    /// ROUTER endpoint for acknowledged delivery (producers with acknowledged(true));
    /// repeat for several. Replaces the --config file's [[ack_input]] tables
    #[arg(long, value_name = "ENDPOINT")]
    ack_bind: Vec<String>,

    /// How records go to stdout [default: pretty, or none with --config]
    #[arg(long, value_name = "FORMAT", value_parser = parse_output)]
    output: Option<OutputFormat>,

    /// Colors for --output pretty: auto (a terminal; NO_COLOR, CLICOLOR=0 and CLICOLOR_FORCE as
    /// usual), always, never
    #[arg(long, value_name = "WHEN", default_value = "auto", value_parser = parse_color)]
    color: Color,

    /// Also write records as JSON lines to this file
    #[arg(long, value_name = "PATH")]
    file: Option<PathBuf>,

    /// Rotate --file when it would grow past this many bytes
    #[arg(long, value_name = "N", requires = "file", value_parser = clap::value_parser!(u64).range(1..))]
    rotate_bytes: Option<u64>,

    /// Rotated files to keep: PATH.1 ... PATH.K; 0 empties PATH in place instead
    #[arg(long, value_name = "K", default_value_t = 5, requires = "file")]
    keep: usize,

    /// PUB endpoint re-publishing every accepted record as its original [topic, body]
    #[arg(long, value_name = "ENDPOINT")]
    publish: Option<String>,

    /// NATS JetStream sink: a server URL (nats://host:4222); repeat for a cluster's seeds.
    /// One message per record on <prefix>.<system>.<kind>.<logger>
    #[arg(long, value_name = "URL")]
    nats: Vec<String>,

    /// The JetStream stream for --nats; created if missing (file storage, subjects
    /// <prefix>.>, 2-minute duplicate window)
    #[arg(long, value_name = "NAME", default_value = DEFAULT_NATS_STREAM, requires = "nats")]
    nats_stream: String,

    /// The first subject tokens for --nats
    #[arg(long, value_name = "P", default_value = DEFAULT_NATS_SUBJECT_PREFIX, requires = "nats")]
    nats_subject_prefix: String,

    /// Replicas of a stream --nats creates (1 to 5)
    #[arg(long, value_name = "R", default_value_t = 1, requires = "nats")]
    nats_replicas: usize,

    /// Only systems (T, S, P or test, staging, production); repeatable
    #[arg(long, value_name = "SYSTEM", value_parser = parse_system)]
    system: Vec<System>,

    /// Only kinds (L, P or log, performance); repeatable
    #[arg(long, value_name = "KIND", value_parser = parse_kind)]
    kind: Vec<Kind>,

    /// Only records at this level or above (name or number)
    #[arg(long, value_name = "LEVEL", value_parser = parse_level_arg)]
    level: Option<i64>,

    /// Only loggers under this name (shop takes shop.orders); repeatable
    #[arg(long, value_name = "PREFIX")]
    logger: Vec<String>,

    /// Only tasks under this id (abc takes abc/1/2); repeatable
    #[arg(long, value_name = "PREFIX")]
    task: Vec<String>,

    /// TOML config describing inputs, filters and sinks; the flags above add to it
    /// (--bind replaces its inputs; filter flags apply to the sinks the flags make)
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,

    /// Reject bodies longer than this, before decoding [default: 1048576]
    #[arg(long, value_name = "N")]
    max_body_bytes: Option<usize>,

    /// Seconds between stats lines on stderr; 0 prints only the final one [default: 10]
    #[arg(long, value_name = "SECS", value_parser = parse_secs)]
    stats_interval: Option<f64>,

    /// CURVE: the collector's secret key file (from `distlog keygen`). Every input and
    /// the --publish socket then require CURVE; plaintext peers are refused
    #[arg(long, value_name = "FILE")]
    curve_secret: Option<PathBuf>,

    /// CURVE: client public keys allowed to connect, one a line (# comments); reread on
    /// SIGHUP. Without it any client that knows the server's public key may connect
    #[arg(long, value_name = "FILE")]
    curve_allow: Option<PathBuf>,

    /// Serve Prometheus metrics at http://ADDR/metrics (HOST:PORT; port 0 takes a free
    /// one, announced on stderr). Replaces the --config file's metrics_bind
    #[arg(long, value_name = "ADDR")]
    metrics_bind: Option<String>,

    /// Threads receiving the TCP inputs, each input's connections dealt out
    /// among them; 1 receives on one thread. Replaces the --config file's
    /// receive_threads [default: the cores there are, at most 4]
    #[arg(long, value_name = "N")]
    receive_threads: Option<usize>,

    /// On shutdown, stop once the input has been quiet this many seconds [default: 0.3]
    #[arg(long, value_name = "SECS", value_parser = parse_secs)]
    drain_quiet: Option<f64>,
}

fn parse_output(s: &str) -> Result<OutputFormat, String> {
    s.parse().map_err(|e: distlogd::ConfigError| e.to_string())
}

fn parse_color(s: &str) -> Result<Color, String> {
    s.parse()
        .map_err(|e: distlogd::format::ColorError| e.to_string())
}

fn parse_system(s: &str) -> Result<System, String> {
    s.parse()
        .map_err(|e: distlog::topic::TopicError| e.to_string())
}

fn parse_kind(s: &str) -> Result<Kind, String> {
    s.parse()
        .map_err(|e: distlog::topic::TopicError| e.to_string())
}

fn parse_level_arg(s: &str) -> Result<i64, String> {
    parse_level(s).map_err(|e| e.to_string())
}

fn parse_secs(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if (0.0..=1e9).contains(&v) => Ok(v),
        _ => Err(format!("bad number of seconds {s:?}: expected 0 to 1e9")),
    }
}

/// The config the flags describe, on top of the --config file if one is given.
fn build_config(args: Args) -> Result<Config, distlogd::ConfigError> {
    let from_file = args.config.is_some();
    // The flags' endpoints replace the file's, list by list. Asked for acknowledged
    // input only (no --bind, and no [[input]] in the file): binding the default PULL
    // endpoint too would take a port nobody asked for.
    let mut config = match &args.config {
        Some(path) => Config::from_toml_file_with_binds(path, &args.bind, &args.ack_bind)?,
        None => {
            let mut config = Config::default();
            if !args.ack_bind.is_empty() {
                config.ack_inputs = args.ack_bind;
                config.inputs.clear();
            }
            if !args.bind.is_empty() {
                config.inputs = args.bind;
            }
            config
        }
    };
    if let Some(n) = args.max_body_bytes {
        config.max_body_bytes = n;
    }
    if let Some(secs) = args.stats_interval {
        config.stats_interval = (secs > 0.0).then(|| Duration::from_secs_f64(secs));
    }
    if let Some(addr) = args.metrics_bind {
        config.metrics_bind = Some(addr);
    }
    if let Some(n) = args.receive_threads {
        config.receive_threads = n;
    }
    if let Some(secs) = args.drain_quiet {
        config.drain_quiet = Duration::from_secs_f64(secs);
    }
    if let Some(secret) = args.curve_secret {
        // The flag replaces the file's secret; the file's allow list stays unless
        // --curve-allow replaces it too.
        let allow = config.curve.take().and_then(|c| c.allow_file);
        let mut curve = CurveConfig::new(secret);
        curve.allow_file = allow;
        config.curve = Some(curve);
    }
    if let Some(allow) = args.curve_allow {
        match config.curve.as_mut() {
            Some(curve) => curve.allow_file = Some(allow),
            None => {
                return Err(distlogd::ConfigError::BadValue {
                    key: "--curve-allow".into(),
                    value: allow.display().to_string(),
                    expected: "--curve-secret (or a [curve] secret in --config) with it",
                })
            }
        }
    }
    let mut filter = RecordFilter::default();
    filter.systems = args.system;
    filter.kinds = args.kind;
    filter.min_level = args.level;
    filter.loggers = args.logger;
    filter.tasks = args.task;
    let output = match args.output {
        Some(o) => Some(o),
        None if from_file => None,
        None => Some(OutputFormat::Pretty),
    };
    if let Some(format) = output {
        config.sinks.push(
            SinkConfig::new(SinkKind::Stdout {
                format,
                color: args.color,
            })
            .with_filter(filter.clone()),
        );
    }
    if let Some(path) = args.file {
        config.sinks.push(
            SinkConfig::new(SinkKind::File {
                path,
                rotate_bytes: args.rotate_bytes,
                keep: args.keep,
            })
            .with_filter(filter.clone()),
        );
    }
    if let Some(endpoint) = args.publish {
        config
            .sinks
            .push(SinkConfig::new(SinkKind::Publish { endpoint }).with_filter(filter.clone()));
    }
    if !args.nats.is_empty() {
        let mut nats = NatsConfig::new(args.nats);
        nats.stream = args.nats_stream;
        nats.subject_prefix = args.nats_subject_prefix;
        nats.replicas = args.nats_replicas;
        config
            .sinks
            .push(SinkConfig::new(SinkKind::Nats(nats)).with_filter(filter));
    }
    config.validate()?;
    Ok(config)
}

fn main() -> ExitCode {
    let args = Args::parse();
    let config = match build_config(args) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("distlogd: {e}");
            return ExitCode::from(2);
        }
    };
    let stop = match signal::shutdown_on_signals() {
        Ok(flag) => flag,
        Err(e) => {
            eprintln!("distlogd: cannot install signal handlers: {e}");
            return ExitCode::FAILURE;
        }
    };
    // Always taken, so that SIGHUP never kills the collector, CURVE or not.
    let reload = match signal::reload_on_sighup() {
        Ok(flag) => flag,
        Err(e) => {
            eprintln!("distlogd: cannot install the SIGHUP handler: {e}");
            return ExitCode::FAILURE;
        }
    };
    match distlogd::run_with_reload(&config, stop, reload) {
        Ok(_) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("distlogd: {e}");
            ExitCode::FAILURE
        }
    }
}
