//! `distlog`: the client. `distlog tail` follows a collector's `--publish` stream.

use clap::{Parser, Subcommand};
use distlog::curve::CurvePublicKey;
use distlog::level::parse as parse_level;
use distlog::topic::{Kind, System};
use distlogd::format::Color;
use distlogd::signal;
use distlogd::tail::{run_tail, TailOptions};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

/// The distlog client.
#[derive(Parser, Debug)]
#[command(version, max_term_width = 100)]
struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Follow the records a `distlogd --publish ENDPOINT` re-publishes
    // Boxed: its options are large beside keygen's.
    Tail(Box<Tail>),
    /// Make a CURVE key pair: NAME.key (secret, mode 0600) and NAME.pub, in Z85
    Keygen(Keygen),
}

#[derive(clap::Args, Debug)]
struct Keygen {
    /// Writes NAME.key and NAME.pub
    #[arg(long, value_name = "NAME")]
    out: PathBuf,

    /// Replace NAME.key and NAME.pub if they exist
    #[arg(long)]
    force: bool,
}

#[derive(clap::Args, Debug)]
struct Tail {
    /// distlogd --publish endpoint to connect to; repeatable
    #[arg(long, value_name = "ENDPOINT", required = true)]
    connect: Vec<String>,

    /// Topic prefix to subscribe to (P, PL, PLJ ...); repeatable [default: all]
    #[arg(long, value_name = "PREFIX")]
    topic: Vec<String>,

    /// Only records at this level or above (name or number)
    #[arg(long, value_name = "LEVEL", value_parser = parse_level_arg)]
    level: Option<i64>,

    /// Only loggers under this name (shop takes shop.orders); repeatable
    #[arg(long, value_name = "PREFIX")]
    logger: Vec<String>,

    /// Only tasks under this id (abc takes abc/1/2); repeatable
    #[arg(long, value_name = "PREFIX")]
    task: Vec<String>,

    /// Only systems (T, S, P or test, staging, production); repeatable
    #[arg(long, value_name = "SYSTEM", value_parser = parse_system)]
    system: Vec<System>,

    /// Only kinds (L, P or log, performance); repeatable
    #[arg(long, value_name = "KIND", value_parser = parse_kind)]
    kind: Vec<Kind>,

    /// Group records by task and draw the task tree when the stream ends
    #[arg(long)]
    tree: bool,

    /// Print JSON lines instead of readable lines
    #[arg(long, conflicts_with = "tree")]
    json: bool,

    /// Stop after N records that pass the filters
    #[arg(long, value_name = "N")]
    count: Option<u64>,

    /// Stop after this many seconds
    #[arg(long, value_name = "SECS", value_parser = parse_secs)]
    duration: Option<f64>,

    /// Colors: auto (a terminal; NO_COLOR, CLICOLOR=0 and CLICOLOR_FORCE as usual), always, never
    #[arg(long, value_name = "WHEN", default_value = "auto", value_parser = parse_color)]
    color: Color,

    /// CURVE: the public key (Z85) of a `distlogd --curve-secret` publish socket
    #[arg(long, value_name = "Z85", requires = "curve_secret", value_parser = parse_public_key)]
    curve_server_key: Option<CurvePublicKey>,

    /// CURVE: this client's secret key file (from `distlog keygen`)
    #[arg(long, value_name = "FILE", requires = "curve_server_key")]
    curve_secret: Option<PathBuf>,
}

fn parse_public_key(s: &str) -> Result<CurvePublicKey, String> {
    CurvePublicKey::from_z85(s.trim()).map_err(|e| format!("{s:?} is not a CURVE public key: {e}"))
}

fn parse_level_arg(s: &str) -> Result<i64, String> {
    parse_level(s).map_err(|e| e.to_string())
}

fn parse_system(s: &str) -> Result<System, String> {
    s.parse()
        .map_err(|e: distlog::topic::TopicError| e.to_string())
}

fn parse_kind(s: &str) -> Result<Kind, String> {
    s.parse()
        .map_err(|e: distlog::topic::TopicError| e.to_string())
}

fn parse_color(s: &str) -> Result<Color, String> {
    s.parse()
        .map_err(|e: distlogd::format::ColorError| e.to_string())
}

fn parse_secs(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if (0.0..=1e9).contains(&v) => Ok(v),
        _ => Err(format!("bad number of seconds {s:?}: expected 0 to 1e9")),
    }
}

fn main() -> ExitCode {
    match Args::parse().command {
        Command::Tail(t) => tail(*t),
        Command::Keygen(k) => keygen(&k),
    }
}

fn keygen(k: &Keygen) -> ExitCode {
    match distlogd::keygen::write_key_pair(&k.out, k.force) {
        Ok(written) => {
            eprintln!(
                "distlog: wrote {} (secret) and {}",
                written.secret_file.display(),
                written.public_file.display()
            );
            // The public key on stdout, for scripts (`--curve-server-key $(...)`).
            println!("{}", written.public);
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("distlog: {e}");
            ExitCode::FAILURE
        }
    }
}

fn tail(t: Tail) -> ExitCode {
    let mut options = TailOptions::default();
    options.connect = t.connect;
    options.topics = t.topic;
    options.filter.systems = t.system;
    options.filter.kinds = t.kind;
    options.filter.min_level = t.level;
    options.filter.loggers = t.logger;
    options.filter.tasks = t.task;
    options.tree = t.tree;
    options.jsonl = t.json;
    options.count = t.count;
    options.duration = t.duration.map(Duration::from_secs_f64);
    options.color = t.color;
    if let (Some(server), Some(path)) = (t.curve_server_key, &t.curve_secret) {
        match distlog::curve::read_secret_key(path) {
            Ok(secret) => options.curve = Some((server, secret.into())),
            Err(e) => {
                eprintln!("distlog: {e}");
                return ExitCode::from(2);
            }
        }
    }
    let stop = match signal::shutdown_on_signals() {
        Ok(flag) => flag,
        Err(e) => {
            eprintln!("distlog: cannot install signal handlers: {e}");
            return ExitCode::FAILURE;
        }
    };
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    match run_tail(&options, stop, &mut out) {
        Ok(_) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("distlog: {e}");
            ExitCode::FAILURE
        }
    }
}
