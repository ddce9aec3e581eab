//! The load generator: pipelined Produce or Fetch requests on many connections for a fixed time,
//! recording every request's latency.
//!
//! Each connection has a writer thread and a reader thread. The writer sends a prebuilt frame
//! (only the correlation id changes) whenever the window has room; the reader takes responses in
//! order, checks their correlation ids and frees window slots. With a rate, requests follow a
//! fixed schedule; latency is still measured from the actual send, and how late sends were
//! against the schedule is reported apart (`schedule_lag_us`): on a small shared machine the
//! load generator's own wake-ups are late by up to milliseconds, which is host noise, not proxy
//! latency. A proxy that stalls fills the window and shows up as schedule lag.
//!
//! The run has a warm-up, then the measured interval: only responses that arrive inside it are
//! counted, and the CPU time of the watched processes is read from `/proc` at its two ends.

use std::io::Write;
use std::net::SocketAddr;
use std::sync::mpsc::{self, Receiver, SyncSender};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use bytes::Bytes;
use kafka_lens_codec::body;
use kafka_lens_codec::kafka_protocol::messages::ApiKey;
use serde_json::{json, Value};

use crate::latency::{self, Percentiles};
use crate::procfs;
use crate::session::{self, Session};
use crate::shape::Shape;
use crate::wire;

/// What each request does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Workload {
    /// Produce one batch of the shape (acks=1).
    Produce,
    /// Fetch one batch of the shape from offset 0.
    Fetch,
}

impl Workload {
    pub fn name(self) -> &'static str {
        match self {
            Workload::Produce => "produce",
            Workload::Fetch => "fetch",
        }
    }

    pub fn parse(s: &str) -> Result<Workload> {
        match s {
            "produce" => Ok(Workload::Produce),
            "fetch" => Ok(Workload::Fetch),
            other => bail!("unknown workload {other:?} (produce, fetch)"),
        }
    }
}

/// A process whose CPU time is charged to the measured interval.
#[derive(Debug, Clone)]
pub struct Watched {
    pub label: String,
    pub pid: u32,
}

/// One run of the load generator.
#[derive(Debug, Clone)]
pub struct LoadSpec {
    pub addr: SocketAddr,
    pub workload: Workload,
    pub shape: Shape,
    pub topic: String,
    pub connections: usize,
    /// Requests in flight per connection.
    pub window: usize,
    pub warmup: Duration,
    pub duration: Duration,
    /// Total requests per second over all connections; `None`: as fast as the window allows.
    pub rate: Option<f64>,
    pub watch: Vec<Watched>,
    /// `sysconf(_SC_CLK_TCK)`: the unit of `/proc/<pid>/stat` CPU times.
    pub clock_ticks: u64,
}

/// When the run starts, ends its warm-up, and ends.
#[derive(Debug, Clone, Copy)]
struct Timing {
    start: Instant,
    measure_from: Instant,
    measure_to: Instant,
}

/// What one connection saw inside the measured interval.
#[derive(Debug, Default)]
struct ConnStats {
    latencies_ns: Vec<u64>,
    /// Rate mode: how late each measured send was against its schedule.
    schedule_lag_ns: Vec<u64>,
    requests: u64,
    bytes_out: u64,
    bytes_in: u64,
}

/// A prepared connection: handshake done, versions known, request frame built.
struct Prepared {
    session: Session,
    frame: Vec<u8>,
    key: ApiKey,
    version: i16,
}

