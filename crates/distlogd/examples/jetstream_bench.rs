//! The JetStream reference for `bench_pipeline` (issue 13): what `async-nats` alone
//! stores, and how fast a stream filled by `distlogd` was filled.
//!
//! ```text
//! jetstream_bench publish URL STREAM RECORDS BYTES         # prints publish_per_s
//! jetstream_bench publish-inbox URL STREAM RECORDS BYTES   # prints publish_per_s
//! jetstream_bench stored URL STREAM RECORDS                # prints stored_per_s
//! ```
//!
//! `publish` creates `STREAM` as distlogd creates its own (file storage, one replica,
//! the same duplicate window), then publishes `RECORDS` messages of `BYTES` with the
//! `Distlog-Topic` header distlogd sets, keeping at most as many PubAcks in flight as
//! distlogd's sink does, so the two differ only in what distlogd adds. It uses
//! async-nats's JetStream publish, a future per PubAck.
//!
//! `publish-inbox` does the same the way distlogd's sink publishes: each message with
//! a reply subject of its own under one inbox, and every PubAck read from one
//! subscription. Of the two references, it is the faster on our machines.
//!
//! Both rates come from the stream itself: messages over the time between the first
//! and the last message's server timestamps. Neither includes connecting, creating the
//! stream or the process starting, which the two paths do not share.

