//! Handing a task over to another process: the id handed out, and its check and
//! continuation on the other side.

use super::stack::current_task;
use super::task::{NewTask, Task, TaskData};
use std::fmt;

/// A task id that [`import_task`] refused, naming it.
///
/// ```
/// use distlog::context::{import_task, TaskIdError};
/// let err = import_task("abc/", "x", ()).unwrap_err();
/// assert_eq!(err, TaskIdError::EmptySegment { id: "abc/".into() });
/// assert_eq!(err.to_string(), "task id \"abc/\" has an empty segment");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum TaskIdError {
    /// The id is empty.
    Empty,
    /// The id has an empty segment: it starts or ends with `/`, or has `//`.
    EmptySegment {
        /// The id as given.
        id: String,
    },
    /// The id contains whitespace or a control character.
    BadChar {
        /// The id as given.
        id: String,
        /// The offending character.
        ch: char,
    },
    /// The id is longer than [`MAX_ID_LEN`] bytes.
    TooLong {
        /// The first 64 characters of the id.
        start: String,
        /// Its length in bytes.
        len: usize,
    },
}

/// The longest task id accepted from outside, in bytes.
///
/// ```
/// use distlog::context::{check_task_id, TaskIdError, MAX_ID_LEN};
/// let long = "1/".repeat(MAX_ID_LEN);
/// assert!(matches!(check_task_id(&long), Err(TaskIdError::TooLong { .. })));
/// ```
pub const MAX_ID_LEN: usize = 4096;

impl fmt::Display for TaskIdError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TaskIdError::Empty => write!(f, "the task id is empty"),
            TaskIdError::EmptySegment { id } => {
                write!(f, "task id {id:?} has an empty segment")
            }
            TaskIdError::BadChar { id, ch } => {
                write!(f, "task id {id:?} contains the character {ch:?}")
            }
            TaskIdError::TooLong { start, len } => write!(
                f,
                "task id starting {start:?} is {len} bytes long, more than {MAX_ID_LEN}"
            ),
        }
    }
}

impl std::error::Error for TaskIdError {}

/// Checks the form of a task id received from another process.
///
/// ```
/// use distlog::context::{check_task_id, TaskIdError};
/// assert!(check_task_id("9f0c1d52-7d8e-4f1a-9b8e-2f8d1c3b4a5e/3/1").is_ok());
/// assert!(check_task_id("None/1").is_ok()); // what Python hands out at top level
/// assert!(matches!(check_task_id("a//1"), Err(TaskIdError::EmptySegment { .. })));
/// assert!(matches!(check_task_id("a b"), Err(TaskIdError::BadChar { ch: ' ', .. })));
/// ```
pub fn check_task_id(id: &str) -> Result<(), TaskIdError> {
    if id.is_empty() {
        return Err(TaskIdError::Empty);
    }
    if id.len() > MAX_ID_LEN {
        return Err(TaskIdError::TooLong {
            start: id.chars().take(64).collect(),
            len: id.len(),
        });
    }
    if let Some(ch) = id.chars().find(|c| c.is_whitespace() || c.is_control()) {
        return Err(TaskIdError::BadChar {
            id: id.to_string(),
            ch,
        });
    }
    if id.split('/').any(str::is_empty) {
        return Err(TaskIdError::EmptySegment { id: id.to_string() });
    }
    Ok(())
}

/// Continues, in this process, a task handed over from another one with
/// [`Task::foreign_task_id`] (or Python's `get_foreign_task()`); the id is used as
/// given, after a check of its form.
///
/// ```
/// use distlog::context::{import_task, TaskIdError};
/// let t = import_task("4bf92f35-77b3-4da6-a3ce-929d0e0e4736/3", "child work", ()).unwrap().enter();
/// assert_eq!(t.id(), "4bf92f35-77b3-4da6-a3ce-929d0e0e4736/3");
/// assert_eq!(import_task("", "x", ()).unwrap_err(), TaskIdError::Empty);
/// ```
#[track_caller]
pub fn import_task(
    id: &str,
    msg: impl Into<String>,
    data: impl TaskData,
) -> Result<NewTask, TaskIdError> {
    check_task_id(id)?;
    Ok(NewTask::new(
        id.to_string(),
        msg.into(),
        data.into_data(),
        None,
    ))
}

impl Task {
    /// Hands out the id of a subtask that runs in another process, `<id>/<n>`; pass it
    /// to [`import_task`] there. Numbers are shared with [`to`](super::to), so ids never
    /// collide.
    ///
    /// ```
    /// let t = distlog::context::task("t", ()).enter();
    /// assert_eq!(t.foreign_task_id(), format!("{}/1", t.id()));
    /// assert_eq!(t.subtask("local", ()).id(), format!("{}/2", t.id()));
    /// ```
    pub fn foreign_task_id(&self) -> String {
        format!("{}/{}", self.state.id, self.next_subtask())
    }
}

/// A subtask id for another process (see [`Task::foreign_task_id`]); `None` outside any
/// task.
///
/// ```
/// use distlog::context::{foreign_task_id, task};
/// assert_eq!(foreign_task_id(), None);
/// let t = task("t", ()).enter();
/// assert_eq!(foreign_task_id(), Some(format!("{}/1", t.id())));
/// ```
pub fn foreign_task_id() -> Option<String> {
    current_task().map(|t| t.foreign_task_id())
}
