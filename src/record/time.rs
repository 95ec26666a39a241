//! Times as Python's `logging` writes them: `created` seconds and `asctime` text.

use std::time::{SystemTime, UNIX_EPOCH};

/// Seconds since the Unix epoch as a float, Python's `time.time()`.
pub(crate) fn epoch_seconds(t: SystemTime) -> f64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => d.as_secs_f64(),
        Err(e) => -e.duration().as_secs_f64(),
    }
}

/// `asctime` text on the stack, cached per thread for the current second, since the
/// local-time conversion is the costly part and records come many to a second.
pub(crate) struct AscTime([u8; 23]);

impl AscTime {
    pub(crate) fn of(t: SystemTime) -> AscTime {
        use std::cell::RefCell;
        thread_local! {
            static LAST: RefCell<(i64, [u8; 19])> = const { RefCell::new((i64::MIN, [0; 19])) };
        }
        let (secs, millis) = match t.duration_since(UNIX_EPOCH) {
            Ok(d) => (d.as_secs() as i64, d.subsec_millis()),
            Err(_) => (0, 0),
        };
        let mut out = [b'0'; 23];
        LAST.with(|last| {
            let mut last = last.borrow_mut();
            if last.0 != secs {
                let full = asctime(t);
                let b = full.as_bytes();
                if b.len() == 23 {
                    last.1.copy_from_slice(&b[..19]);
                    last.0 = secs;
                }
            }
            out[..19].copy_from_slice(&last.1);
        });
        out[19] = b',';
        out[20] = b'0' + (millis / 100) as u8;
        out[21] = b'0' + (millis / 10 % 10) as u8;
        out[22] = b'0' + (millis % 10) as u8;
        AscTime(out)
    }

    pub(crate) fn as_str(&self) -> &str {
        std::str::from_utf8(&self.0).unwrap_or("")
    }
}

/// Formats a time as Python's default `asctime`: `YYYY-MM-DD HH:MM:SS,mmm`, local time.
///
/// ```
/// let s = distlog::record::asctime(std::time::SystemTime::now());
/// assert_eq!(s.len(), 23);
/// assert_eq!(&s[19..20], ",");
/// ```
pub fn asctime(t: SystemTime) -> String {
    let (secs, millis) = match t.duration_since(UNIX_EPOCH) {
        Ok(d) => (d.as_secs() as i64, d.subsec_millis()),
        Err(_) => (0, 0),
    };
    let time = secs as libc::time_t;
    // SAFETY: a zeroed tm is a valid value, and localtime_r only writes into it.
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    // SAFETY: both pointers are valid for the duration of the call.
    let ok = unsafe { !libc::localtime_r(&time, &mut tm).is_null() };
    if !ok {
        return format!("{secs},{millis:03}");
    }
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02},{:03}",
        tm.tm_year + 1900,
        tm.tm_mon + 1,
        tm.tm_mday,
        tm.tm_hour,
        tm.tm_min,
        tm.tm_sec,
        millis
    )
}
