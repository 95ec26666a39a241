//! `distlog`: the client. `distlog tail` follows a collector's `--publish` stream;
//! `distlog replay` reads back what its `--nats` sink stored.

use clap::{Parser, Subcommand};
use distlog::curve::CurvePublicKey;
use distlog::level::parse as parse_level;
use distlog::topic::{Kind, System};
use distlogd::filter::RecordFilter;
use distlogd::format::Color;
#[cfg(feature = "nats")]
use distlogd::replay::{run_replay, ReplayOptions, Start};
use distlogd::signal;
#[cfg(feature = "nats")]
use distlogd::since::Since;
use distlogd::tail::{run_tail, TailOptions};
#[cfg(feature = "nats")]
use std::num::NonZeroU64;
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
    /// Show the records distlogd --nats stored in JetStream, as tail shows them live
    #[cfg(feature = "nats")]
    Replay(Box<Replay>),
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

    #[command(flatten)]
    filters: Filters,

    #[command(flatten)]
    show: Show,

    /// Stop after N records that pass the filters
    #[arg(long, value_name = "N")]
    count: Option<u64>,

    /// Stop after this many seconds
    #[arg(long, value_name = "SECS", value_parser = parse_secs)]
    duration: Option<f64>,

    /// CURVE: the public key (Z85) of a `distlogd --curve-secret` publish socket
    // Z85 has '-' in its alphabet: a key may start with it and must not be read as a flag.
    #[arg(
        long,
        value_name = "Z85",
        requires = "curve_secret",
        allow_hyphen_values = true,
        value_parser = parse_public_key
    )]
    curve_server_key: Option<CurvePublicKey>,

    /// CURVE: this client's secret key file (from `distlog keygen`)
    #[arg(long, value_name = "FILE", requires = "curve_server_key")]
    curve_secret: Option<PathBuf>,
}

/// The record filters `tail` and `replay` share.
#[derive(clap::Args, Debug)]
struct Filters {
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
}

impl Filters {
    fn into_filter(self) -> RecordFilter {
        let mut filter = RecordFilter::default();
        filter.systems = self.system;
        filter.kinds = self.kind;
        filter.min_level = self.level;
        filter.loggers = self.logger;
        filter.tasks = self.task;
        filter
    }
}

/// How `tail` and `replay` show records.
#[derive(clap::Args, Debug)]
struct Show {
    /// Group records by task and draw the task tree when the stream ends
    #[arg(long)]
    tree: bool,

    /// Print JSON lines instead of readable lines
    #[arg(long, conflicts_with = "tree")]
    json: bool,

    /// Colors: auto (a terminal; NO_COLOR, CLICOLOR=0 and CLICOLOR_FORCE as usual), always, never
    #[arg(long, value_name = "WHEN", default_value = "auto", value_parser = parse_color)]
    color: Color,
}

#[cfg(feature = "nats")]
#[derive(clap::Args, Debug)]
#[command(group(clap::ArgGroup::new("start").args(["since", "from_seq"])))]
struct Replay {
    /// NATS server URL (nats://host:4222); repeatable, for a cluster
    #[arg(long, value_name = "URL", required = true)]
    nats: Vec<String>,

    /// The JetStream stream distlogd --nats writes
    #[arg(long, value_name = "NAME", default_value = "DISTLOG")]
    stream: String,

    /// The subject prefix of distlogd --nats-subject-prefix
    #[arg(long, value_name = "PREFIX", default_value = "distlog")]
    subject_prefix: String,

    /// Start at this time: RFC 3339 (2024-05-01T12:00:00Z) or ago (90s, 10m, 2h, 1d)
    #[arg(long, value_name = "TIME", value_parser = parse_since)]
    since: Option<Since>,

    /// Start at this stream sequence number
    #[arg(long, value_name = "N")]
    from_seq: Option<NonZeroU64>,

    /// Once the stored records are shown, keep showing new ones (until Ctrl-C)
    #[arg(long)]
    follow: bool,

    /// Only topics starting with this (P, PL, PLJ ...); repeatable [default: all]
    #[arg(long, value_name = "PREFIX")]
    topic: Vec<String>,

    #[command(flatten)]
    filters: Filters,

    #[command(flatten)]
    show: Show,
}

#[cfg(feature = "nats")]
fn parse_since(s: &str) -> Result<Since, String> {
    s.parse()
        .map_err(|e: distlogd::since::SinceError| e.to_string())
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
        #[cfg(feature = "nats")]
        Command::Replay(r) => replay(*r),
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
    options.filter = t.filters.into_filter();
    options.tree = t.show.tree;
    options.jsonl = t.show.json;
    options.count = t.count;
    options.duration = t.duration.map(Duration::from_secs_f64);
    options.color = t.show.color;
    if let (Some(server), Some(path)) = (t.curve_server_key, &t.curve_secret) {
        match distlog::curve::read_secret_key(path) {
            Ok(secret) => options.curve = Some((server, secret.into())),
            Err(e) => {
                eprintln!("distlog: {e}");
                return ExitCode::from(2);
            }
        }
    }
    let Some(stop) = stop_flag() else {
        return ExitCode::FAILURE;
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

#[cfg(feature = "nats")]
fn replay(r: Replay) -> ExitCode {
    let mut options = ReplayOptions::default();
    options.servers = r.nats;
    options.stream = r.stream;
    options.subject_prefix = r.subject_prefix;
    options.start = match (r.since, r.from_seq) {
        (Some(since), _) => Start::Since(since),
        (None, Some(seq)) => Start::Seq(seq),
        (None, None) => Start::All,
    };
    options.follow = r.follow;
    options.topics = r.topic;
    options.filter = r.filters.into_filter();
    options.tree = r.show.tree;
    options.jsonl = r.show.json;
    options.color = r.show.color;
    let Some(stop) = stop_flag() else {
        return ExitCode::FAILURE;
    };
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    match run_replay(&options, stop, &mut out) {
        Ok(_) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("distlog: {e}");
            ExitCode::FAILURE
        }
    }
}

/// SIGINT and SIGTERM as the flag that ends a tail or a follow; `None` after saying
/// why they could not be caught.
fn stop_flag() -> Option<&'static std::sync::atomic::AtomicBool> {
    match signal::shutdown_on_signals() {
        Ok(flag) => Some(flag),
        Err(e) => {
            eprintln!("distlog: cannot install signal handlers: {e}");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // A key distlogd printed in a CI run; the leading '-' once made clap take it for a flag.
    const HYPHEN_KEY: &str = "-V(P>r}#:e<Z5$$]R!rTYW)<G.PySUTias$dCN@A";

    fn tail_with_key(key: &str) -> Result<Args, clap::Error> {
        Args::try_parse_from([
            "distlog",
            "tail",
            "--connect",
            "tcp://127.0.0.1:1",
            "--curve-server-key",
            key,
            "--curve-secret",
            "client.key",
        ])
    }

    #[test]
    fn a_server_key_that_starts_with_a_hyphen_is_a_value() {
        let args = match tail_with_key(HYPHEN_KEY) {
            Ok(args) => args,
            Err(e) => panic!("rejected a valid key: {e}"),
        };
        let Command::Tail(tail) = args.command else {
            panic!("parsed as another command");
        };
        let expected = CurvePublicKey::from_z85(HYPHEN_KEY).map(|k| k.to_z85());
        assert_eq!(tail.curve_server_key.map(|k| k.to_z85()), expected.ok());
    }
}
