//! The handler of the installed global logger, process-wide: the `log` logger sets it
//! once; task and performance messages, which do not go through `log`, read it.

use crate::handler::Handler;
use std::sync::OnceLock;

static GLOBAL_HANDLER: OnceLock<Handler> = OnceLock::new();

/// The handler behind the logger installed by [`crate::LogBuilder::install`], if any.
pub(crate) fn global_handler() -> Option<&'static Handler> {
    GLOBAL_HANDLER.get()
}

/// Records the handler of the logger just installed.
pub(crate) fn set_global_handler(handler: Handler) {
    // Only one logger can ever be installed, so this is the first and only set.
    let _ = GLOBAL_HANDLER.set(handler);
}
