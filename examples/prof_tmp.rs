use std::time::Duration;
fn main() {
    let guard = distlog::builder()
        .endpoint("tcp://127.0.0.1:5999")
        .queue_capacity(1 << 20)
        .flush_timeout(Duration::from_millis(10))
        .filter("info")
        .install()
        .unwrap();
    for i in 0..50_000u64 {
        log::info!(target: "bench", order_id = i, amount = 9.5, user = "alice"; "order {i} paid");
    }
    std::mem::forget(guard);
}
