//! The floor filter: a proxy-wasm network filter that does nothing.
//!
//! Every byte still crosses Envoy's Wasm boundary as a callback (`on_downstream_data`,
//! `on_upstream_data`) that returns `Continue` without reading the buffer, so what this filter
//! costs over plain `tcp_proxy` is the minimum any proxy-wasm network filter pays: the VM hop and
//! the per-connection context, with no data copied. The benchmarks compare kafka-lens against it
//! to separate the filter's own work from the price of being a Wasm filter at all.

#[cfg(target_arch = "wasm32")]
mod filter {
    use proxy_wasm::traits::{Context, RootContext, StreamContext};
    use proxy_wasm::types::{Action, ContextType};

    /// Creates one [`Stream`] per connection; has no configuration.
    pub struct Root;

    impl Context for Root {}

    impl RootContext for Root {
        fn get_type(&self) -> Option<ContextType> {
            Some(ContextType::StreamContext)
        }

        fn create_stream_context(&self, _context_id: u32) -> Option<Box<dyn StreamContext>> {
            Some(Box::new(Stream))
        }
    }

    /// One connection. The data callbacks are written out (rather than left to the SDK's
    /// defaults) so the module states what it does: forward everything, read nothing.
    pub struct Stream;

    impl Context for Stream {}

    impl StreamContext for Stream {
        fn on_downstream_data(&mut self, _data_size: usize, _end_of_stream: bool) -> Action {
            Action::Continue
        }

        fn on_upstream_data(&mut self, _data_size: usize, _end_of_stream: bool) -> Action {
            Action::Continue
        }
    }
}

#[cfg(target_arch = "wasm32")]
proxy_wasm::main! {{
    // Only the root context: Envoy refuses hostcalls (even setting the log level) during
    // `_initialize`.
    proxy_wasm::set_root_context(|_| -> Box<dyn proxy_wasm::traits::RootContext> { Box::new(filter::Root) });
}}
