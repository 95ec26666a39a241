//! The W3C trace context of a task (see the module docs of [`crate::context`] for the
//! mapping), and opening a task from an incoming `traceparent`.

use super::task::{NewTask, Task, TaskData};
use crate::fnv::{fnv1a_128, fnv1a_64};
use crate::value::Value;
use std::fmt;

/// A `traceparent` header that [`Task::from_traceparent`] refused, naming it.
///
/// ```
/// use distlog::context::{Traceparent, TraceparentError};
/// let err = "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
///     .parse::<Traceparent>()
///     .unwrap_err();
/// assert!(matches!(err, TraceparentError::Version { .. }));
/// assert!(err.to_string().contains("ff-4bf9"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum TraceparentError {
    /// Not four `-`-separated fields of 2, 32, 16 and 2 lowercase hex digits.
    Format {
        /// The header as given.
        value: String,
    },
    /// Version `ff`, which the W3C spec declares invalid.
    Version {
        /// The header as given.
        value: String,
    },
    /// Version `00` with more than four fields.
    TrailingData {
        /// The header as given.
        value: String,
    },
    /// The trace id is all zeros.
    ZeroTraceId {
        /// The header as given.
        value: String,
    },
    /// The parent span id is all zeros.
    ZeroSpanId {
        /// The header as given.
        value: String,
    },
}

impl fmt::Display for TraceparentError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TraceparentError::Format { value } => write!(
                f,
                "traceparent {value:?} is not 00-<32 hex>-<16 hex>-<2 hex> in lowercase"
            ),
            TraceparentError::Version { value } => {
                write!(f, "traceparent {value:?} has the invalid version ff")
            }
            TraceparentError::TrailingData { value } => {
                write!(f, "traceparent {value:?} has data after the flags")
            }
            TraceparentError::ZeroTraceId { value } => {
                write!(f, "traceparent {value:?} has an all-zero trace id")
            }
            TraceparentError::ZeroSpanId { value } => {
                write!(f, "traceparent {value:?} has an all-zero parent span id")
            }
        }
    }
}

impl std::error::Error for TraceparentError {}

/// A parsed W3C `traceparent`.
///
/// ```
/// use distlog::context::Traceparent;
/// let tp: Traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".parse().unwrap();
/// assert_eq!(tp.trace_id, 0x4bf92f3577b34da6a3ce929d0e0e4736);
/// assert_eq!(tp.span_id, 0x00f067aa0ba902b7);
/// assert_eq!(tp.flags, 1);
/// assert_eq!(tp.to_string(), "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Traceparent {
    /// The 128-bit trace id.
    pub trace_id: u128,
    /// The 64-bit (parent) span id.
    pub span_id: u64,
    /// The trace flags (bit 0: sampled).
    pub flags: u8,
}

impl fmt::Display for Traceparent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "00-{:032x}-{:016x}-{:02x}",
            self.trace_id, self.span_id, self.flags
        )
    }
}

impl std::str::FromStr for Traceparent {
    type Err = TraceparentError;

    fn from_str(value: &str) -> Result<Self, TraceparentError> {
        let format = || TraceparentError::Format {
            value: value.to_string(),
        };
        let fields: Vec<&str> = value.split('-').collect();
        if fields.len() < 4 {
            return Err(format());
        }
        let lower_hex = |s: &str, len: usize| {
            s.len() == len
                && s.bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        };
        let (version, trace, span, flags) = (fields[0], fields[1], fields[2], fields[3]);
        if !lower_hex(version, 2)
            || !lower_hex(trace, 32)
            || !lower_hex(span, 16)
            || !lower_hex(flags, 2)
        {
            return Err(format());
        }
        if version == "ff" {
            return Err(TraceparentError::Version {
                value: value.to_string(),
            });
        }
        // Later versions may append fields; version 00 may not.
        if version == "00" && fields.len() > 4 {
            return Err(TraceparentError::TrailingData {
                value: value.to_string(),
            });
        }
        let trace_id = u128::from_str_radix(trace, 16).map_err(|_| format())?;
        let span_id = u64::from_str_radix(span, 16).map_err(|_| format())?;
        let flags = u8::from_str_radix(flags, 16).map_err(|_| format())?;
        if trace_id == 0 {
            return Err(TraceparentError::ZeroTraceId {
                value: value.to_string(),
            });
        }
        if span_id == 0 {
            return Err(TraceparentError::ZeroSpanId {
                value: value.to_string(),
            });
        }
        Ok(Traceparent {
            trace_id,
            span_id,
            flags,
        })
    }
}

