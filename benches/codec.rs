//! Encode and decode time per record, JSON and pickle, on a typical record (the
//! golden WARNING with extras) and on one built from a `log` call.

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use distlog::record::{Event, ProcessInfo};
use distlog::serialize::{decode, encode, json, Limits};
use distlog::topic::Encoding;

fn typical() -> distlog::Record {
    let mut e = Event::new(
        log::Level::Info,
        "shop.orders",
        "order 42 paid by alice".into(),
    );
    e.file = Some("src/shop/orders.rs".into());
    e.line = Some(120);
    e.module_path = Some("shop::orders".into());
    e.extra.push(("order_id".into(), 42.into()));
    e.extra.push(("amount".into(), 9.5.into()));
    e.extra.push(("user".into(), "alice".into()));
    e.into_record(&ProcessInfo::current())
}

fn bench(c: &mut Criterion) {
    let record = typical();
    let process = ProcessInfo::current();
    c.bench_function("build record from event", |b| {
        b.iter(|| {
            let mut e = Event::new(
                log::Level::Info,
                "shop.orders",
                "order 42 paid by alice".into(),
            );
            e.extra.push(("order_id".into(), 42.into()));
            black_box(e.into_record(&process))
        })
    });
    for enc in [Encoding::Json, Encoding::Pickle] {
        let mut body = Vec::new();
        encode(&record, enc, &mut body);
        c.bench_function(&format!("encode {enc} ({} bytes)", body.len()), |b| {
            let mut out = Vec::with_capacity(1024);
            b.iter(|| {
                out.clear();
                encode(black_box(&record), enc, &mut out);
                black_box(out.len())
            })
        });
        c.bench_function(&format!("decode {enc} ({} bytes)", body.len()), |b| {
            b.iter(|| black_box(decode(black_box(&body), enc)))
        });
        if enc == Encoding::Json {
            // What distlogd does with a body when no filter or format needs the record.
            c.bench_function(&format!("check {enc} ({} bytes)", body.len()), |b| {
                b.iter(|| black_box(json::check_record(black_box(&body), &Limits::default())))
            });
            // What it does when nothing is written (`--output none`).
            c.bench_function(&format!("validate {enc} ({} bytes)", body.len()), |b| {
                b.iter(|| black_box(json::validate_record(black_box(&body), &Limits::default())))
            });
        }
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
