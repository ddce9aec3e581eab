//! Panics counted on the way down.
//!
//! The filter is written not to panic (clippy denies unwrap, expect, panic and fallible indexing;
//! hostcalls never go through the SDK's panicking wrappers), and the module is built with
//! `panic = "abort"`: a panic would trap the VM and with it every connection of the Envoy worker.
//! It cannot be caught, but it can be counted: the panic hook runs before the abort and bumps
//! `kafka_lens_panics_total` straight through the hostcall (not through the VM's batched metrics,
//! which die with the VM), then logs the message at critical level. The counter is defined at 0
//! when the configuration loads, so an alert can watch it.

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};

use crate::host::{self, Level, MetricKind};

/// The counter's name in Envoy.
pub const METRIC_NAME: &str = "kafka_lens_panics_total";

static METRIC_ID: AtomicU32 = AtomicU32::new(0);
static DEFINED: AtomicBool = AtomicBool::new(false);
static SEEN: AtomicU64 = AtomicU64::new(0);

/// Defines the counter (at 0) in Envoy. Call when the configuration loads.
pub fn define() {
    if let Ok(id) = host::define_metric(MetricKind::Counter, METRIC_NAME) {
        METRIC_ID.store(id, Ordering::Relaxed);
        DEFINED.store(true, Ordering::Relaxed);
    }
}

/// Installs the hook that counts and logs a panic before the VM aborts.
pub fn install_hook() {
    std::panic::set_hook(Box::new(|info| on_panic(&info.to_string())));
}

fn on_panic(message: &str) {
    SEEN.fetch_add(1, Ordering::Relaxed);
    if DEFINED.load(Ordering::Relaxed) {
        let _ = host::increment_metric(METRIC_ID.load(Ordering::Relaxed), 1);
    }
    host::log(Level::Critical, &format!("kafka-lens panicked, the Wasm VM stops: {message}"));
}

/// Panics this process has seen (native tests).
pub fn seen() -> u64 {
    SEEN.load(Ordering::Relaxed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hook_counts_a_panic() {
        let before = seen();
        install_hook();
        let caught = std::panic::catch_unwind(|| panic!("a test panic"));
        let _ = std::panic::take_hook(); // the default hook again, for the other tests' messages
        assert!(caught.is_err());
        assert_eq!(seen(), before + 1);
    }
}