use async_nats::jetstream::context::GetStreamErrorKind;
use async_nats::jetstream::{self, stream};
use async_nats::HeaderMap;
use futures::stream::{FuturesUnordered, StreamExt};
use std::process::ExitCode;
use std::time::{Duration, Instant};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("jetstream_bench: no tokio runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = match args.iter().map(String::as_str).collect::<Vec<_>>()[..] {
        ["publish", url, name, records, bytes] => match (records.parse(), bytes.parse()) {
            (Ok(records), Ok(bytes)) => runtime.block_on(publish(url, name, records, bytes)),
            _ => Err(format!(
                "RECORDS {records:?} and BYTES {bytes:?} must be numbers"
            )),
        },
        ["publish-inbox", url, name, records, bytes] => match (records.parse(), bytes.parse()) {
            (Ok(records), Ok(bytes)) => runtime.block_on(publish_inbox(url, name, records, bytes)),
            _ => Err(format!(
                "RECORDS {records:?} and BYTES {bytes:?} must be numbers"
            )),
        },
        ["stored", url, name, records] => match records.parse() {
            Ok(records) => runtime.block_on(stored(url, name, records)),
            Err(_) => Err(format!("RECORDS {records:?} must be a number")),
        },
        _ => Err(
            "usage: jetstream_bench publish|publish-inbox URL STREAM RECORDS BYTES | stored URL STREAM RECORDS"
                .into(),
        ),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("jetstream_bench: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Connects and creates the stream as distlogd creates its own; the client, its
/// context and the subject to publish to.
async fn connect_and_create(
    url: &str,
    name: &str,
) -> Result<(async_nats::Client, jetstream::Context, String), String> {
    let client = async_nats::connect(url)
        .await
        .map_err(|e| format!("connect {url}: {e}"))?;
    let js = jetstream::new(client.clone());
    let prefix = name.to_lowercase();
    js.create_stream(stream::Config {
        name: name.to_string(),
        subjects: vec![format!("{prefix}.>")],
        storage: stream::StorageType::File,
        duplicate_window: distlogd::nats::DUPLICATE_WINDOW,
        num_replicas: 1,
        ..Default::default()
    })
    .await
    .map_err(|e| format!("create stream {name}: {e}"))?;
    Ok((client, js, format!("{prefix}.P.L.bench")))
}

async fn publish(url: &str, name: &str, records: u64, bytes: usize) -> Result<(), String> {
    let (_, js, subject) = connect_and_create(url, name).await?;
    let payload = bytes::Bytes::from(vec![b'x'; bytes]);
    let mut headers = HeaderMap::new();
    headers.insert(distlogd::nats::TOPIC_HEADER, "PLJ");
    let mut in_flight = FuturesUnordered::new();
    let started = Instant::now();
    for _ in 0..records {
        if in_flight.len() >= distlogd::nats::MAX_IN_FLIGHT {
            if let Some(acked) = in_flight.next().await {
                acked?;
            }
        }
        let ack = js
            .publish_with_headers(subject.clone(), headers.clone(), payload.clone())
            .await
            .map_err(|e| format!("publish: {e}"))?;
        in_flight.push(async move { ack.await.map(|_| ()).map_err(|e| format!("PubAck: {e}")) });
    }
    while let Some(acked) = in_flight.next().await {
        acked?;
    }
    let elapsed = started.elapsed();
    let rate = stream_rate(&js, name, records).await?;
    println!("publish_per_s {rate:.0}");
    println!(
        "publish_wall_per_s {:.0}",
        records as f64 / elapsed.as_secs_f64()
    );
    Ok(())
}

async fn publish_inbox(url: &str, name: &str, records: u64, bytes: usize) -> Result<(), String> {
    let (client, js, subject) = connect_and_create(url, name).await?;
    let subject = async_nats::Subject::from(subject);
    let payload = bytes::Bytes::from(vec![b'x'; bytes]);
    let inbox = client.new_inbox();
    let mut acks = client
        .subscribe(format!("{inbox}.*"))
        .await
        .map_err(|e| format!("subscribe: {e}"))?;
    let mut in_flight = 0usize;
    let mut acked = 0u64;
    let started = Instant::now();
    let answer = |m: Option<async_nats::Message>| match m {
        // Enough to tell a PubAck from an error; distlogd's sink parses the JSON.
        Some(m) if m.status.is_none() && !m.payload.starts_with(b"{\"error\"") => Ok(()),
        Some(m) => Err(format!(
            "no PubAck: {:?} {:?}",
            m.status,
            String::from_utf8_lossy(&m.payload)
        )),
        None => Err("the PubAck subscription ended".to_string()),
    };
    // As the sink does: the header map built once and cloned, the reply subject by
    // the sink's own function.
    let mut headers = HeaderMap::new();
    headers.insert(distlogd::nats::TOPIC_HEADER, "PLJ");
    for id in 0..records {
        while in_flight >= distlogd::nats::MAX_IN_FLIGHT {
            answer(acks.next().await)?;
            in_flight -= 1;
            acked += 1;
        }
        client
            .publish_with_reply_and_headers(
                subject.clone(),
                distlogd::nats::reply_subject(&inbox, id),
                headers.clone(),
                payload.clone(),
            )
            .await
            .map_err(|e| format!("publish: {e}"))?;
        in_flight += 1;
    }
    while acked < records {
        answer(acks.next().await)?;
        acked += 1;
    }
    let elapsed = started.elapsed();
    let rate = stream_rate(&js, name, records).await?;
    println!("publish_per_s {rate:.0}");
    println!(
        "publish_wall_per_s {:.0}",
        records as f64 / elapsed.as_secs_f64()
    );
    Ok(())
}

async fn stored(url: &str, name: &str, records: u64) -> Result<(), String> {
    let client = async_nats::connect(url)
        .await
        .map_err(|e| format!("connect {url}: {e}"))?;
    let js = jetstream::new(client);
    let rate = stream_rate(&js, name, records).await?;
    println!("stored_per_s {rate:.0}");
    Ok(())
}

/// Waits (up to a minute) until the stream holds `records` messages, then rates them by
/// the server's timestamps of the first and the last.
async fn stream_rate(js: &jetstream::Context, name: &str, records: u64) -> Result<f64, String> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        // distlogd creates its stream once it connects, maybe after this looks.
        let messages = match js.get_stream(name).await {
            Ok(stream) => {
                let info = stream
                    .get_info()
                    .await
                    .map_err(|e| format!("stream {name} info: {e}"))?;
                let state = info.state;
                if state.messages >= records {
                    let span = (state.last_timestamp - state.first_timestamp).as_seconds_f64();
                    if span <= 0.0 {
                        return Err(format!("stream {name}: {records} messages in no time"));
                    }
                    return Ok((state.messages.saturating_sub(1)) as f64 / span);
                }
                state.messages
            }
            Err(e) => match e.kind() {
                GetStreamErrorKind::JetStream(j) if j.code() == 404 => 0,
                _ => return Err(format!("stream {name}: {e}")),
            },
        };
        if Instant::now() > deadline {
            return Err(format!(
                "stream {name} holds {messages} of {records} messages after a minute"
            ));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
