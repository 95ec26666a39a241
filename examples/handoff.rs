//! A task handed over to another process: both halves log on one tree.
//!
//! ```text
//! cargo run --release --example handoff -- --endpoint tcp://127.0.0.1:5010 --encoding json
//! ```
//!
//! The parent opens task "handoff demo", logs a record, and runs this same program as
//! a child with `--child-of <foreign id>`, timing it: the time is sent as the
//! performance message `handoff.duration` (seconds). The child imports the task, logs
//! a record, and runs the subtask "child work", which fails (logged as
//! `FAILED child work` with the error in `exc_text`). Both flush and exit 0; every
//! record carries a context key under the parent's UUID.
//!
//! Records, in task order (`U` is the parent's UUID):
//!
//! | key | process | message |
//! | --- | --- | --- |
//! | `0@U` | parent | `handoff demo` |
//! | `1@U` | parent | `parent working` |
//! | `0@U/1` | child | `handoff child` |
//! | `1@U/1` | child | `child received the task` |
//! | `0@U/1/1` | child | `child work` |
//! | `1@U/1/1` | child | `FAILED child work` (ERROR) |
//! | `2@U/1` | child | `child work failed as planned` (WARNING) |
//! | `3@U/1` | child | `child done` |
//! | `2@U` | parent | performance message `handoff.duration` |
//! | `3@U` | parent | `handoff done` |

use distlog::context::{import_task, task, to};
use distlog::handler::Overflow;
use distlog::topic::Encoding;
use std::fmt;
use std::process::{Command, ExitCode};
use std::time::Duration;

const TARGET: &str = "handoff";

struct Args {
    endpoint: String,
    encoding: Encoding,
    encoding_name: String,
    child_of: Option<String>,
}

fn parse() -> Result<Args, String> {
    let mut endpoint = None;
    let mut encoding = None;
    let mut child_of = None;
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or_else(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--endpoint" => endpoint = Some(value()?),
            "--encoding" => {
                let v = value()?;
                let e: Encoding = v.parse().map_err(|e| format!("--encoding: {e}"))?;
                encoding = Some((e, v));
            }
            "--child-of" => child_of = Some(value()?),
            "-h" | "--help" => {
                return Err(
                    "usage: handoff --endpoint ENDPOINT --encoding json|pickle [--child-of ID]"
                        .into(),
                )
            }
            other => return Err(format!("unknown argument {other:?} (try --help)")),
        }
    }
    let endpoint = endpoint.ok_or("--endpoint is required")?;
    let (encoding, encoding_name) = encoding.ok_or("--encoding is required")?;
    Ok(Args {
        endpoint,
        encoding,
        encoding_name,
        child_of,
    })
}

/// The failure the child's subtask reports.
#[derive(Debug)]
struct WorkError {
    step: &'static str,
    cause: std::io::Error,
}

impl fmt::Display for WorkError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "step {:?} failed: {}", self.step, self.cause)
    }
}

impl std::error::Error for WorkError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.cause)
    }
}

fn parent(args: &Args) -> Result<(), String> {
    let demo = task("handoff demo", [("role", "parent")])
        .target(TARGET)
        .enter();
    log::info!(target: TARGET, "parent working");
    let foreign = demo.foreign_task_id();
    let exe = std::env::current_exe().map_err(|e| format!("cannot find this program: {e}"))?;
    let timer = distlog::perf::timer("handoff.duration").tag("child", foreign.as_str());
    let status = Command::new(exe)
        .args(["--endpoint", &args.endpoint])
        .args(["--encoding", &args.encoding_name])
        .args(["--child-of", &foreign])
        .status()
        .map_err(|e| format!("cannot start the child: {e}"))?;
    timer.stop();
    if !status.success() {
        let err = format!("the child exited with {status}");
        demo.fail(&err);
        return Err(err);
    }
    demo.success("handoff done");
    Ok(())
}

fn child(foreign: &str) -> Result<(), String> {
    let handed = import_task(foreign, "handoff child", [("role", "child")])
        .map_err(|e| e.to_string())?
        .target(TARGET)
        .enter();
    log::info!(target: TARGET, "child received the task");
    let work: Result<(), WorkError> = to("child work", ()).run(|| {
        Err(WorkError {
            step: "compute",
            cause: std::io::Error::other("simulated failure"),
        })
    });
    if let Err(e) = work {
        log::warn!(target: TARGET, "child work failed as planned: {e}");
    }
    handed.success("child done");
    Ok(())
}

fn main() -> ExitCode {
    let args = match parse() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("handoff: {e}");
            return ExitCode::from(2);
        }
    };
    let guard = match distlog::builder()
        .endpoint(&args.endpoint)
        .encoding(args.encoding)
        .overflow(Overflow::Block(Duration::from_secs(2)))
        .flush_timeout(Duration::from_secs(5))
        .filter("info")
        .install()
    {
        Ok(g) => g,
        Err(e) => {
            eprintln!("handoff: {e}");
            return ExitCode::from(2);
        }
    };
    let role = if args.child_of.is_some() {
        "child"
    } else {
        "parent"
    };
    let outcome = match &args.child_of {
        Some(id) => child(id),
        None => parent(&args),
    };
    let report = guard.shutdown();
    eprintln!(
        "handoff {role}: sent {} dropped {} unsent {}",
        report.sent, report.dropped, report.unsent
    );
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("handoff {role}: {e}");
            ExitCode::FAILURE
        }
    }
}
