//! The 3-byte topic frame that leads every distlog message: SYSTEM + KIND + ENCODING.
//!
//! Subscribers filter by topic *prefix*, so the order of the three letters is part of
//! the protocol: `P` is all production traffic, `PL` production log records, `PLJ`
//! those in JSON.

use std::fmt;

/// Which environment a message comes from (topic byte 0).
///
/// ```
/// use distlog::topic::System;
/// assert_eq!(System::Production.letter(), b'P');
/// assert_eq!("staging".parse::<System>().unwrap(), System::Staging);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum System {
    /// `T`: unit and integration test systems.
    Test,
    /// `S`: staging (acceptance) systems.
    Staging,
    /// `P`: production; Python distlog's default.
    #[default]
    Production,
}

/// What the body of a message is (topic byte 1).
///
/// ```
/// use distlog::topic::Kind;
/// assert_eq!(Kind::Performance.letter(), b'P');
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Kind {
    /// `L`: a log record.
    #[default]
    Log,
    /// `P`: a performance measurement.
    Performance,
}

/// How the body of a message is encoded (topic byte 2).
///
/// ```
/// use distlog::topic::Encoding;
/// assert_eq!("pickle".parse::<Encoding>().unwrap(), Encoding::Pickle);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Encoding {
    /// `J`: JSON text, as Python's `json.dumps` writes it.
    #[default]
    Json,
    /// `P`: Python pickle, protocol 3.
    Pickle,
}

macro_rules! letter_enum {
    ($ty:ident, $what:literal, $( $variant:ident = $letter:literal / $word:literal ),+) => {
        impl $ty {
            /// Every value, in the order of the Python package's letter string.
            pub const ALL: &'static [$ty] = &[$($ty::$variant),+];

            /// The ASCII letter this value has in a topic.
            pub const fn letter(self) -> u8 {
                match self { $($ty::$variant => $letter),+ }
            }

            /// The value for a topic letter, if it is one.
            pub const fn from_letter(letter: u8) -> Option<Self> {
                match letter { $($letter => Some($ty::$variant),)+ _ => None }
            }
        }

        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(match self { $($ty::$variant => $word),+ })
            }
        }

        impl std::str::FromStr for $ty {
            type Err = TopicError;

            /// Accepts the letter (`P`) or the word (`production`), in any case.
            fn from_str(s: &str) -> Result<Self, TopicError> {
                $(
                    if s.eq_ignore_ascii_case($word)
                        || s.as_bytes() == [$letter]
                        || s.as_bytes() == [$letter.to_ascii_lowercase()]
                    {
                        return Ok($ty::$variant);
                    }
                )+
                Err(TopicError::UnknownName { what: $what, name: s.to_string() })
            }
        }
    };
}

letter_enum!(
    System,
    "system",
    Test = b'T' / "test",
    Staging = b'S' / "staging",
    Production = b'P' / "production"
);
letter_enum!(
    Kind,
    "kind",
    Log = b'L' / "log",
    Performance = b'P' / "performance"
);
letter_enum!(
    Encoding,
    "encoding",
    Json = b'J' / "json",
    Pickle = b'P' / "pickle"
);

/// A complete topic: the first frame of every message.
///
/// ```
/// use distlog::topic::{Encoding, Kind, System, Topic};
/// let topic = Topic::new(System::Test, Kind::Log, Encoding::Json);
/// assert_eq!(topic.as_bytes(), b"TLJ");
/// assert_eq!(Topic::parse(b"TLJ").unwrap(), topic);
///
/// let err = Topic::parse(b"TXJ").unwrap_err();
/// assert_eq!(err.to_string(), "bad topic byte 'X' (0x58) at position 1: expected a kind, one of L, P");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Topic {
    /// Byte 0.
    pub system: System,
    /// Byte 1.
    pub kind: Kind,
    /// Byte 2.
    pub encoding: Encoding,
}

impl Topic {
    /// A topic from its three parts.
    pub const fn new(system: System, kind: Kind, encoding: Encoding) -> Self {
        Topic {
            system,
            kind,
            encoding,
        }
    }

    /// The three ASCII bytes of the frame.
    pub const fn to_bytes(self) -> [u8; 3] {
        [
            self.system.letter(),
            self.kind.letter(),
            self.encoding.letter(),
        ]
    }