fn prepare(spec: &LoadSpec, batch: &Bytes) -> Result<Prepared> {
    let client_id = wire::client_id(spec.workload.name(), spec.shape);
    let session = Session::connect(spec.addr, &client_id)?;
    let (key, version, request) = match spec.workload {
        Workload::Produce => {
            let version = session.version(ApiKey::Produce, wire::PRODUCE_VERSION)?;
            (ApiKey::Produce, version, wire::produce_request(&spec.topic, 0, batch.clone(), 1))
        }
        Workload::Fetch => {
            let version = session.version(ApiKey::Fetch, wire::FETCH_VERSION)?;
            let max_bytes = i32::try_from(batch.len()).unwrap_or(i32::MAX);
            (ApiKey::Fetch, version, wire::fetch_request(&spec.topic, 0, 0, max_bytes))
        }
    };
    let frame = wire::request_frame(key, version, &client_id, &request)?;
    Ok(Prepared { session, frame, key, version })
}

/// Runs the load and returns its report as JSON.
pub fn run(spec: &LoadSpec) -> Result<Value> {
    if spec.connections == 0 || spec.window == 0 {
        bail!("connections and window must be at least 1");
    }
    let batch = wire::record_batch(spec.shape)?;
    let mut prepared = Vec::with_capacity(spec.connections);
    for i in 0..spec.connections {
        prepared.push(prepare(spec, &batch).with_context(|| format!("opening connection {i}"))?);
    }

    // Every connection is open: the clock starts now, for all of them at once.
    let start = Instant::now() + Duration::from_millis(20);
    let timing = Timing { start, measure_from: start + spec.warmup, measure_to: start + spec.warmup + spec.duration };
    let interval = spec.rate.filter(|r| *r > 0.0).map(|rate| Duration::from_secs_f64(spec.connections as f64 / rate));

    let mut handles = Vec::with_capacity(spec.connections);
    for (index, conn) in prepared.into_iter().enumerate() {
        // Spread scheduled sends of the connections evenly over one interval.
        let offset = interval.map(|i| i.mul_f64(index as f64 / spec.connections as f64));
        handles.push(spawn_connection(conn, spec.window, timing, interval, offset.unwrap_or_default())?);
    }

    sleep_until(timing.measure_from);
    let cpu_before = sample_cpu(spec);
    sleep_until(timing.measure_to);
    let cpu_after = sample_cpu(spec);
    let measured = Instant::now().saturating_duration_since(timing.measure_from).max(spec.duration);

    let mut total = ConnStats::default();
    let mut errors = Vec::new();
    for handle in handles {
        match handle.join() {
            Ok(Ok(stats)) => {
                total.requests += stats.requests;
                total.bytes_out += stats.bytes_out;
                total.bytes_in += stats.bytes_in;
                total.latencies_ns.extend(stats.latencies_ns);
                total.schedule_lag_ns.extend(stats.schedule_lag_ns);
            }
            Ok(Err(e)) => errors.push(format!("{e:#}")),
            Err(_) => errors.push("connection thread panicked".to_string()),
        }
    }
    let outcome = Outcome {
        latency: latency::percentiles(&mut total.latencies_ns),
        schedule_lag: latency::percentiles(&mut total.schedule_lag_ns),
        total,
        measured,
        cpu_before,
        cpu_after,
        errors,
    };
    Ok(report(spec, &outcome))
}

fn sleep_until(t: Instant) {
    let now = Instant::now();
    if t > now {
        thread::sleep(t - now);
    }
}

/// CPU ticks of each watched process and of this one.
fn sample_cpu(spec: &LoadSpec) -> Vec<Option<u64>> {
    spec.watch.iter().map(|w| procfs::cpu_ticks(w.pid)).chain([procfs::cpu_ticks(std::process::id())]).collect()
}

/// Everything a run measured, for its report.
struct Outcome {
    total: ConnStats,
    latency: Percentiles,
    schedule_lag: Percentiles,
    measured: Duration,
    cpu_before: Vec<Option<u64>>,
    cpu_after: Vec<Option<u64>>,
    errors: Vec<String>,
}

