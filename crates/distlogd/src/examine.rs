//! Examining one received `[topic, body]` message: its size, its topic, and its body
//! checked or decoded. The receive loop and the receive lanes both do it, so that the
//! lanes can do it on threads of their own.

use crate::batch::Verdict;
use distlog::serialize::{decode_message, decode_with, json, Limits, MessageError};
use distlog::topic::{Encoding, Topic};
use distlog::Record;
use zeromq::ZmqMessage;

/// What examining a message found out.
pub(crate) enum Examined {
    /// Decoded, for sinks that look inside it.
    Record(Record),
    /// A JSON body, checked or validated, not decoded.
    Body(Verdict),
    /// Valid; nothing is written, so nothing more was found out.
    Valid,
}

/// Why a message is rejected: the reason counted, and what is reported.
pub(crate) struct Rejection {
    pub(crate) reason: &'static str,
    pub(crate) what: String,
}

/// How messages are examined, decided from the sinks once at start.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Examiner {
    pub(crate) limits: Limits,
    pub(crate) max_body_bytes: usize,
    /// Check JSON bodies instead of decoding them: no filter or format needs records.
    pub(crate) check_only: bool,
    /// Some sink writes records; without one only the verdict is needed.
    pub(crate) writes: bool,
    /// Keep each body as received beside its record, for the nats sink.
    pub(crate) keep_bodies: bool,
    /// Some sink copies canonical JSON bodies as they came (JSON lines): whether a
    /// body is canonical must be found out.
    pub(crate) copies_bodies: bool,
}

impl Examiner {
    /// Refuses an oversize body before any decoding, then validates the message: its
    /// topic, and its body checked (a canonical JSON body, when nothing needs the
    /// record) or decoded.
    pub(crate) fn examine(&self, message: &ZmqMessage) -> Result<(Topic, Examined), Rejection> {
        if let (2, Some(body)) = (message.len(), message.get(1)) {
            if body.len() > self.max_body_bytes {
                return Err(Rejection {
                    reason: crate::stats::OVERSIZE,
                    what: format!(
                        "body of {} bytes exceeds max_body_bytes {}",
                        body.len(),
                        self.max_body_bytes
                    ),
                });
            }
        }
        self.validate(message).map_err(|e| Rejection {
            reason: e.reason(),
            what: e.to_string(),
        })
    }

    fn validate(&self, message: &ZmqMessage) -> Result<(Topic, Examined), MessageError> {
        let limits = &self.limits;
        let (Some(topic), Some(body), 2) = (message.get(0), message.get(1), message.len()) else {
            let frames: Vec<&[u8]> = message.iter().map(|f| f.as_ref()).collect();
            return decode_message(&frames, limits).map(|(t, r)| (t, Examined::Record(r)));
        };
        let topic = Topic::parse(topic).map_err(MessageError::Topic)?;
        if self.check_only && topic.encoding == Encoding::Json {
            if !self.writes {
                // Nothing is written: the verdict is all that is needed.
                json::validate_record(body, limits).map_err(MessageError::Body)?;
                return Ok((topic, Examined::Valid));
            }
            if self.keep_bodies && !self.copies_bodies {
                // Only the nats sink takes the body, as it came: its subject needs the
                // logger's name, not whether the body is canonical.
                let named = json::validate_named(body, limits).map_err(MessageError::Body)?;
                if named.plain_name(body).is_some() {
                    return Ok((topic, Examined::Body(Verdict::Named(named))));
                }
            } else {
                let checked = json::check_record(body, limits).map_err(MessageError::Body)?;
                // The nats sink names the logger in the subject: a name that checking
                // could not read (escaped, or not a string) takes decoding.
                if checked.canonical && (!self.keep_bodies || checked.plain_name(body).is_some()) {
                    return Ok((topic, Examined::Body(Verdict::Canonical(checked))));
                }
            }
        }
        let record = decode_with(body, topic.encoding, limits).map_err(MessageError::Body)?;
        Ok((topic, Examined::Record(record)))
    }
}
