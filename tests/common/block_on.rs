//! The runtime helper shared by the integration tests and `benches/pipeline.rs`
//! (which includes this file by path).

/// Runs a future on the runtime of the enabled feature.
pub fn block_on<F: std::future::Future>(f: F) -> F::Output {
    #[cfg(feature = "async-std")]
    {
        async_std::task::block_on(f)
    }
    #[cfg(all(feature = "tokio", not(feature = "async-std")))]
    {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("tokio runtime")
            .block_on(f)
    }
}
