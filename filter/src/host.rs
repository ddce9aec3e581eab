//! The only place the filter calls Envoy.
//!
//! The proxy-wasm SDK's `hostcalls::*` wrappers panic on any status they do not expect, and a
//! panic traps the Wasm VM, which closes every Kafka connection of the Envoy worker. Envoy does
//! refuse some calls (a `set_buffer` that starts inside the buffer, a write toward the client from
//! the request path). So every hostcall the filter makes goes through this module, which calls the
//! ABI directly and returns the status as an error; clippy's `disallowed-methods` (see
//! `clippy.toml`) bans the panicking SDK calls everywhere else.
//!
//! Built natively (tests, fuzzing) the functions exist but answer [`HostError::NotInWasm`].

use std::fmt;

/// A status other than `Ok` from Envoy, or a call made outside Envoy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HostError {
    /// Envoy answered with this proxy-wasm status code (1 NotFound, 2 BadArgument, ...).
    Status(u32),
    /// Built for a native target: there is no Envoy to call.
    NotInWasm,
}

impl fmt::Display for HostError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HostError::Status(1) => f.write_str("status 1 (NotFound)"),
            HostError::Status(2) => f.write_str("status 2 (BadArgument)"),
            HostError::Status(s) => write!(f, "status {s}"),
            HostError::NotInWasm => f.write_str("not running in Envoy"),
        }
    }
}

/// Envoy buffers a network filter can read or write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
pub enum Buffer {
    /// Client to broker.
    Downstream = 2,
    /// Broker to client.
    Upstream = 3,
    /// The filter's JSON configuration.
    PluginConfiguration = 7,
}

/// Which side of the connection to close.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
pub enum Stream {
    Downstream = 2,
    Upstream = 3,
}

/// Envoy metric kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
pub enum MetricKind {
    Counter = 0,
    Gauge = 1,
    Histogram = 2,
}

/// Envoy log levels (proxy-wasm numbering).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
#[repr(u32)]
pub enum Level {
    Trace = 0,
    Debug = 1,
    Info = 2,
    Warn = 3,
    Error = 4,
    Critical = 5,
}

#[cfg(target_arch = "wasm32")]
mod abi {
    #[link(wasm_import_module = "env")]
    extern "C" {
        pub fn proxy_log(level: u32, message_data: *const u8, message_size: usize) -> u32;
        pub fn proxy_get_log_level(return_level: *mut u32) -> u32;
        pub fn proxy_get_current_time_nanoseconds(return_time: *mut u64) -> u32;
        pub fn proxy_get_buffer_bytes(
            buffer_type: u32,
            start: usize,
            max_size: usize,
            return_buffer_data: *mut *mut u8,
            return_buffer_size: *mut usize,
        ) -> u32;
        pub fn proxy_set_buffer_bytes(
            buffer_type: u32,
            start: usize,
            size: usize,
            buffer_data: *const u8,
            buffer_size: usize,
        ) -> u32;
        pub fn proxy_define_metric(metric_type: u32, name_data: *const u8, name_size: usize, return_id: *mut u32) -> u32;
        pub fn proxy_increment_metric(metric_id: u32, offset: i64) -> u32;
        pub fn proxy_record_metric(metric_id: u32, value: u64) -> u32;
        pub fn proxy_close_stream(stream_type: u32) -> u32;
        pub fn proxy_set_tick_period_milliseconds(period: u32) -> u32;
        pub fn proxy_get_shared_data(
            key_data: *const u8,
            key_size: usize,
            return_value_data: *mut *mut u8,
            return_value_size: *mut usize,
            return_cas: *mut u32,
        ) -> u32;
        pub fn proxy_set_shared_data(key_data: *const u8, key_size: usize, value_data: *const u8, value_size: usize, cas: u32) -> u32;
        pub fn proxy_get_property(
            path_data: *const u8,
            path_size: usize,
            return_value_data: *mut *mut u8,
            return_value_size: *mut usize,
        ) -> u32;
        pub fn proxy_set_property(path_data: *const u8, path_size: usize, value_data: *const u8, value_size: usize) -> u32;
    }
}

#[cfg(target_arch = "wasm32")]
fn check(status: u32) -> Result<(), HostError> {
    if status == 0 {
        Ok(())
    } else {
        Err(HostError::Status(status))
    }
}

