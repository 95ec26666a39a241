//! The demo: an embedded collector in this very process prints, readably, what the
//! program logs through `log` with distlog installed.
//!
//! ```text
//! cargo run --example demo
//! ```

use distlogd::config::{OutputFormat, SinkConfig, SinkKind};
use distlogd::Config;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

static STOP: AtomicBool = AtomicBool::new(false);

fn main() -> ExitCode {
    let port = match std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()) {
        Ok(addr) => addr.port(),
        Err(e) => {
            eprintln!("demo: no free port: {e}");
            return ExitCode::FAILURE;
        }
    };
    let endpoint = format!("tcp://127.0.0.1:{port}");

    // The collector: what `distlogd --bind ENDPOINT --output pretty` runs.
    let mut config = Config::default();
    config.inputs = vec![endpoint.clone()];
    config.stats_interval = None;
    config.sinks.push(SinkConfig::new(SinkKind::Stdout {
        format: OutputFormat::Pretty,
        color: Default::default(),
    }));
    let collector = std::thread::spawn(move || distlogd::run(&config, &STOP));
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        if Instant::now() > deadline || collector.is_finished() {
            eprintln!("demo: the embedded collector did not start");
            return ExitCode::FAILURE;
        }
        std::thread::sleep(Duration::from_millis(10));
    }

    // The application: one call installs distlog as the `log` logger.
    let guard = match distlog::builder()
        .endpoint(&endpoint)
        .filter("debug")
        .install()
    {
        Ok(g) => g,
        Err(e) => {
            eprintln!("demo: {e}");
            return ExitCode::FAILURE;
        }
    };
    log::info!(target: "shop.orders", "service started");
    log::debug!(target: "shop.db", pool = 4; "connection pool ready");
    log::info!(target: "shop.orders", order_id = 42, amount = 9.5, user = "alice"; "order {} paid", 42);
    log::warn!(target: "shop.stock", sku = "X-1", left = 2; "stock low");
    log::error!(target: "shop.payments", "card declined\nretrying with the backup processor");
    log::trace!(target: "shop.orders", "filtered out: below the debug level");

    let report = guard.shutdown();
    STOP.store(true, Ordering::Relaxed);
    let stats = collector.join();
    eprintln!("demo: sent {} dropped {}", report.sent, report.dropped);
    match stats {
        Ok(Ok(_)) => ExitCode::SUCCESS,
        Ok(Err(e)) => {
            eprintln!("demo: collector: {e}");
            ExitCode::FAILURE
        }
        Err(_) => ExitCode::FAILURE,
    }
}
