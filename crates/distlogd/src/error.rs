//! Why the collector could not start or had to stop.

use crate::ConfigError;
use std::fmt;
use std::path::PathBuf;

/// Why the collector could not start or had to stop.
#[derive(Debug)]
#[non_exhaustive]
pub enum CollectorError {
    /// The configuration is not usable.
    Config(ConfigError),
    /// An endpoint could not be bound.
    Bind {
        /// The endpoint as configured.
        endpoint: String,
        /// The transport's reason.
        source: zeromq::ZmqError,
    },
    /// A file sink could not be opened.
    Open {
        /// The file.
        path: PathBuf,
        /// The reason.
        source: std::io::Error,
    },
    /// The sink thread could not be started.
    SinkThreadStart(std::io::Error),
    /// A receive lane's thread could not be started.
    LaneStart(std::io::Error),
    /// The sink thread died.
    SinkThread(&'static str),
    /// The async runtime for the sockets could not start.
    Runtime(std::io::Error),
    /// The CURVE secret key or allow file could not be read.
    Curve(distlog::curve::KeyFileError),
    /// The nats sink could not start.
    #[cfg(feature = "nats")]
    Nats(crate::nats::NatsError),
    /// The metrics address could not be bound.
    MetricsBind {
        /// The address as configured.
        addr: String,
        /// The reason.
        source: std::io::Error,
    },
}

impl CollectorError {
    /// What binding `endpoint` failed with, for `map_err` wherever an input is bound.
    pub(crate) fn binding(endpoint: &str) -> impl Fn(zeromq::ZmqError) -> Self + '_ {
        move |source| CollectorError::Bind {
            endpoint: endpoint.to_string(),
            source,
        }
    }
}

impl fmt::Display for CollectorError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CollectorError::Config(e) => write!(f, "{e}"),
            CollectorError::Bind { endpoint, source } => {
                write!(f, "cannot bind {endpoint}: {source}")
            }
            CollectorError::Open { path, source } => {
                write!(f, "cannot open {}: {source}", path.display())
            }
            CollectorError::SinkThreadStart(e) => write!(f, "cannot start the sink thread: {e}"),
            CollectorError::LaneStart(e) => write!(f, "cannot start a receive lane's thread: {e}"),
            CollectorError::SinkThread(why) => write!(f, "sink thread failed: {why}"),
            CollectorError::Runtime(e) => write!(f, "cannot start the async runtime: {e}"),
            CollectorError::Curve(e) => write!(f, "CURVE: {e}"),
            #[cfg(feature = "nats")]
            CollectorError::Nats(e) => write!(f, "nats sink: {e}"),
            CollectorError::MetricsBind { addr, source } => {
                write!(f, "cannot serve metrics on {addr}: {source}")
            }
        }
    }
}

impl std::error::Error for CollectorError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            CollectorError::Config(e) => Some(e),
            CollectorError::Bind { source, .. } => Some(source),
            CollectorError::Open { source, .. } => Some(source),
            CollectorError::SinkThreadStart(e)
            | CollectorError::LaneStart(e)
            | CollectorError::Runtime(e) => Some(e),
            CollectorError::SinkThread(_) => None,
            CollectorError::Curve(e) => Some(e),
            #[cfg(feature = "nats")]
            CollectorError::Nats(e) => Some(e),
            CollectorError::MetricsBind { source, .. } => Some(source),
        }
    }
}

impl From<ConfigError> for CollectorError {
    fn from(e: ConfigError) -> Self {
        CollectorError::Config(e)
    }
}
