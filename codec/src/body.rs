//! Full decode and encode of request and response frames through the kafka-protocol crate's
//! generated message types, for every API and version it covers.
//!
//! Used for the small structural frames the filter must understand or rewrite. Produce requests
//! and Fetch responses are inspected by the streaming path instead, which never copies records.

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey, RequestHeader, RequestKind, ResponseHeader, ResponseKind};
use kafka_protocol::protocol::Encodable;

use crate::api::{self, ApiSupport};
use crate::header::{self, HeaderError};

/// Why a frame could not be decoded or encoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BodyError {
    /// The API key is not one the codec knows.
    UnknownApi(i16),
    /// The API is known but not at this version.
    UnknownVersion(ApiKey, i16),
    /// The header did not decode.
    Header(HeaderError),
    /// The body did not decode (message from the generated decoder).
    Malformed(ApiKey, String),
    /// The body decoded but left bytes unread: the codec and the peer disagree on the layout.
    TrailingBytes(ApiKey, usize),
    /// Encoding failed (message from the generated encoder).
    Encode(String),
}

impl std::fmt::Display for BodyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BodyError::UnknownApi(k) => write!(f, "unknown api key {k}"),
            BodyError::UnknownVersion(k, v) => write!(f, "{} v{v} is not a version the codec knows", api::name(*k)),
            BodyError::Header(e) => write!(f, "{e}"),
            BodyError::Malformed(k, m) => write!(f, "malformed {} body: {m}", api::name(*k)),
            BodyError::TrailingBytes(k, n) => write!(f, "{} body left {n} bytes unread", api::name(*k)),
            BodyError::Encode(m) => write!(f, "encode failed: {m}"),
        }
    }
}

/// A decoded request frame.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    pub header: RequestHeader,
    pub api_key: ApiKey,
    pub body: RequestKind,
}

/// A decoded response frame.
#[derive(Debug, Clone, PartialEq)]
pub struct Response {
    pub header: ResponseHeader,
    pub body: ResponseKind,
}

/// Decodes a whole request frame body (size prefix excluded).
pub fn decode_request(frame: &Bytes) -> Result<Request, BodyError> {
    let info = header::decode_request_header(frame, true).map_err(BodyError::Header)?;
    let api_key = match info.support {
        ApiSupport::Known(key) => key,
        ApiSupport::UnknownVersion(key) => return Err(BodyError::UnknownVersion(key, info.id.api_version)),
        ApiSupport::UnknownApi => return Err(BodyError::UnknownApi(info.id.api_key)),
    };
    let (Some(header), Some(header_len)) = (info.header, info.header_len) else {
        return Err(BodyError::Header(HeaderError::TooShort));
    };
    let mut rest = frame.slice(header_len.min(frame.len())..);
    let body = RequestKind::decode(api_key, &mut rest, header.request_api_version)
        .map_err(|e| BodyError::Malformed(api_key, format!("{e:#}")))?;
    if !rest.is_empty() {
        return Err(BodyError::TrailingBytes(api_key, rest.len()));
    }
    Ok(Request { header, api_key, body })
}

/// Decodes a whole response frame body (size prefix excluded) answering `api_key` at `api_version`.
pub fn decode_response(frame: &Bytes, api_key: ApiKey, api_version: i16) -> Result<Response, BodyError> {
    if !matches!(api::support(api_key as i16, api_version), ApiSupport::Known(_)) {
        return Err(BodyError::UnknownVersion(api_key, api_version));
    }
    let (header, header_len) = header::decode_response_header(frame, api_key, api_version).map_err(BodyError::Header)?;
    let mut rest = frame.slice(header_len.min(frame.len())..);
    let body = ResponseKind::decode(api_key, &mut rest, api_version)
        .map_err(|e| BodyError::Malformed(api_key, format!("{e:#}")))?;
    if !rest.is_empty() {
        return Err(BodyError::TrailingBytes(api_key, rest.len()));
    }
    Ok(Response { header, body })
}

/// Encodes a request as a whole frame, size prefix included.
pub fn encode_request(header: &RequestHeader, body: &RequestKind) -> Result<Bytes, BodyError> {
    let key = ApiKey::try_from(header.request_api_key).map_err(|()| BodyError::UnknownApi(header.request_api_key))?;
    let version = header.request_api_version;
    let mut buf = BytesMut::new();
    buf.put_i32(0);
    header
        .encode(&mut buf, key.request_header_version(version))
        .map_err(|e| BodyError::Encode(format!("{e:#}")))?;
    body.encode(&mut buf, version).map_err(|e| BodyError::Encode(format!("{e:#}")))?;
    finish_frame(buf)
}

/// Encodes a response to `api_key` at `api_version` as a whole frame, size prefix included.
pub fn encode_response(header: &ResponseHeader, body: &ResponseKind, api_key: ApiKey, api_version: i16) -> Result<Bytes, BodyError> {
    let mut buf = BytesMut::new();
    buf.put_i32(0);
    header
        .encode(&mut buf, api_key.response_header_version(api_version))
        .map_err(|e| BodyError::Encode(format!("{e:#}")))?;
    body.encode(&mut buf, api_version).map_err(|e| BodyError::Encode(format!("{e:#}")))?;
    finish_frame(buf)
}

fn finish_frame(mut buf: BytesMut) -> Result<Bytes, BodyError> {
    let body_len = buf.len().saturating_sub(4);
    let size = i32::try_from(body_len).map_err(|_| BodyError::Encode(format!("frame of {body_len} bytes")))?;
    if let Some(prefix) = buf.get_mut(..4) {
        prefix.copy_from_slice(&size.to_be_bytes());
    }
    Ok(buf.freeze())
}