fn report(spec: &LoadSpec, outcome: &Outcome) -> Value {
    let Outcome { total, latency: lat, schedule_lag: lag, measured, cpu_before: before, cpu_after: after, errors } = outcome;
    let secs = measured.as_secs_f64();
    let ticks = spec.clock_ticks.max(1) as f64;
    let cpu_s = |i: usize| match (before.get(i).copied().flatten(), after.get(i).copied().flatten()) {
        (Some(b), Some(a)) => Some(a.saturating_sub(b) as f64 / ticks),
        _ => None,
    };
    let mut cpu = serde_json::Map::new();
    for (i, w) in spec.watch.iter().enumerate() {
        cpu.insert(w.label.clone(), json!({ "pid": w.pid, "cpu_s": cpu_s(i) }));
    }
    let wire_bytes = total.bytes_out + total.bytes_in;
    json!({
        "workload": spec.workload.name(),
        "shape": spec.shape.name(),
        "record_bytes": spec.shape.record_bytes,
        "records_per_request": spec.shape.records,
        "connections": spec.connections,
        "window": spec.window,
        "rate": spec.rate,
        "measured_s": secs,
        "requests": total.requests,
        "requests_per_s": total.requests as f64 / secs,
        "bytes_out": total.bytes_out,
        "bytes_in": total.bytes_in,
        "wire_mb_per_s": wire_bytes as f64 / secs / 1e6,
        "payload_mb_per_s": (total.requests as f64 * spec.shape.payload_bytes() as f64) / secs / 1e6,
        "latency_us": {
            "count": lat.count, "mean": lat.mean_us, "p50": lat.p50_us, "p90": lat.p90_us,
            "p99": lat.p99_us, "p999": lat.p999_us, "max": lat.max_us,
        },
        "schedule_lag_us": spec.rate.map(|_| json!({ "p50": lag.p50_us, "p99": lag.p99_us, "max": lag.max_us })),
        "cpu": cpu,
        "loadgen_cpu_s": cpu_s(spec.watch.len()),
        "errors": errors,
    })
}

type Handle = thread::JoinHandle<Result<ConnStats>>;

fn spawn_connection(conn: Prepared, window: usize, timing: Timing, interval: Option<Duration>, offset: Duration) -> Result<Handle> {
    let Prepared { session, frame, key, version } = conn;
    // Window slots: the writer takes one per request, the reader gives it back per response.
    let (slots_tx, slots_rx) = mpsc::sync_channel::<()>(window);
    for _ in 0..window {
        slots_tx.send(()).map_err(|_| anyhow!("window channel closed"))?;
    }
    // Send times, in request order, from the writer to the reader.
    let (sent_tx, sent_rx) = mpsc::channel::<(i32, Instant)>();
    let stream = session.stream;
    let reader = session.reader;
    let request_len = frame.len() as u64;
    let writer = thread::Builder::new().name("loadgen-writer".into()).spawn(move || -> Result<Vec<u64>> {
        write_loop(stream, frame, slots_rx, sent_tx, timing, interval.map(|i| (i, offset)))
    })?;
    let reader = thread::Builder::new().name("loadgen-reader".into()).spawn(move || -> Result<ConnStats> {
        let stats = read_loop(reader, sent_rx, slots_tx, timing, request_len, key, version);
        let written = writer.join().map_err(|_| anyhow!("writer thread panicked"))?;
        let mut stats = stats?;
        stats.schedule_lag_ns = written?;
        Ok(stats)
    })?;
    Ok(reader)
}

