//! The keys every Python distlog record has, and telling them apart from extra keys.

/// The keys every Python distlog record has, in the order Python 3.11 emits them.
/// `context`, extra keys, then `message`, `asctime` and `hostname` follow `process`.
pub(crate) const STANDARD_KEYS: [&str; 25] = [
    "name",
    "msg",
    "args",
    "levelname",
    "levelno",
    "pathname",
    "filename",
    "module",
    "exc_info",
    "exc_text",
    "stack_info",
    "lineno",
    "funcName",
    "created",
    "msecs",
    "relativeCreated",
    "thread",
    "threadName",
    "processName",
    "process",
    "context",
    "message",
    "asctime",
    "hostname",
    "taskName",
];

/// The index of `key` in [`STANDARD_KEYS`], if it is one. Extra keys are looked up on
/// every record, so the names are told apart by length and first byte before any
/// comparison of their text.
pub(crate) fn standard_index(key: &str) -> Option<usize> {
    standard_index_of(key.as_bytes())
}

/// [`standard_index`] of raw bytes, as decoders hold keys: only the standard keys of
/// the same length are compared, first byte first.
pub(crate) fn standard_index_of(raw: &[u8]) -> Option<usize> {
    /// Which standard keys (bit `i` for `STANDARD_KEYS[i]`) have each length.
    static BY_LEN: [u32; 16] = {
        let mut by_len = [0u32; 16];
        let mut i = 0;
        while i < STANDARD_KEYS.len() {
            by_len[STANDARD_KEYS[i].len()] |= 1 << i;
            i += 1;
        }
        by_len
    };
    let mut candidates = *BY_LEN.get(raw.len())?;
    while candidates != 0 {
        let i = candidates.trailing_zeros() as usize;
        let key = STANDARD_KEYS[i].as_bytes();
        if key.first() == raw.first() && key == raw {
            return Some(i);
        }
        candidates &= candidates - 1;
    }
    None
}
