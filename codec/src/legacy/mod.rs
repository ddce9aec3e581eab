//! Old protocol versions that Kafka 4.0 removed (KIP-896) together with the old message formats
//! (KIP-724), and that the kafka-protocol crate no longer generates.
//!
//! Clients nobody can rebuild still send them. The filter keeps them working by translating: an old
//! request is decoded here into the crate's type for the same API (new fields at the defaults the
//! protocol specifies), encoded at a version the broker accepts, and the broker's answer, decoded by
//! the crate, is encoded back here in the old layout the client expects. Records change format on
//! the way: legacy message sets (magic 0/1) become one record batch (magic 2) and back.
//!
//! One module per API family, each with the same four functions per old version so that every
//! translation can be checked as a round trip:
//! `decode_request` / `encode_request` (old layout ⇄ crate request type) and
//! `decode_response` / `encode_response` (old layout ⇄ crate response type).
//! Every layout here is non-flexible (no tagged fields, request header v1, response header v0).

pub mod admin;
pub mod compression;
pub mod errors;
pub mod fetch;
pub mod list_offsets;
pub mod message_set;
pub mod offsets;
pub mod produce;
#[cfg(test)]
pub(crate) mod testing;
pub mod translate;
pub mod wire;

/// Why an old-version body could not be translated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LegacyError {
    /// The bytes end before the layout does, a size or count is negative where it may not be, or
    /// bytes are left over after the layout ends.
    Malformed(&'static str),
    /// Well-formed input that the other side's format cannot express (zstd records for a magic 0/1
    /// reader, a field value the old version has no room for).
    Unrepresentable(&'static str),
    /// Decompressed records beyond [`MAX_DECOMPRESSED`].
    TooLarge,
    /// The kafka-protocol crate refused to encode or decode the translated message.
    Crate,
}

impl std::fmt::Display for LegacyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LegacyError::Malformed(what) => write!(f, "malformed old-version body: {what}"),
            LegacyError::Unrepresentable(what) => write!(f, "not expressible in the other format: {what}"),
            LegacyError::TooLarge => write!(f, "decompressed records larger than {MAX_DECOMPRESSED} bytes"),
            LegacyError::Crate => write!(f, "the kafka-protocol crate refused the translated message"),
        }
    }
}

/// Upper bound on the bytes one compressed message set or record batch may decompress to: a
/// compression bomb must not exhaust the Wasm VM's memory (every connection of the sidecar lives in
/// it). Kafka's own default `message.max.bytes` is 1 MiB; 64 MiB leaves room for any real batch.
pub const MAX_DECOMPRESSED: usize = 64 * 1024 * 1024;
