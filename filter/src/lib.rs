//! kafka-lens: a Kafka-protocol-aware Envoy network filter, compiled to a proxy-wasm module.
//!
//! The crate keeps proxy-wasm at its edge: [`context`] holds the thin root and stream contexts
//! Envoy calls, [`host`] the only hostcalls the filter makes (statuses, never panics). Everything
//! else is plain Rust over the codec crate: [`config`], [`metrics`], [`connection`], and one
//! module per thing the filter derives from the traffic: [`produce`], [`fetch`], [`groups`],
//! [`topics`], [`response_errors`], and [`identity`] (who the client is: mTLS principal, SASL user,
//! client id).

pub mod addresses;
pub mod alloc;
pub mod config;
pub mod connection;
pub mod facts;
pub mod fetch;
pub mod flow;
pub mod groups;
pub mod host;
pub mod identity;
pub mod labels;
pub mod metrics;
pub mod otlp;
pub mod panics;
pub mod policy;
pub mod produce;
pub mod refuse;
pub mod response_errors;
pub mod retries;
pub mod rewrite;
pub mod testing;
pub mod topics;
pub mod tracing;
pub mod versions;

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
