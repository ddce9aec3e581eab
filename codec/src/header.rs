//! Request and response headers.
//!
//! Every request header starts with the same 8 bytes in every header version (api key, api version,
//! correlation id), so those are read directly and work for API keys the codec does not know. The
//! rest (client id, tagged fields) is decoded through the kafka-protocol crate's generated
//! `RequestHeader`, at the header version its table gives for the API version.

use bytes::{Buf, Bytes};
use kafka_protocol::messages::{ApiKey, RequestHeader, ResponseHeader};
use kafka_protocol::protocol::Decodable;

use crate::api::{self, ApiSupport};

/// Why a header could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HeaderError {
    /// Fewer bytes than the fixed part of the header.
    TooShort,
    /// The generated decoder refused the bytes (message from the decoder).
    Malformed(String),
}

impl std::fmt::Display for HeaderError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HeaderError::TooShort => f.write_str("header shorter than its fixed fields"),
            HeaderError::Malformed(msg) => write!(f, "malformed header: {msg}"),
        }
    }
}

/// The fixed first 8 bytes of every request header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestId {
    pub api_key: i16,
    pub api_version: i16,
    pub correlation_id: i32,
}

/// Reads the fixed part of a request header from the first bytes of a frame body.
pub fn request_id(prefix: &[u8]) -> Result<RequestId, HeaderError> {
    let mut buf = prefix.get(..8).ok_or(HeaderError::TooShort)?;
    Ok(RequestId { api_key: buf.get_i16(), api_version: buf.get_i16(), correlation_id: buf.get_i32() })
}

/// A decoded request header.
#[derive(Debug, Clone, PartialEq)]
pub struct RequestHeaderInfo {
    pub id: RequestId,
    pub support: ApiSupport,
    /// The full header, for APIs and versions the codec knows, when the prefix held all of it.
    pub header: Option<RequestHeader>,
    /// Encoded length of the header, when `header` is set: where the body starts.
    pub header_len: Option<usize>,
}

impl RequestHeaderInfo {
    /// The client id as the client sent it, if the header was decoded and carried one.
    pub fn client_id(&self) -> Option<&str> {
        self.header.as_ref().and_then(|h| h.client_id.as_ref()).map(|s| s.as_str())
    }
}

/// Decodes a request header from the first bytes of a frame body (`prefix`).
///
/// A prefix cut short of the end of the header (a client id longer than the prefix) still yields
/// the fixed fields, with `header: None`; so does an API or version the codec does not know.
/// `Err` only for fewer than 8 bytes, or a header of a known API that fails to decode although
/// the prefix held the whole frame.
pub fn decode_request_header(prefix: &Bytes, is_whole_frame: bool) -> Result<RequestHeaderInfo, HeaderError> {
    let id = request_id(prefix)?;
    let support = api::support(id.api_key, id.api_version);
    let key = match support {
        ApiSupport::Known(key) => key,
        ApiSupport::UnknownVersion(_) | ApiSupport::UnknownApi => {
            return Ok(RequestHeaderInfo { id, support, header: None, header_len: None })
        }
    };
    let header_version = key.request_header_version(id.api_version);
    let mut buf = prefix.clone();
    match RequestHeader::decode(&mut buf, header_version) {
        Ok(header) => {
            let header_len = prefix.len() - buf.remaining();
            Ok(RequestHeaderInfo { id, support, header: Some(header), header_len: Some(header_len) })
        }
        Err(err) if is_whole_frame => Err(HeaderError::Malformed(err.to_string())),
        Err(_) => Ok(RequestHeaderInfo { id, support, header: None, header_len: None }),
    }
}

/// Reads the correlation id that starts every response header.
pub fn response_correlation_id(prefix: &[u8]) -> Result<i32, HeaderError> {
    let mut buf = prefix.get(..4).ok_or(HeaderError::TooShort)?;
    Ok(buf.get_i32())
}

/// Decodes a response header for a response to `key` at `api_version`; returns the header and its
/// encoded length.
pub fn decode_response_header(body: &Bytes, key: ApiKey, api_version: i16) -> Result<(ResponseHeader, usize), HeaderError> {
    let header_version = key.response_header_version(api_version);
    let mut buf = body.clone();
    let header = ResponseHeader::decode(&mut buf, header_version).map_err(|e| HeaderError::Malformed(e.to_string()))?;
    Ok((header, body.len() - buf.remaining()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::{BufMut, BytesMut};

    fn header_bytes(api_key: i16, version: i16, corr: i32, client: Option<&str>, flexible: bool) -> Bytes {
        let mut b = BytesMut::new();
        b.put_i16(api_key);
        b.put_i16(version);
        b.put_i32(corr);
        match client {
            Some(c) => {
                b.put_i16(c.len() as i16);
                b.put_slice(c.as_bytes());
            }
            None => b.put_i16(-1),
        }
        if flexible {
            b.put_u8(0);
        }
        b.freeze()
    }

    #[test]
    fn decodes_header_v1_and_v2() {
        // Metadata v1 uses header v1; Metadata v9+ uses header v2 (flexible).
        let v1 = header_bytes(3, 1, 7, Some("shop"), false);
        let info = decode_request_header(&v1, true).unwrap();
        assert_eq!(info.id, RequestId { api_key: 3, api_version: 1, correlation_id: 7 });
        assert_eq!(info.client_id(), Some("shop"));
        assert_eq!(info.header_len, Some(v1.len()));

        let v2 = header_bytes(3, 12, -3, None, true);
        let info = decode_request_header(&v2, true).unwrap();
        assert_eq!(info.client_id(), None);
        assert_eq!(info.header_len, Some(v2.len()));
    }

    #[test]
    fn unknown_api_still_yields_fixed_fields() {
        let raw = header_bytes(4242, 0, 99, Some("x"), false);
        let info = decode_request_header(&raw, true).unwrap();
        assert_eq!(info.support, ApiSupport::UnknownApi);
        assert_eq!(info.id.correlation_id, 99);
        assert!(info.header.is_none());
    }

    #[test]
    fn truncated_prefix_is_not_an_error_but_a_short_frame_is() {
        let raw = header_bytes(3, 1, 7, Some("a-long-client-id"), false);
        let cut = raw.slice(..12);
        let info = decode_request_header(&cut, false).unwrap();
        assert!(info.header.is_none());
        assert_eq!(info.id.correlation_id, 7);
        assert!(matches!(decode_request_header(&cut, true), Err(HeaderError::Malformed(_))));
        assert_eq!(decode_request_header(&raw.slice(..5), false), Err(HeaderError::TooShort));
    }

    #[test]
    fn response_correlation() {
        assert_eq!(response_correlation_id(&[0, 0, 1, 0, 9]), Ok(256));
        assert_eq!(response_correlation_id(&[0, 0]), Err(HeaderError::TooShort));
    }
}