    /// The frame as a static slice: there are only twelve topics, so none is allocated.
    pub fn as_bytes(self) -> &'static [u8] {
        const fn idx(t: Topic) -> usize {
            (t.system as usize) * 4 + (t.kind as usize) * 2 + (t.encoding as usize)
        }
        static ALL: [[u8; 3]; 12] = {
            let mut all = [[0u8; 3]; 12];
            let systems = [System::Test, System::Staging, System::Production];
            let kinds = [Kind::Log, Kind::Performance];
            let encodings = [Encoding::Json, Encoding::Pickle];
            let mut s = 0;
            while s < 3 {
                let mut k = 0;
                while k < 2 {
                    let mut e = 0;
                    while e < 2 {
                        let t = Topic::new(systems[s], kinds[k], encodings[e]);
                        all[idx(t)] = t.to_bytes();
                        e += 1;
                    }
                    k += 1;
                }
                s += 1;
            }
            all
        };
        &ALL[idx(self)]
    }

    /// Parses a topic frame. Anything but exactly three valid letters is an error that
    /// names the offending byte and its position.
    pub fn parse(frame: &[u8]) -> Result<Self, TopicError> {
        if frame.len() != 3 {
            return Err(TopicError::Length(frame.len()));
        }
        let bad = |position: usize, expected: &'static str| TopicError::BadByte {
            byte: frame[position],
            position,
            expected,
        };
        Ok(Topic {
            system: System::from_letter(frame[0])
                .ok_or_else(|| bad(0, "a system, one of T, S, P"))?,
            kind: Kind::from_letter(frame[1]).ok_or_else(|| bad(1, "a kind, one of L, P"))?,
            encoding: Encoding::from_letter(frame[2])
                .ok_or_else(|| bad(2, "an encoding, one of J, P"))?,
        })
    }
}

impl fmt::Display for Topic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = self.to_bytes();
        write!(f, "{}{}{}", b[0] as char, b[1] as char, b[2] as char)
    }
}

impl std::str::FromStr for Topic {
    type Err = TopicError;
    fn from_str(s: &str) -> Result<Self, TopicError> {
        Topic::parse(s.as_bytes())
    }
}

/// Why a topic frame or name was rejected, naming what was wrong.
///
/// ```
/// use distlog::topic::{Topic, TopicError};
/// assert_eq!(Topic::parse(b"TL"), Err(TopicError::Length(2)));
/// let err = Topic::parse(b"TXJ").unwrap_err();
/// assert!(matches!(err, TopicError::BadByte { position: 1, .. }));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum TopicError {
    /// The frame was not three bytes long.
    Length(usize),
    /// A byte was not a letter allowed at its position.
    BadByte {
        /// The offending byte.
        byte: u8,
        /// Its position in the frame, from 0.
        position: usize,
        /// What was allowed there.
        expected: &'static str,
    },
    /// A name given on a command line or in a config did not match any value.
    UnknownName {
        /// `system`, `kind` or `encoding`.
        what: &'static str,
        /// The name as given.
        name: String,
    },
}

impl fmt::Display for TopicError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TopicError::Length(n) => write!(f, "bad topic length {n}: a topic is exactly 3 bytes"),
            TopicError::BadByte {
                byte,
                position,
                expected,
            } => {
                let shown = if byte.is_ascii_graphic() {
                    *byte as char
                } else {
                    '?'
                };
                write!(f, "bad topic byte '{shown}' (0x{byte:02X}) at position {position}: expected {expected}")
            }
            TopicError::UnknownName { what, name } => write!(f, "unknown {what} {name:?}"),
        }
    }
}

impl std::error::Error for TopicError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_twelve_round_trip() {
        let mut seen = std::collections::HashSet::new();
        for &s in System::ALL {
            for &k in Kind::ALL {
                for &e in Encoding::ALL {
                    let t = Topic::new(s, k, e);
                    assert_eq!(t.as_bytes(), &t.to_bytes());
                    assert_eq!(Topic::parse(t.as_bytes()), Ok(t));
                    assert!(seen.insert(t.to_string()));
                }
            }
        }
        assert_eq!(seen.len(), 12);
    }

    #[test]
    fn errors_name_byte_and_position() {
        assert_eq!(Topic::parse(b"TL"), Err(TopicError::Length(2)));
        assert_eq!(Topic::parse(b"TLJX"), Err(TopicError::Length(4)));
        let e = Topic::parse(b"tLJ").unwrap_err();
        assert!(matches!(
            e,
            TopicError::BadByte {
                byte: b't',
                position: 0,
                ..
            }
        ));
        let e = Topic::parse(b"TL\0").unwrap_err();
        assert_eq!(
            e.to_string(),
            "bad topic byte '?' (0x00) at position 2: expected an encoding, one of J, P"
        );
    }
}
