//! The acknowledged-delivery protocol, version 1, as the collector reads and writes it
//! (the README's "Acknowledged delivery"): the 37-byte record header a producer's
//! DEALER puts before `[topic, body]`, and the 28-byte acknowledgement that goes back.
//!
//! ```
//! use distlogd::ack::{ack_frame, AckHeader, HEADER_LEN};
//! let mut h = [0u8; HEADER_LEN];
//! h[..4].copy_from_slice(b"DLA\x01");
//! h[4..20].copy_from_slice(&[7; 16]);
//! h[20..28].copy_from_slice(&17u64.to_be_bytes());
//! h[28..36].copy_from_slice(&10u64.to_be_bytes());
//! h[36] = 1;
//! let header = AckHeader::parse(&h).unwrap();
//! assert_eq!((header.seq, header.base, header.single_endpoint()), (17, 10, true));
//! let ack = ack_frame(&header.producer, 17);
//! assert_eq!(&ack[..4], b"DLK\x01");
//! assert_eq!(&ack[20..], &17u64.to_be_bytes());
//! ```

use std::fmt;

/// The protocol version this collector speaks.
pub const VERSION: u8 = 1;
/// Bytes in a record header.
pub const HEADER_LEN: usize = 37;
/// Bytes in an acknowledgement.
pub const ACK_LEN: usize = 28;
/// Reason name for a header of the wrong length or without the `DLA` magic.
pub const REASON_HEADER: &str = "ack_header";
/// Reason name for a header of a version this collector does not know.
pub const REASON_VERSION: &str = "ack_version";

const HEADER_MAGIC: &[u8; 3] = b"DLA";
const ACK_MAGIC: &[u8; 3] = b"DLK";
/// Flags bit 0: the producer has a single endpoint, so a seq it numbered that never
/// arrived here was lost.
const FLAG_SINGLE_ENDPOINT: u8 = 1;

/// A producer id: 128 random bits, new for each handler instance.
pub type ProducerId = [u8; 16];

/// A parsed record header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct AckHeader {
    /// Which handler instance sent the record.
    pub producer: ProducerId,
    /// The record's number, from 0 per producer.
    pub seq: u64,
    /// Every seq below it was acknowledged or dropped when the record was framed.
    pub base: u64,
    /// The flags byte as sent (unknown bits are kept, and ignored).
    pub flags: u8,
}

impl AckHeader {
    /// Parses a header frame strictly: exactly [`HEADER_LEN`] bytes, `DLA` and
    /// version [`VERSION`].
    ///
    /// ```
    /// use distlogd::ack::{AckHeader, AckHeaderError};
    /// assert_eq!(AckHeader::parse(b"DLA"), Err(AckHeaderError::Length(3)));
    /// let mut h = [0u8; 37];
    /// h[..4].copy_from_slice(b"DLA\x02");
    /// assert_eq!(AckHeader::parse(&h), Err(AckHeaderError::Version(2)));
    /// ```
    pub fn parse(frame: &[u8]) -> Result<AckHeader, AckHeaderError> {
        let Ok(h) = <&[u8; HEADER_LEN]>::try_from(frame) else {
            return Err(AckHeaderError::Length(frame.len()));
        };
        if &h[..3] != HEADER_MAGIC {
            let mut magic = [0; 3];
            magic.copy_from_slice(&h[..3]);
            return Err(AckHeaderError::Magic(magic));
        }
        if h[3] != VERSION {
            return Err(AckHeaderError::Version(h[3]));
        }
        let mut producer = [0; 16];
        producer.copy_from_slice(&h[4..20]);
        let mut seq = [0; 8];
        seq.copy_from_slice(&h[20..28]);
        let mut base = [0; 8];
        base.copy_from_slice(&h[28..36]);
        Ok(AckHeader {
            producer,
            seq: u64::from_be_bytes(seq),
            base: u64::from_be_bytes(base),
            flags: h[36],
        })
    }

    /// Whether the producer said it has a single endpoint (flags bit 0): only then is
    /// a seq below its base that never arrived counted as a gap.
    pub fn single_endpoint(&self) -> bool {
        self.flags & FLAG_SINGLE_ENDPOINT != 0
    }
}

/// Why a header frame was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum AckHeaderError {
    /// Not [`HEADER_LEN`] bytes: the length it had (0 when the frame is missing).
    Length(usize),
    /// The first three bytes, which are not `DLA`.
    Magic([u8; 3]),
    /// A version this collector does not know.
    Version(u8),
}

