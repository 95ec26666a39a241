//! How a [`TaskFuture`](super::TaskFuture) judges its output. Sealed: the items are
//! `pub` only because the public future type names them, and this module is private,
//! so no user can name or implement them.

use super::exc_text::describe;
use std::fmt;

/// How a [`TaskFuture`](super::TaskFuture) judges its output.
pub trait Outcome<T> {
    /// The `exc_text` of a failure, or `None` for success.
    fn failure(output: &T) -> Option<String>;
}

/// Every output is a success: the outcome of [`InTask::in_task`](super::InTask::in_task).
#[derive(Debug)]
pub struct Plain;

/// An `Err` output is a failure: the outcome of
/// [`InTask::try_in_task`](super::InTask::try_in_task).
#[derive(Debug)]
pub struct Fallible;

impl<T> Outcome<T> for Plain {
    fn failure(_: &T) -> Option<String> {
        None
    }
}

impl<T, E: fmt::Display + fmt::Debug> Outcome<Result<T, E>> for Fallible {
    fn failure(output: &Result<T, E>) -> Option<String> {
        output.as_ref().err().map(|e| describe(e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_an_err_is_a_failure() {
        assert_eq!(<Plain as Outcome<u8>>::failure(&1), None);
        let err: Result<(), String> = Err("late".into());
        assert_eq!(
            <Fallible as Outcome<_>>::failure(&err),
            Some("late".to_string())
        );
        assert_eq!(
            <Fallible as Outcome<_>>::failure(&Ok::<u8, String>(1)),
            None
        );
    }
}
