//! Benchmarks for kafka-lens.
//!
//! * [`shape`]: the record shapes every benchmark uses (100 B, 1 KiB records, 64 KiB batches).
//! * [`wire`]: Kafka requests and responses encoded with the kafka-protocol crate, so the load
//!   generator, the responder and the micro-benchmarks all speak real Kafka.
//! * [`fixtures`]: sample frames per API for the codec micro-benchmarks (`benches/codec.rs`).
//! * [`responder`]: a Kafka "broker" that answers every request with a canned response at once,
//!   so an end-to-end run measures the proxy, not the broker.
//! * [`session`]: a blocking Kafka connection (ApiVersions handshake, one request at a time) for
//!   setting a broker up and opening connections.
//! * [`client`]: the load generator: pipelined Produce or Fetch on many connections, with
//!   per-request latency.
//! * [`latency`]: percentiles of the recorded latencies.
//! * [`procfs`]: CPU time and memory of other processes, read from `/proc` over the measured
//!   interval.
//!
//! The `loadgen` binary (`src/bin/loadgen.rs`) exposes all of it; `bench/run.py` drives it.

pub mod client;
pub mod fixtures;
pub mod latency;
pub mod procfs;
pub mod responder;
pub mod session;
pub mod shape;
pub mod wire;
