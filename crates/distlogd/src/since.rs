//! Where `distlog replay --since` starts: an RFC 3339 time, or a span of time ago.
//!
//! ```
//! use distlogd::since::Since;
//! use std::time::{Duration, SystemTime, UNIX_EPOCH};
//!
//! let at: Since = "2024-05-01T12:00:00.5+02:00".parse().unwrap();
//! assert_eq!(
//!     at.resolve(SystemTime::now()).unwrap(),
//!     UNIX_EPOCH + Duration::from_millis(1_714_557_600_500)
//! );
//! let ago: Since = "1h30m".parse().unwrap();
//! assert_eq!(ago, Since::Ago(Duration::from_secs(5400)));
//! assert!("yesterday".parse::<Since>().is_err());
//! ```

use std::fmt;
use std::str::FromStr;
use std::time::{Duration, SystemTime};

/// A start time for a replay.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Since {
    /// This moment.
    At(SystemTime),
    /// This long before the replay starts.
    Ago(Duration),
}

impl Since {
    /// The moment meant, `now` being when the replay starts.
    ///
    /// ```
    /// use distlogd::since::Since;
    /// use std::time::{Duration, UNIX_EPOCH};
    /// let now = UNIX_EPOCH + Duration::from_secs(1000);
    /// assert_eq!(Since::Ago(Duration::from_secs(90)).resolve(now).unwrap(), UNIX_EPOCH + Duration::from_secs(910));
    /// assert!(Since::Ago(Duration::MAX).resolve(now).is_err());
    /// ```
    pub fn resolve(self, now: SystemTime) -> Result<SystemTime, SinceError> {
        match self {
            Since::At(t) => Ok(t),
            Since::Ago(d) => now.checked_sub(d).ok_or_else(|| SinceError {
                value: format_ago(d),
                why: "reaches further back than this system's clock can",
            }),
        }
    }

    /// [`Since::resolve`] as the timestamp async-nats takes.
    pub(crate) fn start_time(self, now: SystemTime) -> Result<time::OffsetDateTime, SinceError> {
        let at = self.resolve(now)?;
        let nanos = match at.duration_since(SystemTime::UNIX_EPOCH) {
            Ok(after) => i128::try_from(after.as_nanos()).ok(),
            Err(before) => i128::try_from(before.duration().as_nanos())
                .ok()
                .map(|n| -n),
        };
        nanos
            .and_then(|n| time::OffsetDateTime::from_unix_timestamp_nanos(n).ok())
            .ok_or_else(|| SinceError {
                value: match self {
                    Since::Ago(d) => format_ago(d),
                    Since::At(_) => format!("{at:?}"),
                },
                why: "is outside the years -9999 to 9999",
            })
    }
}

/// How an [`Since::Ago`] that cannot be resolved is named in its error.
fn format_ago(d: Duration) -> String {
    format!("{}s", d.as_secs())
}

/// A `--since` value that is neither an RFC 3339 time nor a span like `90s`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SinceError {
    /// The value as given.
    pub value: String,
    why: &'static str,
}

impl fmt::Display for SinceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "bad start time {:?}: {}; expected an RFC 3339 time (2024-05-01T12:00:00Z) or a time ago (90s, 10m, 2h, 1d, 1h30m)",
            self.value, self.why
        )
    }
}

impl std::error::Error for SinceError {}

impl FromStr for Since {
    type Err = SinceError;

    fn from_str(s: &str) -> Result<Since, SinceError> {
        let value = s.trim();
        let error = |why| SinceError {
            value: s.to_string(),
            why,
        };
        if value.is_empty() {
            return Err(error("it is empty"));
        }
        // A time has a date, so a dash after its first digit; a span never does.
        if value.contains('-') {
            use time::format_description::well_known::Rfc3339;
            let t = time::OffsetDateTime::parse(value, &Rfc3339)
                .map_err(|_| error("not an RFC 3339 time"))?;
            return Ok(Since::At(t.into()));
        }
        parse_ago(value).map(Since::Ago).map_err(error)
    }
}

/// A span of whole numbers each with its unit, largest first or not: `90s`, `1h30m`.
fn parse_ago(value: &str) -> Result<Duration, &'static str> {
    let mut total: u64 = 0;
    let mut rest = value;
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return Err("a span is numbers each followed by s, m, h or d");
        }
        let (number, tail) = rest.split_at(digits);
        let unit_len = tail.chars().next().map_or(0, char::len_utf8);
        let (unit, tail) = tail.split_at(unit_len);
        let seconds: u64 = match unit {
            "s" => 1,
            "m" => 60,
            "h" => 3600,
            "d" => 86_400,
            "" => return Err("a number needs a unit: s, m, h or d"),
            _ => return Err("the units are s, m, h and d"),
        };
        let n: u64 = number.parse().map_err(|_| "the number is too large")?;
        total = n
            .checked_mul(seconds)
            .and_then(|s| total.checked_add(s))
            .ok_or("the span is too long")?;
        rest = tail;
    }
    Ok(Duration::from_secs(total))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::UNIX_EPOCH;

    #[test]
    fn spans() {
        for (s, secs) in [
            ("90s", 90),
            ("10m", 600),
            ("2h", 7200),
            ("1d", 86_400),
            ("1h30m", 5400),
            (" 5s ", 5),
            ("0s", 0),
        ] {
            assert_eq!(s.parse(), Ok(Since::Ago(Duration::from_secs(secs))), "{s}");
        }
    }

    #[test]
    fn times() {
        let t = |s: &str| match s.parse::<Since>() {
            Ok(Since::At(t)) => t,
            other => panic!("{s}: {other:?}"),
        };
        assert_eq!(
            t("1970-01-01T00:00:10Z"),
            UNIX_EPOCH + Duration::from_secs(10)
        );
        assert_eq!(
            t("1970-01-01T01:00:10+01:00"),
            UNIX_EPOCH + Duration::from_secs(10)
        );
        assert_eq!(
            t("2024-05-01t12:00:00.25z"),
            UNIX_EPOCH + Duration::from_millis(1_714_564_800_250)
        );
    }

    #[test]
    fn bad_values_are_named() {
        for bad in [
            "",
            "90",
            "10x",
            "m",
            "1.5h",
            "-5m",
            "2024-13-01T00:00:00Z",
            "2024-05-01",
            "2024-05-01T12:00:00",
            "99999999999999999999s",
            "999999999999999999d",
            "5µ",
        ] {
            let e = bad.parse::<Since>().expect_err(bad);
            assert_eq!(e.value, bad);
            assert!(e.to_string().contains(&format!("{bad:?}")), "{e}");
        }
    }
}
