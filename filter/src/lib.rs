//! kafka-lens: a Kafka-protocol-aware Envoy network filter, compiled to a proxy-wasm module.
//!
//! The crate keeps proxy-wasm at its edge: [`context`] holds the thin root and stream contexts
//! Envoy calls, [`host`] the only hostcalls the filter makes (statuses, never panics). Everything
//! else is plain Rust over the codec crate: [`config`], [`metrics`], [`connection`].

pub mod alloc;
pub mod config;
pub mod connection;
pub mod host;
pub mod labels;
pub mod metrics;

#[cfg(target_arch = "wasm32")]
mod context;

#[cfg(target_arch = "wasm32")]
#[global_allocator]
static ALLOCATOR: alloc::CountingAlloc = alloc::CountingAlloc;

#[cfg(target_arch = "wasm32")]
proxy_wasm::main! {{
    // Only the root context here: Envoy refuses hostcalls (even the log level) during _initialize.
    proxy_wasm::set_root_context(|_| -> Box<dyn proxy_wasm::traits::RootContext> {
        Box::new(context::Root::default())
    });
}}
