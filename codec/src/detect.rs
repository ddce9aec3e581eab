//! Telling Kafka from other protocols on the first frame of a connection.
//!
//! A Kafka sidecar also sees streams that are not Kafka: clients speaking Kafka over TLS through the
//! sidecar, health checks, port scanners. Read as Kafka, a TLS ClientHello (`16 03 01 ..`) claims a
//! ~352 MiB frame and HTTP's `GET ` claims ~1.2 GiB; closing such a connection for an oversized
//! frame would break a healthy TLS client. So the first frame of a connection is judged here: if it
//! cannot be a Kafka request, the filter stops decoding and passes the stream through.

use crate::api::{self, ApiSupport};
use crate::frame::{FrameError, FrameStart};
use crate::header;

/// What the first bytes of a connection look like when they are not Kafka.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotKafka {
    /// A TLS record header (handshake content type 0x16, major version 3).
    Tls,
    /// An HTTP/1 request line or the HTTP/2 connection preface.
    Http,
    /// Anything else: a size or header no Kafka client sends.
    Unknown,
}

impl NotKafka {
    /// Label for metrics and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            NotKafka::Tls => "tls",
            NotKafka::Http => "http",
            NotKafka::Unknown => "unknown",
        }
    }
}

/// The highest API version accepted on a first frame. Above what the codec knows, so a newer
/// client's first request is still Kafka, but well below what random bytes produce.
const MAX_PLAUSIBLE_VERSION: i16 = 64;

fn classify_bytes(first: [u8; 4]) -> NotKafka {
    match first {
        [0x16, 0x03, minor, _] if minor <= 0x04 => NotKafka::Tls,
        [a, b, c, d] if [a, b, c, d].iter().all(|x| x.is_ascii_uppercase() || *x == b' ') => NotKafka::Http,
        _ => NotKafka::Unknown,
    }
}

/// Judges a framing error on the first frame of a connection: a first frame that is too large or
/// too small means the stream is not Kafka, never a Kafka client misbehaving.
pub fn classify_first_frame_error(error: &FrameError) -> Option<NotKafka> {
    match *error {
        FrameError::TooLarge { index: 0, size_bytes, .. } | FrameError::TooSmall { index: 0, size_bytes, .. } => {
            Some(classify_bytes(size_bytes))
        }
        _ => None,
    }
}

/// Judges the first request frame of a connection: `None` if it is plausibly Kafka.
pub fn classify_first_request(start: &FrameStart) -> Option<NotKafka> {
    let Ok(id) = header::request_id(&start.prefix) else {
        return Some(NotKafka::Unknown);
    };
    if matches!(api::support(id.api_key, id.api_version), ApiSupport::UnknownApi)
        || !(0..=MAX_PLAUSIBLE_VERSION).contains(&id.api_version)
    {
        return Some(NotKafka::Unknown);
    }
    // Header v1/v2: the client id's length must fit the frame.
    if let Some(len_bytes) = start.prefix.get(8..10) {
        let len = i16::from_be_bytes([len_bytes.first().copied().unwrap_or(0), len_bytes.get(1).copied().unwrap_or(0)]);
        if len < -1 || i64::from(len) + 10 > i64::from(start.body_len) {
            return Some(NotKafka::Unknown);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn start(prefix: &[u8], body_len: u32) -> FrameStart {
        FrameStart { index: 0, offset: 0, body_len, prefix: Bytes::copy_from_slice(prefix) }
    }

    #[test]
    fn tls_and_http_are_recognised_by_their_size_bytes() {
        let tls = FrameError::TooLarge { index: 0, size: 0x1603_0100, size_bytes: [0x16, 0x03, 0x01, 0x00] };
        assert_eq!(classify_first_frame_error(&tls), Some(NotKafka::Tls));
        let http = FrameError::TooLarge { index: 0, size: 0, size_bytes: *b"GET " };
        assert_eq!(classify_first_frame_error(&http), Some(NotKafka::Http));
        let later = FrameError::TooLarge { index: 3, size: 0, size_bytes: [0x16, 3, 1, 0] };
        assert_eq!(classify_first_frame_error(&later), None);
    }

    #[test]
    fn api_versions_request_is_kafka() {
        // ApiVersions v3, correlation 1, client id "rdkafka".
        let mut p = vec![0, 18, 0, 3, 0, 0, 0, 1, 0, 7];
        p.extend_from_slice(b"rdkafka");
        p.push(0);
        assert_eq!(classify_first_request(&start(&p, p.len() as u32)), None);
    }

    #[test]
    fn implausible_first_frames_are_not_kafka() {
        assert_eq!(classify_first_request(&start(&[0x7f, 0, 0, 0, 0, 0, 0, 1], 8)), Some(NotKafka::Unknown));
        assert_eq!(classify_first_request(&start(&[0, 3, 0x40, 0, 0, 0, 0, 1], 8)), Some(NotKafka::Unknown));
        // Client id claims 500 bytes in a 20-byte frame.
        let p = [0, 18, 0, 3, 0, 0, 0, 1, 0x01, 0xf4, 0, 0];
        assert_eq!(classify_first_request(&start(&p, 20)), Some(NotKafka::Unknown));
    }
}
