//! A stand-in broker that answers at once: every Produce with success, every Fetch with a batch
//! of the shape named in the client id, every ApiVersions with the APIs it serves.
//!
//! Responses are encoded once per connection and request kind, then re-sent with only the
//! correlation id patched, so the responder costs little more than the socket calls and an
//! end-to-end run against it isolates the proxy's own cost.

use std::collections::HashMap;
use std::io::{self, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::thread;

use anyhow::{anyhow, bail, Context, Result};
use bytes::Bytes;
use kafka_lens_codec::kafka_protocol::messages::{ApiKey, RequestKind};
use kafka_lens_codec::{body, header};

use crate::session::read_frame;
use crate::shape::Shape;
use crate::wire::{self, Frame};

/// Record shape of Fetch answers to clients whose id names none.
const DEFAULT_FETCH_SHAPE: Shape = Shape::KIB;

/// Accepts connections forever, one thread per connection.
pub fn serve(listener: TcpListener) -> Result<()> {
    for stream in listener.incoming() {
        let stream = match stream {
            Ok(s) => s,
            Err(e) => {
                eprintln!("responder: accept failed: {e}");
                continue;
            }
        };
        thread::Builder::new().name("responder".into()).spawn(move || {
            if let Err(e) = handle(stream) {
                eprintln!("responder: connection closed: {e:#}");
            }
        })?;
    }
    Ok(())
}

/// What a response depends on: the API, its version and (for Fetch) the client id naming the
/// shape. Everything else in the load generator's requests is the same on every request.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct TemplateKey {
    api_key: i16,
    api_version: i16,
    client_id: Option<String>,
}

fn handle(stream: TcpStream) -> Result<()> {
    stream.set_nodelay(true)?;
    let mut reader = BufReader::with_capacity(256 * 1024, stream.try_clone()?);
    let mut writer = stream;
    // `None`: the request gets no response (Produce with acks=0).
    let mut templates: HashMap<TemplateKey, Option<Frame>> = HashMap::new();
    let mut buf = Vec::new();
    loop {
        match read_frame(&mut reader, &mut buf) {
            Ok(()) => {}
            Err(e) if matches!(e.kind(), io::ErrorKind::UnexpectedEof | io::ErrorKind::ConnectionReset) => return Ok(()),
            Err(e) => return Err(e.into()),
        }
        let id = header::request_id(&buf).map_err(|e| anyhow!("{e}"))?;
        let client_id = if id.api_key == ApiKey::Fetch as i16 {
            let prefix = Bytes::copy_from_slice(buf.get(..buf.len().min(512)).unwrap_or_default());
            header::decode_request_header(&prefix, prefix.len() == buf.len())
                .ok()
                .and_then(|info| info.client_id().map(str::to_string))
        } else {
            None
        };
        let key = TemplateKey { api_key: id.api_key, api_version: id.api_version, client_id };
        let template = match templates.get_mut(&key) {
            Some(t) => t,
            None => {
                let built = build_response(&buf, key.client_id.as_deref())?;
                templates.entry(key).or_insert(built)
            }
        };
        if let Some(frame) = template {
            wire::set_response_correlation_id(frame, id.correlation_id);
            writer.write_all(frame).context("writing a response")?;
        }
    }
}

/// Decodes a request and encodes the response for it (correlation id 0).
fn build_response(request: &[u8], client_id: Option<&str>) -> Result<Option<Frame>> {
    let request = body::decode_request(&Bytes::copy_from_slice(request)).map_err(|e| anyhow!("undecodable request: {e}"))?;
    let version = request.header.request_api_version;
    let frame = match &request.body {
        RequestKind::Produce(p) if p.acks == 0 => return Ok(None),
        RequestKind::Produce(p) => wire::response_frame(ApiKey::Produce, version, 0, &wire::produce_response_for(p))?,
        RequestKind::Fetch(f) => {
            let shape = client_id.and_then(wire::shape_from_client_id).unwrap_or(DEFAULT_FETCH_SHAPE);
            let batch = wire::record_batch(shape)?;
            wire::response_frame(ApiKey::Fetch, version, 0, &wire::fetch_response_for(f, &batch))?
        }
        RequestKind::ApiVersions(_) => wire::response_frame(ApiKey::ApiVersions, version, 0, &wire::api_versions_response())?,
        _ => bail!("the responder does not serve {:?}", request.api_key),
    };
    Ok(Some(frame))
}

#[cfg(test)]
#[allow(clippy::unreachable, clippy::indexing_slicing)]
mod tests {
    use super::*;
    use crate::session::{self, Session};
    use kafka_lens_codec::kafka_protocol::messages::ResponseKind;

    #[test]
    fn answers_the_load_generators_requests() {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        thread::spawn(move || serve(listener));

        let shape = Shape { record_bytes: 10, records: 3 };
        let mut s = Session::connect(addr, &wire::client_id("fetch", shape)).expect("handshake");
        let produce = s.version(ApiKey::Produce, wire::PRODUCE_VERSION).expect("produce version");
        assert_eq!(produce, wire::PRODUCE_VERSION);
        s.produce(produce, "t", wire::record_batch(shape).expect("batch")).expect("produce accepted");

        let fetch = s.version(ApiKey::Fetch, wire::FETCH_VERSION).expect("fetch version");
        for _ in 0..3 {
            let response = s.call(ApiKey::Fetch, fetch, &wire::fetch_request("t", 0, 0, 1000)).expect("fetch");
            session::check_fetch(&response).expect("records");
            let ResponseKind::Fetch(f) = response else { unreachable!() };
            let records = f.responses[0].partitions[0].records.clone().expect("records");
            let summary = kafka_lens_codec::records::summarize(&records, i64::MIN);
            assert_eq!(summary.records, 3);
            assert_eq!(f.responses[0].topic.0.as_str(), "t");
        }
    }
}
