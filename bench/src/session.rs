//! A plain blocking Kafka connection: the ApiVersions handshake every client starts with, then
//! one request at a time. Used to set the broker up (topics, preloaded records), to open the load
//! generator's connections and to hold idle connections for the memory measurement.

use std::io::{self, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use bytes::Bytes;
use kafka_lens_codec::body;
use kafka_lens_codec::kafka_protocol::messages::{ApiKey, ApiVersionsResponse, RequestKind, ResponseKind};

use crate::shape::Shape;
use crate::wire;

/// Largest response frame the benchmarks accept (a Fetch of the biggest shape is ~70 KiB).
pub const MAX_FRAME: usize = 64 * 1024 * 1024;

/// Kafka error code: the topic exists already (CreateTopics on a second run).
const TOPIC_ALREADY_EXISTS: i16 = 36;

/// Reads one frame into `buf` (its body: the size prefix is not kept).
pub fn read_frame<R: Read>(reader: &mut R, buf: &mut Vec<u8>) -> io::Result<()> {
    let mut size = [0u8; 4];
    reader.read_exact(&mut size)?;
    let size = usize::try_from(i32::from_be_bytes(size))
        .ok()
        .filter(|&n| (4..=MAX_FRAME).contains(&n))
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "bad frame size"))?;
    buf.resize(size, 0);
    reader.read_exact(buf)
}

/// The correlation id of a response frame body.
pub fn response_correlation_id(body: &[u8]) -> Option<i32> {
    Some(i32::from_be_bytes(body.get(..4)?.try_into().ok()?))
}

/// One connection after its ApiVersions handshake.
pub struct Session {
    pub stream: TcpStream,
    pub reader: BufReader<TcpStream>,
    pub client_id: String,
    /// What the peer said it supports.
    pub versions: ApiVersionsResponse,
    next_correlation_id: i32,
}

impl Session {
    /// Connects and exchanges ApiVersions, as a client library does.
    pub fn connect(addr: SocketAddr, client_id: &str) -> Result<Session> {
        let stream = TcpStream::connect_timeout(&addr, Duration::from_secs(10)).with_context(|| format!("connecting to {addr}"))?;
        stream.set_nodelay(true)?;
        stream.set_read_timeout(Some(Duration::from_secs(30)))?;
        let reader = BufReader::with_capacity(256 * 1024, stream.try_clone()?);
        let mut session =
            Session { stream, reader, client_id: client_id.to_string(), versions: ApiVersionsResponse::default(), next_correlation_id: 1 };
        match session.call(ApiKey::ApiVersions, wire::API_VERSIONS_VERSION, &wire::api_versions_request())? {
            ResponseKind::ApiVersions(v) if v.error_code == 0 => session.versions = v,
            ResponseKind::ApiVersions(v) => bail!("ApiVersions failed with error code {}", v.error_code),
            other => bail!("unexpected answer to ApiVersions: {other:?}"),
        }
        Ok(session)
    }

    /// The version of `key` to use: the highest up to `cap` both sides support.
    pub fn version(&self, key: ApiKey, cap: i16) -> Result<i16> {
        wire::negotiate(&self.versions, key, cap)
    }

    /// Sends one request and waits for its response.
    pub fn call(&mut self, key: ApiKey, version: i16, request: &RequestKind) -> Result<ResponseKind> {
        let mut frame = wire::request_frame(key, version, &self.client_id, request)?;
        let correlation_id = self.next_correlation_id;
        self.next_correlation_id = self.next_correlation_id.wrapping_add(1);
        wire::set_request_correlation_id(&mut frame, correlation_id);
        self.stream.write_all(&frame).with_context(|| format!("sending {key:?}"))?;
        let mut buf = Vec::new();
        read_frame(&mut self.reader, &mut buf).with_context(|| format!("reading the {key:?} response"))?;
        let response = body::decode_response(&Bytes::from(buf), key, version).map_err(|e| anyhow!("{key:?} v{version} response: {e}"))?;
        if response.header.correlation_id != correlation_id {
            bail!("{key:?} response has correlation id {}, expected {correlation_id}", response.header.correlation_id);
        }
        Ok(response.body)
    }

    /// Produces one batch of `shape` to partition 0 of `topic` and checks it was accepted.
    pub fn produce(&mut self, version: i16, topic: &str, batch: Bytes) -> Result<()> {
        let response = self.call(ApiKey::Produce, version, &wire::produce_request(topic, 0, batch, 1))?;
        check_produce(&response)
    }
}

/// Fails unless every partition of a Produce response has error code 0.
pub fn check_produce(response: &ResponseKind) -> Result<()> {
    let ResponseKind::Produce(p) = response else { bail!("not a Produce response: {response:?}") };
    for topic in &p.responses {
        for partition in &topic.partition_responses {
            if partition.error_code != 0 {
                bail!("produce to {}/{} failed with error code {}", topic.name.0.as_str(), partition.index, partition.error_code);
            }
        }
    }
    Ok(())
}

/// Fails unless a Fetch response carries records for every partition without error.
pub fn check_fetch(response: &ResponseKind) -> Result<()> {
    let ResponseKind::Fetch(f) = response else { bail!("not a Fetch response: {response:?}") };
    if f.error_code != 0 {
        bail!("fetch failed with error code {}", f.error_code);
    }
    for topic in &f.responses {
        for partition in &topic.partitions {
            if partition.error_code != 0 {
                bail!("fetch from {}/{} failed with error code {}", topic.topic.0.as_str(), partition.partition_index, partition.error_code);
            }
            if partition.records.as_ref().is_none_or(|r| r.is_empty()) {
                bail!("fetch from {}/{} returned no records (was the topic preloaded?)", topic.topic.0.as_str(), partition.partition_index);
            }
        }
    }
    Ok(())
}

/// Creates single-partition topics; topics that exist already are fine (no auto-creation in
/// tansu, and a broker may be reused).
pub fn create_topics(addr: SocketAddr, topics: &[String]) -> Result<()> {
    let mut session = Session::connect(addr, wire::CLIENT_ID)?;
    let version = session.version(ApiKey::CreateTopics, wire::CREATE_TOPICS_MAX_VERSION)?;
    let response = session.call(ApiKey::CreateTopics, version, &wire::create_topics_request(topics))?;
    let ResponseKind::CreateTopics(r) = response else { bail!("not a CreateTopics response") };
    for topic in &r.topics {
        if topic.error_code != 0 && topic.error_code != TOPIC_ALREADY_EXISTS {
            bail!("creating topic {} failed with error code {} ({:?})", topic.name.0.as_str(), topic.error_code, topic.error_message);
        }
    }
    Ok(())
}

/// Produces `batches` batches of `shape` to `topic`, one at a time, so Fetch has data to read.
pub fn preload(addr: SocketAddr, topic: &str, shape: Shape, batches: usize) -> Result<()> {
    let mut session = Session::connect(addr, wire::CLIENT_ID)?;
    let version = session.version(ApiKey::Produce, wire::PRODUCE_VERSION)?;
    let batch = wire::record_batch(shape)?;
    for _ in 0..batches {
        session.produce(version, topic, batch.clone())?;
    }
    Ok(())
}
