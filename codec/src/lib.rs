//! Kafka wire codec for kafka-lens.
//!
//! Plain Rust, no proxy-wasm: everything here builds natively (tests, fuzzing, benchmarks) and for
//! `wasm32-wasip1` (the filter). The crate is organised one concern per module, in the order bytes
//! flow through it:
//!
//! * [`addresses`]: the broker addresses responses advertise (Metadata, FindCoordinator,
//!   DescribeCluster, KIP-951 `NodeEndpoints`), rewritten for clients that reach brokers only
//!   through the proxy.
//! * [`frame`]: splits a byte stream into Kafka frames (4-byte size prefix) across arbitrary chunk
//!   boundaries, reading only the byte ranges a consumer asks for, so record payloads are never
//!   copied; enforces the maximum frame size.
//! * [`read_ahead`]: serves the splitter's small reads from one larger read, because in Envoy each
//!   read is a hostcall that costs more than the bytes it copies.
//! * [`detect`]: tells, from the first frame of a connection, whether the stream is Kafka at all
//!   (TLS ClientHello, HTTP, random bytes are not), so such streams pass through untouched.
//! * [`header`]: request and response headers (versions 0–2) through the kafka-protocol crate's
//!   generated types and its table of which header version each API version uses.
//! * [`api`]: API names and the versions this codec can decode.
//! * [`correlation`]: pairs responses with the requests they answer (responses do not carry an API
//!   key), bounded in size.
//! * [`body`]: full decode and encode of request and response bodies for every API and version the
//!   kafka-protocol crate generates.
//! * [`generated`]: walkers generated from the kafka-protocol crate's message types: every error
//!   code of every response.
//! * [`topic_names`]: every topic name, consumer group id and transactional id of every request
//!   and response (generated walkers), for renaming and per-tenant prefixes in both directions.
//! * [`name_edit`]: renames topic names and the transactional id of Produce requests and Fetch
//!   responses as an edit of the frame's prefix, leaving the records in Envoy's buffer uncopied.
//! * [`records`]: record-batch (magic 2) and legacy message-set (magic 0/1) headers, parsed with nom
//!   without touching record payloads.
//! * [`rename`]: topic renames and per-tenant prefixes applied to decoded requests (client view
//!   → broker view) and responses (back, hiding what the client may not see).
//! * [`sasl`]: follows SASL exchanges (handshake, authenticate messages, raw v0 tokens) to learn the
//!   authenticated user without keeping any secret.
//! * [`scan`]: streaming structural scan of Produce requests and Fetch responses: topics,
//!   partitions and batch headers read as the bytes pass, payloads skipped unread.
//! * [`refusal`]: the responses the filter sends for requests it refuses itself, shaped as a
//!   broker's refusal (every named entry carries the error); splits topic-keyed requests so only
//!   some topics are refused, and merges the refusal into the broker's answer for the rest.
//!
//! Nothing in this crate panics on any input: clippy denies `unwrap`, `expect`, `panic` and
//! indexing, and the fuzz and property tests drive every decoder with malformed input.

pub mod addresses;
pub mod api;
pub mod body;
pub mod correlation;
pub mod detect;
pub mod frame;
pub mod generated;
pub mod header;
pub mod legacy;
pub mod name_edit;
pub mod read_ahead;
pub mod records;
pub mod refusal;
pub mod rename;
pub mod sasl;
pub mod scan;
pub mod topic_names;

pub use kafka_protocol;
pub use uuid;
