//! Z85 (ZeroMQ RFC 32): the text form of CURVE keys, as `zmq_curve_keypair` and
//! pyzmq's `zmq.curve_keypair()` write them (40 characters for a 32-byte key).
//!
//! distlog patch (CURVE). Every malformed input is an error that names what is
//! wrong (the length, or the character and where it is); nothing here panics.

use std::fmt;

/// RFC 32's alphabet: the value of a digit is its index here.
const ALPHABET: &[u8; 85] =
    b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.-:+=^!/*?&<>()[]{}@%$#";

/// What was wrong with a Z85 input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Z85Error {
    /// Z85 encodes whole groups of 4 bytes; `len` is not a multiple of 4.
    BinaryLength { len: usize },
    /// Z85 text comes in whole groups of 5 characters; `len` is not a multiple of 5.
    TextLength { len: usize },
    /// A character outside RFC 32's alphabet, at byte offset `position`.
    BadCharacter { character: char, position: usize },
    /// The group of 5 characters starting at `position` stands for more than 2^32 - 1.
    GroupOverflow { position: usize },
    /// A key must be exactly 32 bytes (40 Z85 characters); this one is `len` bytes.
    KeyLength { len: usize },
}

impl fmt::Display for Z85Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Z85Error::BinaryLength { len } => {
                write!(f, "Z85: {len} bytes is not a multiple of 4")
            }
            Z85Error::TextLength { len } => {
                write!(f, "Z85: {len} characters is not a multiple of 5")
            }
            Z85Error::BadCharacter {
                character,
                position,
            } => write!(
                f,
                "Z85: character {character:?} at position {position} is not in the Z85 alphabet"
            ),
            Z85Error::GroupOverflow { position } => write!(
                f,
                "Z85: the group of 5 characters at position {position} exceeds 32 bits"
            ),
            Z85Error::KeyLength { len } => write!(
                f,
                "Z85: a CURVE key is 32 bytes (40 characters), this one decodes to {len} bytes"
            ),
        }
    }
}

impl std::error::Error for Z85Error {}

/// Encodes `data` (a multiple of 4 bytes long) as Z85 text.
pub fn encode(data: &[u8]) -> Result<String, Z85Error> {
    if !data.len().is_multiple_of(4) {
        return Err(Z85Error::BinaryLength { len: data.len() });
    }
    let mut out = String::with_capacity(data.len() / 4 * 5);
    for chunk in data.chunks_exact(4) {
        let mut value = u32::from_be_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
        let mut digits = [0u8; 5];
        for digit in digits.iter_mut().rev() {
            *digit = ALPHABET[(value % 85) as usize];
            value /= 85;
        }
        // The alphabet is ASCII, so each digit is one char.
        out.extend(digits.iter().map(|&d| d as char));
    }
    Ok(out)
}

/// The value of one Z85 digit, `None` outside the alphabet.
fn digit_value(c: u8) -> Option<u32> {
    ALPHABET.iter().position(|&a| a == c).map(|v| v as u32)
}

/// Decodes Z85 text (a multiple of 5 characters long).
pub fn decode(text: &str) -> Result<Vec<u8>, Z85Error> {
    // Look for a character outside the alphabet first, so that a non-ASCII
    // character is named rather than reported as a bad length.
    for (position, character) in text.char_indices() {
        if !character.is_ascii() || digit_value(character as u8).is_none() {
            return Err(Z85Error::BadCharacter {
                character,
                position,
            });
        }
    }
    let bytes = text.as_bytes();
    if !bytes.len().is_multiple_of(5) {
        return Err(Z85Error::TextLength { len: bytes.len() });
    }
    let mut out = Vec::with_capacity(bytes.len() / 5 * 4);
    for (group, chunk) in bytes.chunks_exact(5).enumerate() {
        let mut value: u64 = 0;
        for &c in chunk {
            // Every character was checked above; 0 is unreachable but keeps this total.
            value = value * 85 + u64::from(digit_value(c).unwrap_or(0));
        }
        let value = u32::try_from(value).map_err(|_| Z85Error::GroupOverflow {
            position: group * 5,
        })?;
        out.extend_from_slice(&value.to_be_bytes());
    }
    Ok(out)
}

/// Decodes a 40-character Z85 CURVE key into its 32 bytes.
pub fn decode_key(text: &str) -> Result<[u8; 32], Z85Error> {
    let bytes = decode(text)?;
    <[u8; 32]>::try_from(bytes.as_slice()).map_err(|_| Z85Error::KeyLength { len: bytes.len() })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc32_test_vector() {
        let bytes = [0x86, 0x4F, 0xD2, 0x6F, 0xB5, 0x59, 0xF7, 0x5B];
        assert_eq!(encode(&bytes).unwrap(), "HelloWorld");
        assert_eq!(decode("HelloWorld").unwrap(), bytes);
    }

    #[test]
    fn round_trips_every_byte_value() {
        let data: Vec<u8> = (0..=255u8).collect();
        let text = encode(&data).unwrap();
        assert_eq!(text.len(), 320);
        assert_eq!(decode(&text).unwrap(), data);
        // The extremes of a group.
        assert_eq!(encode(&[0; 4]).unwrap(), "00000");
        assert_eq!(encode(&[0xff; 4]).unwrap(), "%nSc0");
        assert_eq!(decode("%nSc0").unwrap(), [0xff; 4]);
    }

    #[test]
    fn rejects_bad_lengths() {
        assert_eq!(encode(&[1, 2, 3]), Err(Z85Error::BinaryLength { len: 3 }));
        assert_eq!(decode("Hello1"), Err(Z85Error::TextLength { len: 6 }));
        assert_eq!(
            decode_key("HelloWorld"),
            Err(Z85Error::KeyLength { len: 8 })
        );
    }

    #[test]
    fn names_the_bad_character_and_its_position() {
        let err = decode("Hell\"World").unwrap_err();
        assert_eq!(
            err,
            Z85Error::BadCharacter {
                character: '"',
                position: 4
            }
        );
        assert!(err.to_string().contains("position 4"), "{err}");
        // A non-ASCII character is named too, not taken apart into bytes.
        assert!(matches!(
            decode("Hellé"),
            Err(Z85Error::BadCharacter {
                character: 'é',
                position: 4
            })
        ));
    }

    #[test]
    fn rejects_a_group_over_32_bits() {
        // "%nSc1" is 2^32, one more than the largest group.
        assert_eq!(
            decode("00000%nSc1"),
            Err(Z85Error::GroupOverflow { position: 5 })
        );
    }

    #[test]
    fn decodes_a_libzmq_key() {
        // The server public key of libzmq's test suite (tests/testutil_security.cpp).
        let key = decode_key("rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7").unwrap();
        assert_eq!(
            encode(&key).unwrap(),
            "rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7"
        );
    }
}