impl AckHeaderError {
    /// The reason the rejection is counted under: [`REASON_VERSION`] for an unknown
    /// version, [`REASON_HEADER`] otherwise.
    ///
    /// ```
    /// use distlogd::ack::AckHeaderError;
    /// assert_eq!(AckHeaderError::Version(9).reason(), "ack_version");
    /// assert_eq!(AckHeaderError::Length(36).reason(), "ack_header");
    /// ```
    pub fn reason(&self) -> &'static str {
        match self {
            AckHeaderError::Version(_) => REASON_VERSION,
            AckHeaderError::Length(_) | AckHeaderError::Magic(_) => REASON_HEADER,
        }
    }
}

impl fmt::Display for AckHeaderError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AckHeaderError::Length(n) => {
                write!(
                    f,
                    "acknowledged-delivery header of {n} bytes, expected {HEADER_LEN}"
                )
            }
            AckHeaderError::Magic(m) => write!(
                f,
                "acknowledged-delivery header starts with {:?}, expected \"DLA\"",
                String::from_utf8_lossy(m)
            ),
            AckHeaderError::Version(v) => write!(
                f,
                "acknowledged-delivery version {v} is unknown; this collector speaks {VERSION}"
            ),
        }
    }
}

impl std::error::Error for AckHeaderError {}

/// The acknowledgement frame: `DLK`, the version, the producer id and `seq`
/// big-endian. It says every record the connection carried up to `seq` is held.
///
/// ```
/// let ack = distlogd::ack::ack_frame(&[0xab; 16], 1);
/// assert_eq!(ack.len(), 28);
/// assert_eq!(ack[27], 1);
/// ```
pub fn ack_frame(producer: &ProducerId, seq: u64) -> [u8; ACK_LEN] {
    let mut out = [0; ACK_LEN];
    out[..3].copy_from_slice(ACK_MAGIC);
    out[3] = VERSION;
    out[4..20].copy_from_slice(producer);
    out[20..].copy_from_slice(&seq.to_be_bytes());
    out
}

/// Where an acknowledged record came from, as its JSON line names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Origin {
    /// The producer id.
    pub producer: ProducerId,
    /// The record's seq.
    pub seq: u64,
}

impl Origin {
    /// The origin of a record from `producer` numbered `seq`.
    ///
    /// ```
    /// let o = distlogd::ack::Origin::new([1; 16], 5);
    /// assert_eq!(o.seq, 5);
    /// ```
    pub fn new(producer: ProducerId, seq: u64) -> Origin {
        Origin { producer, seq }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(version: u8) -> [u8; HEADER_LEN] {
        let mut h = [0u8; HEADER_LEN];
        h[..3].copy_from_slice(b"DLA");
        h[3] = version;
        for (i, b) in h[4..20].iter_mut().enumerate() {
            *b = i as u8;
        }
        h[20..28].copy_from_slice(&0x0102_0304_0506_0708u64.to_be_bytes());
        h[28..36].copy_from_slice(&0x0102_0304_0506_0700u64.to_be_bytes());
        h[36] = 0xfe;
        h
    }

    #[test]
    fn parses_every_field_big_endian() {
        let h = AckHeader::parse(&header(1)).unwrap();
        assert_eq!(h.producer, core::array::from_fn(|i| i as u8));
        assert_eq!(h.seq, 0x0102_0304_0506_0708);
        assert_eq!(h.base, 0x0102_0304_0506_0700);
        assert_eq!(h.flags, 0xfe);
        assert!(!h.single_endpoint(), "bit 0 is clear in 0xfe");
    }

    #[test]
    fn refuses_what_is_not_version_1() {
        assert_eq!(AckHeader::parse(&[]), Err(AckHeaderError::Length(0)));
        assert_eq!(
            AckHeader::parse(&header(1)[..36]),
            Err(AckHeaderError::Length(36))
        );
        let mut long = header(1).to_vec();
        long.push(0);
        assert_eq!(AckHeader::parse(&long), Err(AckHeaderError::Length(38)));
        let mut bad = header(1);
        bad[0] = b'X';
        assert_eq!(AckHeader::parse(&bad), Err(AckHeaderError::Magic(*b"XLA")));
        assert_eq!(
            AckHeader::parse(&header(0)),
            Err(AckHeaderError::Version(0))
        );
        assert_eq!(
            AckHeader::parse(&header(2)).unwrap_err().reason(),
            "ack_version"
        );
        assert_eq!(AckHeader::parse(&bad).unwrap_err().reason(), "ack_header");
    }

    #[test]
    fn ack_layout() {
        let ack = ack_frame(&[9; 16], 0x0a0b);
        assert_eq!(&ack[..4], b"DLK\x01");
        assert_eq!(&ack[4..20], &[9; 16]);
        assert_eq!(&ack[20..], &[0, 0, 0, 0, 0, 0, 0x0a, 0x0b]);
    }
}
