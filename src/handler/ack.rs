//! Acknowledged delivery, the producer's half of protocol version 1 (README,
//! "Acknowledged delivery"): the header in front of each record, the acknowledgements
//! that come back, and which seqs are settled.

use std::collections::VecDeque;

/// The header's first bytes: `DLA` and the protocol version.
pub(crate) const HEADER_MAGIC: [u8; 4] = *b"DLA\x01";
/// An acknowledgement's first bytes: `DLK` and the protocol version.
pub(crate) const ACK_MAGIC: [u8; 4] = *b"DLK\x01";
pub(crate) const HEADER_LEN: usize = 37;
pub(crate) const ACK_LEN: usize = 28;
/// Header flag: the producer has a single endpoint, so a collector may count a seq
/// below the base that it never saw as lost.
pub(crate) const FLAG_SINGLE_ENDPOINT: u8 = 1;
/// Where the seq sits in a framed message: after the header frame's flag and
/// one-byte length (the header is a short frame), the magic and the producer id.
const SEQ_AT: usize = 2 + 4 + 16;

/// A random producer id, new for each handler instance.
pub(crate) fn new_producer_id() -> [u8; 16] {
    uuid::Uuid::new_v4().into_bytes()
}

/// Appends the 37-byte header of record `seq`.
pub(crate) fn write_header(out: &mut Vec<u8>, producer: &[u8; 16], seq: u64, base: u64, flags: u8) {
    out.extend_from_slice(&HEADER_MAGIC);
    out.extend_from_slice(producer);
    out.extend_from_slice(&seq.to_be_bytes());
    out.extend_from_slice(&base.to_be_bytes());
    out.push(flags);
}

/// The seq of a message framed with a header by the worker; `None` for anything else.
pub(crate) fn seq_of(message: &[u8]) -> Option<u64> {
    if message.get(1) != Some(&(HEADER_LEN as u8)) || message.get(2..6) != Some(&HEADER_MAGIC[..]) {
        return None;
    }
    let seq = message.get(SEQ_AT..SEQ_AT + 8)?;
    Some(u64::from_be_bytes(seq.try_into().ok()?))
}

/// Why an acknowledgement was not taken.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum AckError {
    /// Not one frame of 28 bytes.
    Shape { frames: usize, len: usize },
    /// Not `DLK` and a version this producer knows.
    Magic([u8; 4]),
    /// Meant for another producer.
    Producer,
}

/// The seq an acknowledgement names, if it is a version 1 acknowledgement for
/// `producer`.
pub(crate) fn parse_ack(
    message: &zeromq::ZmqMessage,
    producer: &[u8; 16],
) -> Result<u64, AckError> {
    let frame = match (message.len(), message.get(0)) {
        (1, Some(f)) if f.len() == ACK_LEN => f,
        (frames, f) => {
            return Err(AckError::Shape {
                frames,
                len: f.map_or(0, |f| f.len()),
            })
        }
    };
    let (magic, rest) = frame.split_at(4);
    if magic != ACK_MAGIC {
        let mut m = [0; 4];
        m.copy_from_slice(magic);
        return Err(AckError::Magic(m));
    }
    let (id, seq) = rest.split_at(16);
    if id != producer {
        return Err(AckError::Producer);
    }
    let mut s = [0; 8];
    s.copy_from_slice(seq);
    Ok(u64::from_be_bytes(s))
}

/// Which seqs are settled (acknowledged, or counted as dropped): the base is the
/// lowest that is not. Acknowledgements come in any order across links.
#[derive(Debug, Default)]
pub(crate) struct Settled {
    base: u64,
    /// From `base` on: whether each seq issued so far is settled.
    done: VecDeque<bool>,
}

impl Settled {
    /// A new seq was issued (seqs are issued in order, from 0).
    pub(crate) fn issue(&mut self) -> u64 {
        let seq = self.base + self.done.len() as u64;
        self.done.push_back(false);
        seq
    }

    pub(crate) fn settle(&mut self, seq: u64) {
        let Some(i) = seq.checked_sub(self.base) else {
            return;
        };
        if let Some(d) = usize::try_from(i).ok().and_then(|i| self.done.get_mut(i)) {
            *d = true;
        }
        while self.done.front() == Some(&true) {
            self.done.pop_front();
            self.base += 1;
        }
    }

    pub(crate) fn base(&self) -> u64 {
        self.base
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::handler::link::append_frame;
    use bytes::Bytes;

    #[test]
    fn the_seq_is_read_back_from_a_framed_message() {
        let id = [7u8; 16];
        let mut m = Vec::new();
        append_frame(&mut m, true, |out| {
            write_header(out, &id, 0x0102_0304_0506_0708, 5, 1)
        });
        append_frame(&mut m, true, |out| out.extend_from_slice(b"PLJ"));
        append_frame(&mut m, false, |out| out.extend_from_slice(&[b'x'; 300]));
        assert_eq!(
            &m[..2],
            &[1, HEADER_LEN as u8],
            "a short frame with more after it"
        );
        assert_eq!(seq_of(&m), Some(0x0102_0304_0506_0708));
        assert_eq!(m[2 + 36], 1, "flags last");
        assert_eq!(
            &m[2 + 28..2 + 36],
            &5u64.to_be_bytes(),
            "base before the flags"
        );
        assert_eq!(seq_of(&m[..10]), None, "truncated");
        let mut plain = Vec::new();
        append_frame(&mut plain, true, |out| out.extend_from_slice(b"PLJ"));
        assert_eq!(seq_of(&plain), None);
    }

    #[test]
    fn acknowledgements_are_parsed_strictly() {
        let id = [3u8; 16];
        let ack = |bytes: Vec<u8>| zeromq::ZmqMessage::from(Bytes::from(bytes));
        let mut good = ACK_MAGIC.to_vec();
        good.extend_from_slice(&id);
        good.extend_from_slice(&42u64.to_be_bytes());
        assert_eq!(parse_ack(&ack(good.clone()), &id), Ok(42));
        assert_eq!(
            parse_ack(&ack(good.clone()), &[4u8; 16]),
            Err(AckError::Producer)
        );
        let mut v2 = good.clone();
        v2[3] = 2;
        assert_eq!(parse_ack(&ack(v2), &id), Err(AckError::Magic(*b"DLK\x02")));
        assert_eq!(
            parse_ack(&ack(good[..27].to_vec()), &id),
            Err(AckError::Shape { frames: 1, len: 27 })
        );
    }

    #[test]
    fn the_base_waits_for_the_lowest_unsettled_seq() {
        let mut s = Settled::default();
        let seqs: Vec<u64> = (0..5).map(|_| s.issue()).collect();
        assert_eq!(seqs, [0, 1, 2, 3, 4]);
        s.settle(1);
        s.settle(3);
        assert_eq!(s.base(), 0);
        s.settle(0);
        assert_eq!(s.base(), 2);
        s.settle(2);
        assert_eq!(s.base(), 4);
        s.settle(2); // again, and below the base: nothing changes
        s.settle(99); // never issued
        assert_eq!(s.base(), 4);
        s.settle(4);
        assert_eq!(s.base(), 5);
        assert_eq!(s.issue(), 5);
    }
}
