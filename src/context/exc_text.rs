//! The `exc_text` a failed task sends: an error's or a panic's text.

use std::fmt;

/// The text sent in `exc_text` for a panic, from its payload.
pub(super) fn panic_text(payload: &(dyn std::any::Any + Send)) -> String {
    let what = payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "Box<dyn Any>".to_string());
    format!("panic: {what}")
}

/// The text sent in `exc_text` for an error: its Display, then its Debug form (which
/// for `anyhow`-style errors carries the cause chain) when that says more.
pub(crate) fn describe<E: fmt::Display + fmt::Debug + ?Sized>(e: &E) -> String {
    let display = e.to_string();
    let debug = format!("{e:?}");
    if debug == display || debug == format!("{display:?}") {
        display
    } else {
        format!("{display}\n{debug}")
    }
}

/// The text sent in `exc_text` for a `std::error::Error`: its Display, then its Debug
/// form when that says more, then its `source()` chain.
pub(crate) fn describe_error(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = describe(e);
    let mut source = e.source();
    let mut i = 0;
    if source.is_some() {
        text.push_str("\n\nCaused by:");
    }
    while let Some(s) = source {
        text.push_str(&format!("\n    {i}: {s}"));
        i += 1;
        source = s.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn describe_adds_the_debug_form_when_it_says_more() {
        let e = std::io::Error::other("disk full");
        let text = describe(&e);
        assert!(text.starts_with("disk full\n"));
        assert!(text.contains("Custom"));
        assert_eq!(describe("plain"), "plain");
    }

    #[test]
    fn describe_error_follows_the_source_chain() {
        #[derive(Debug)]
        struct Outer(std::io::Error);
        impl fmt::Display for Outer {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("load failed")
            }
        }
        impl std::error::Error for Outer {
            fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
                Some(&self.0)
            }
        }
        let text = describe_error(&Outer(std::io::Error::other("no disk")));
        assert!(text.starts_with("load failed"));
        assert!(text.contains("Caused by:\n    0: no disk"));
    }
}