/// The trace id of a task id: its root UUID, or a hash of a root that is none.
///
/// ```
/// use distlog::context::trace_id_of;
/// assert_eq!(
///     trace_id_of("4bf92f35-77b3-4da6-a3ce-929d0e0e4736/2/1"),
///     0x4bf92f3577b34da6a3ce929d0e0e4736
/// );
/// ```
pub fn trace_id_of(task_id: &str) -> u128 {
    let root = task_id.split('/').next().unwrap_or(task_id);
    match uuid::Uuid::try_parse(root) {
        Ok(u) if !u.is_nil() => u.as_u128(),
        _ => nonzero128(fnv1a_128(root.as_bytes())),
    }
}

/// The span id of a task id: 64-bit FNV-1a of the whole id.
///
/// ```
/// use distlog::context::span_id_of;
/// // 64-bit FNV-1a of "abc/1"
/// assert_eq!(span_id_of("abc/1"), 0x63fc_f92d_76bc_9187);
/// ```
pub fn span_id_of(task_id: &str) -> u64 {
    match fnv1a_64(task_id.as_bytes()) {
        0 => 1,
        h => h,
    }
}

fn nonzero128(h: u128) -> u128 {
    if h == 0 {
        1
    } else {
        h
    }
}

impl Task {
    /// The W3C `traceparent` naming this task as the parent span (see the module docs
    /// for the mapping).
    ///
    /// ```
    /// let t = distlog::context::import_task("4bf92f35-77b3-4da6-a3ce-929d0e0e4736/1", "x", ())
    ///     .unwrap()
    ///     .enter();
    /// let tp = t.traceparent();
    /// assert!(tp.starts_with("00-4bf92f3577b34da6a3ce929d0e0e4736-"));
    /// assert_eq!(tp.len(), 55);
    /// ```
    pub fn traceparent(&self) -> String {
        self.trace_context().to_string()
    }

    /// This task as a [`Traceparent`].
    ///
    /// ```
    /// let t = distlog::context::task("t", ()).enter();
    /// let tp = t.trace_context();
    /// assert_eq!(tp.span_id, distlog::context::span_id_of(t.id()));
    /// assert_eq!(tp.flags, 1);
    /// ```
    pub fn trace_context(&self) -> Traceparent {
        Traceparent {
            trace_id: trace_id_of(&self.state.id),
            span_id: span_id_of(&self.state.id),
            flags: self.state.flags,
        }
    }

    /// Opens a task continuing a W3C `traceparent` from OpenTelemetry or another
    /// service (see the module docs for the id it gets). The header is kept in the
    /// task's data as `traceparent`.
    ///
    /// ```
    /// use distlog::context::{Task, TraceparentError};
    /// let t = Task::from_traceparent(
    ///     "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
    ///     "handle request",
    ///     (),
    /// )
    /// .unwrap()
    /// .enter();
    /// assert!(t.id().starts_with("4bf92f35-77b3-4da6-a3ce-929d0e0e4736/00f067aa0ba902b7-"));
    /// assert!(t.traceparent().starts_with("00-4bf92f3577b34da6a3ce929d0e0e4736-"));
    /// let bad = Task::from_traceparent("00-xyz", "x", ()).unwrap_err();
    /// assert!(matches!(bad, TraceparentError::Format { .. }));
    /// ```
    #[track_caller]
    pub fn from_traceparent(
        traceparent: &str,
        msg: impl Into<String>,
        data: impl TaskData,
    ) -> Result<NewTask, TraceparentError> {
        let tp: Traceparent = traceparent.parse()?;
        let root = uuid::Uuid::from_u128(tp.trace_id).hyphenated().to_string();
        let salt = uuid::Uuid::new_v4().as_u128() as u32;
        let id = format!("{root}/{:016x}-{salt:08x}", tp.span_id);
        let mut data = data.into_data();
        data.insert(0, ("traceparent".to_string(), Value::Str(tp.to_string())));
        let mut spec = NewTask::new(id, msg.into(), data, None);
        spec.flags = tp.flags;
        Ok(spec)
    }
}