/// Reads up to `max` bytes of `buffer` from `start`, appending them to `out`; returns how many.
/// Envoy's status 1 (NotFound) for an empty range reads as zero bytes.
#[cfg(target_arch = "wasm32")]
pub fn read_buffer(buffer: Buffer, start: usize, max: usize, out: &mut Vec<u8>) -> Result<usize, HostError> {
    let mut data: *mut u8 = std::ptr::null_mut();
    let mut size: usize = 0;
    // SAFETY: Envoy writes a pointer to memory it allocated in this VM through the SDK's exported
    // `proxy_on_memory_allocate` (a Vec<u8> allocation of `size` bytes), which we take back here.
    let status = unsafe { abi::proxy_get_buffer_bytes(buffer as u32, start, max, &mut data, &mut size) };
    match status {
        0 if data.is_null() => Ok(0),
        0 => {
            let bytes = unsafe { Vec::from_raw_parts(data, size, size) };
            if out.is_empty() {
                // Envoy's allocation becomes the caller's vector: a large read is copied once.
                *out = bytes;
            } else {
                out.extend_from_slice(&bytes);
            }
            Ok(size)
        }
        1 => Ok(0),
        other => Err(HostError::Status(other)),
    }
}

/// Replaces `size` bytes of `buffer` at `start` with `data`. Envoy only accepts edits that start at
/// 0 (prefix replace) or at the end (append); anything else is refused with BadArgument.
#[cfg(target_arch = "wasm32")]
pub fn write_buffer(buffer: Buffer, start: usize, size: usize, data: &[u8]) -> Result<(), HostError> {
    check(unsafe { abi::proxy_set_buffer_bytes(buffer as u32, start, size, data.as_ptr(), data.len()) })
}

/// Defines (or looks up) a metric by name; Envoy shares one metric across all VMs per name.
#[cfg(target_arch = "wasm32")]
pub fn define_metric(kind: MetricKind, name: &str) -> Result<u32, HostError> {
    let mut id = 0u32;
    check(unsafe { abi::proxy_define_metric(kind as u32, name.as_ptr(), name.len(), &mut id) })?;
    Ok(id)
}

/// Adds `by` (which may be negative, for gauges) to a metric.
#[cfg(target_arch = "wasm32")]
pub fn increment_metric(id: u32, by: i64) -> Result<(), HostError> {
    check(unsafe { abi::proxy_increment_metric(id, by) })
}

/// Records a histogram sample or sets a gauge.
#[cfg(target_arch = "wasm32")]
pub fn record_metric(id: u32, value: u64) -> Result<(), HostError> {
    check(unsafe { abi::proxy_record_metric(id, value) })
}

/// Closes one side of the connection.
#[cfg(target_arch = "wasm32")]
pub fn close(stream: Stream) -> Result<(), HostError> {
    check(unsafe { abi::proxy_close_stream(stream as u32) })
}

/// Reads a proxy-wasm shared-data entry (shared by every VM of the plugin): its value and CAS
/// token, or `None` if absent.
#[cfg(target_arch = "wasm32")]
pub fn get_shared(key: &str) -> Result<Option<(Vec<u8>, u32)>, HostError> {
    let mut data: *mut u8 = std::ptr::null_mut();
    let mut size: usize = 0;
    let mut cas: u32 = 0;
    // SAFETY: as in read_buffer, Envoy hands back memory allocated through the SDK's allocator.
    let status = unsafe { abi::proxy_get_shared_data(key.as_ptr(), key.len(), &mut data, &mut size, &mut cas) };
    match status {
        0 if data.is_null() => Ok(Some((Vec::new(), cas))),
        0 => Ok(Some((unsafe { Vec::from_raw_parts(data, size, size) }, cas))),
        1 => Ok(None),
        other => Err(HostError::Status(other)),
    }
}

/// Writes a shared-data entry; with `cas` other than 0 only if nobody wrote it since that read
/// (status 8, CasMismatch, otherwise).
#[cfg(target_arch = "wasm32")]
pub fn set_shared(key: &str, value: &[u8], cas: u32) -> Result<(), HostError> {
    check(unsafe { abi::proxy_set_shared_data(key.as_ptr(), key.len(), value.as_ptr(), value.len(), cas) })
}