/// Sends requests until the end of the run; returns, in rate mode, how late each send inside the
/// measured interval was against its schedule.
fn write_loop(
    mut stream: std::net::TcpStream,
    mut frame: Vec<u8>,
    slots: Receiver<()>,
    sent: mpsc::Sender<(i32, Instant)>,
    timing: Timing,
    schedule: Option<(Duration, Duration)>,
) -> Result<Vec<u64>> {
    sleep_until(timing.start);
    let mut lags = Vec::new();
    let mut correlation_id: i32 = 1;
    let mut n: u32 = 0;
    loop {
        let scheduled = schedule.map(|(interval, offset)| timing.start + offset + interval * n);
        if let Some(at) = scheduled {
            sleep_until(at);
        }
        if Instant::now() >= timing.measure_to {
            return Ok(lags);
        }
        if slots.recv().is_err() {
            return Ok(lags); // the reader stopped: it reports why
        }
        let sent_at = Instant::now();
        if let Some(at) = scheduled.filter(|at| *at >= timing.measure_from) {
            lags.push(u64::try_from(sent_at.saturating_duration_since(at).as_nanos()).unwrap_or(u64::MAX));
        }
        wire::set_request_correlation_id(&mut frame, correlation_id);
        if sent.send((correlation_id, sent_at)).is_err() {
            return Ok(lags);
        }
        stream.write_all(&frame).context("sending a request")?;
        correlation_id = correlation_id.wrapping_add(1);
        n = n.wrapping_add(1);
    }
}

fn read_loop(
    mut reader: std::io::BufReader<std::net::TcpStream>,
    sent: Receiver<(i32, Instant)>,
    slots: SyncSender<()>,
    timing: Timing,
    request_len: u64,
    key: ApiKey,
    version: i16,
) -> Result<ConnStats> {
    let mut stats = ConnStats::default();
    let mut buf = Vec::new();
    let mut checked = false;
    while let Ok((correlation_id, sent_at)) = sent.recv() {
        session::read_frame(&mut reader, &mut buf).context("reading a response")?;
        let now = Instant::now();
        let got = session::response_correlation_id(&buf);
        if got != Some(correlation_id) {
            bail!("response out of order: correlation id {got:?}, expected {correlation_id}");
        }
        if !checked {
            // The first response of every connection is decoded in full: a misconfigured run
            // (missing topic, empty fetch) fails here instead of measuring error responses.
            let response = body::decode_response(&Bytes::copy_from_slice(&buf), key, version).map_err(|e| anyhow!("{e}"))?;
            match key {
                ApiKey::Fetch => session::check_fetch(&response.body)?,
                _ => session::check_produce(&response.body)?,
            }
            checked = true;
        }
        if now >= timing.measure_from && now < timing.measure_to {
            stats.latencies_ns.push(u64::try_from(now.saturating_duration_since(sent_at).as_nanos()).unwrap_or(u64::MAX));
            stats.requests += 1;
            stats.bytes_out += request_len;
            stats.bytes_in += buf.len() as u64 + 4;
        }
        // The writer may have finished: a closed slot channel is expected then.
        let _ = slots.send(());
    }
    Ok(stats)
}

/// Opens `connections` connections, sends each one Produce and one Fetch of `shape`, and keeps
/// them open for `hold`: the state a proxy keeps per idle Kafka connection, for the memory
/// measurement. Calls `ready` once all are open and have been answered.
pub fn hold(addr: SocketAddr, connections: usize, shape: Shape, topic: &str, hold: Duration, ready: impl FnOnce(usize)) -> Result<()> {
    let batch = wire::record_batch(shape)?;
    let client_id = wire::client_id("hold", shape);
    let mut sessions = Vec::with_capacity(connections);
    for i in 0..connections {
        let mut session = Session::connect(addr, &client_id).with_context(|| format!("opening connection {i}"))?;
        let produce = session.version(ApiKey::Produce, wire::PRODUCE_VERSION)?;
        session.produce(produce, topic, batch.clone())?;
        let fetch = session.version(ApiKey::Fetch, wire::FETCH_VERSION)?;
        let max_bytes = i32::try_from(batch.len()).unwrap_or(i32::MAX);
        let response = session.call(ApiKey::Fetch, fetch, &wire::fetch_request(topic, 0, 0, max_bytes))?;
        session::check_fetch(&response)?;
        sessions.push(session);
    }
    ready(sessions.len());
    thread::sleep(hold);
    drop(sessions);
    Ok(())
}