/// Reads an Envoy attribute (`["connection", "uri_san_peer_certificate"]`), or `None` where the
/// connection has none (status NotFound, or an empty value).
#[cfg(target_arch = "wasm32")]
pub fn get_property(path: &[&str]) -> Result<Option<Vec<u8>>, HostError> {
    // The SDK's encoding: path segments joined by NUL.
    let serialized = path.join("\0");
    let mut data: *mut u8 = std::ptr::null_mut();
    let mut size: usize = 0;
    // SAFETY: as in read_buffer, Envoy hands back memory allocated through the SDK's allocator.
    let status = unsafe { abi::proxy_get_property(serialized.as_ptr(), serialized.len(), &mut data, &mut size) };
    match status {
        0 if data.is_null() || size == 0 => Ok(None),
        0 => Ok(Some(unsafe { Vec::from_raw_parts(data, size, size) })),
        1 => Ok(None),
        other => Err(HostError::Status(other)),
    }
}

/// Sets a connection property: Envoy keeps it as the filter state object `wasm.<name>`, which
/// access logs print with `%FILTER_STATE(wasm.<name>:PLAIN)%`.
#[cfg(target_arch = "wasm32")]
pub fn set_property(name: &str, value: &[u8]) -> Result<(), HostError> {
    // SAFETY: both pointers are valid for their lengths for the duration of the call.
    check(unsafe { abi::proxy_set_property(name.as_ptr(), name.len(), value.as_ptr(), value.len()) })
}

/// Starts a unary gRPC call to `cluster` (an Envoy cluster name); the answer comes to the root
/// context's `on_grpc_call_response` with the returned token. Through the SDK, which routes that
/// answer; its wrapper is patched to return, not panic on, a status it does not expect (Envoy
/// answers BadArgument for an unknown cluster; see filter/vendor/proxy-wasm/KAFKA-LENS-PATCH.md).
#[cfg(target_arch = "wasm32")]
pub fn dispatch_grpc_call(cluster: &str, service: &str, method: &str, message: &[u8], timeout_ms: u64) -> Result<u32, HostError> {
    proxy_wasm::hostcalls::dispatch_grpc_call(cluster, service, method, Vec::new(), Some(message), std::time::Duration::from_millis(timeout_ms))
        .map_err(|status| HostError::Status(status as u32))
}

/// Asks Envoy to call the root context's `on_tick` every `millis` milliseconds.
#[cfg(target_arch = "wasm32")]
pub fn set_tick_period(millis: u32) -> Result<(), HostError> {
    check(unsafe { abi::proxy_set_tick_period_milliseconds(millis) })
}

/// Envoy's wall clock in nanoseconds since the epoch.
#[cfg(target_arch = "wasm32")]
pub fn now_nanos() -> Result<u64, HostError> {
    let mut t = 0u64;
    check(unsafe { abi::proxy_get_current_time_nanoseconds(&mut t) })?;
    Ok(t)
}

/// Writes a log line at `level`; a refusal is ignored (there is nowhere to report it).
#[cfg(target_arch = "wasm32")]
pub fn log(level: Level, message: &str) {
    let _ = unsafe { abi::proxy_log(level as u32, message.as_ptr(), message.len()) };
}

/// The log level Envoy runs the Wasm logger at.
#[cfg(target_arch = "wasm32")]
pub fn log_level() -> Result<Level, HostError> {
    let mut level = 0u32;
    check(unsafe { abi::proxy_get_log_level(&mut level) })?;
    Ok(match level {
        0 => Level::Trace,
        1 => Level::Debug,
        2 => Level::Info,
        3 => Level::Warn,
        4 => Level::Error,
        _ => Level::Critical,
    })
}

#[cfg(not(target_arch = "wasm32"))]
mod native {
    //! Native builds have no Envoy: every call answers `NotInWasm`.
    use super::*;

    pub fn read_buffer(_: Buffer, _: usize, _: usize, _: &mut Vec<u8>) -> Result<usize, HostError> {
        Err(HostError::NotInWasm)
    }
    pub fn write_buffer(_: Buffer, _: usize, _: usize, _: &[u8]) -> Result<(), HostError> {
        Err(HostError::NotInWasm)
    }
    pub fn define_metric(_: MetricKind, _: &str) -> Result<u32, HostError> {
        Err(HostError::NotInWasm)
    }
    pub fn increment_metric(_: u32, _: i64) -> Result<(), HostError> {
        Err(HostError::NotInWasm)
    }
    pub fn record_metric(_: u32, _: u64) -> Result<(), HostError> {
        Err(HostError::NotInWasm)
    }
    pub fn close(_: Stream) -> Result<(), HostError> {
        Err(HostError::NotInWasm)
    }
    pub fn now_nanos() -> Result<u64, HostError> {
        Err(HostError::NotInWasm)
    }
    pub fn set_tick_period(_: u32) -> Result<(), HostError> {
        Err(HostError::NotInWasm)
    }
    pub fn get_shared(_: &str) -> Result<Option<(Vec<u8>, u32)>, HostError> {
        Err(HostError::NotInWasm)
    }
    pub fn set_shared(_: &str, _: &[u8], _: u32) -> Result<(), HostError> {
        Err(HostError::NotInWasm)
    }
    pub fn get_property(_: &[&str]) -> Result<Option<Vec<u8>>, HostError> {
        Err(HostError::NotInWasm)
    }
    pub fn set_property(_: &str, _: &[u8]) -> Result<(), HostError> {
        Err(HostError::NotInWasm)
    }
    pub fn dispatch_grpc_call(_: &str, _: &str, _: &str, _: &[u8], _: u64) -> Result<u32, HostError> {
        Err(HostError::NotInWasm)
    }
    pub fn log(_: Level, _: &str) {}
    pub fn log_level() -> Result<Level, HostError> {
        Err(HostError::NotInWasm)
    }
}

#[cfg(not(target_arch = "wasm32"))]
pub use native::*;

/// A [`kafka_lens_codec::frame::ChunkSource`] over one of Envoy's connection buffers: the splitter
/// reads exactly the ranges it needs, so bytes it skips are never copied into the VM. The last
/// refusal is kept for the caller to count and log.
pub struct EnvoyBuffer {
    pub buffer: Buffer,
    pub error: Option<HostError>,
}

impl kafka_lens_codec::frame::ChunkSource for EnvoyBuffer {
    fn read_into(&mut self, start: usize, len: usize, out: &mut Vec<u8>) -> bool {
        match read_buffer(self.buffer, start, len, out) {
            Ok(n) if n == len => true,
            Ok(_) => false,
            Err(e) => {
                self.error = Some(e);
                false
            }
        }
    }
}

impl crate::flow::StreamBuffer for EnvoyBuffer {
    fn replace_prefix(&mut self, len: usize, data: &[u8]) -> bool {
        match write_buffer(self.buffer, 0, len, data) {
            Ok(()) => true,
            Err(e) => {
                self.error = Some(e);
                false
            }
        }
    }
}

/// `log` crate backend writing through [`log`], so `log::info!` and friends work in the filter
/// without the SDK's logger (which unwraps its hostcall).
struct EnvoyLogger;

static LOGGER: EnvoyLogger = EnvoyLogger;

impl ::log::Log for EnvoyLogger {
    fn enabled(&self, metadata: &::log::Metadata) -> bool {
        metadata.level() <= ::log::max_level()
    }

    fn log(&self, record: &::log::Record) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let level = match record.level() {
            ::log::Level::Trace => Level::Trace,
            ::log::Level::Debug => Level::Debug,
            ::log::Level::Info => Level::Info,
            ::log::Level::Warn => Level::Warn,
            ::log::Level::Error => Level::Error,
        };
        log(level, &record.args().to_string());
    }

    fn flush(&self) {}
}

/// Installs the logger (once per VM) at the level Envoy runs its Wasm logger at.
pub fn init_logging() {
    let _ = ::log::set_logger(&LOGGER);
    let filter = match log_level() {
        Ok(Level::Trace) => ::log::LevelFilter::Trace,
        Ok(Level::Debug) => ::log::LevelFilter::Debug,
        Ok(Level::Info) | Err(_) => ::log::LevelFilter::Info,
        Ok(Level::Warn) => ::log::LevelFilter::Warn,
        Ok(Level::Error) => ::log::LevelFilter::Error,
        Ok(Level::Critical) => ::log::LevelFilter::Off,
    };
    ::log::set_max_level(filter);
}
