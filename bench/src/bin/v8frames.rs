//! Writes the frames `bench/v8/host.js` replays: a Produce request carrying `records` 1 KiB
//! records in one batch (size prefix included) and the broker's response to it.
//!
//! Usage: `v8frames <dir> [records]` (default 950 records: about 1 MB, what librdkafka sends).

use anyhow::{anyhow, Context, Result};
use kafka_lens_bench::{fixtures, shape::Shape, wire};
use kafka_lens_codec::body;
use kafka_lens_codec::kafka_protocol::messages::{ApiKey, RequestKind};

fn main() -> Result<()> {
    let mut args = std::env::args().skip(1);
    let dir = std::path::PathBuf::from(args.next().context("usage: v8frames <dir> [records]")?);
    let records: usize = args.next().map(|s| s.parse()).transpose()?.unwrap_or(950);
    let produce = fixtures::produce(Shape { record_bytes: 1024, records })?;
    let decoded = body::decode_request(&produce.frame).map_err(|e| anyhow!("{e:?}"))?;
    let RequestKind::Produce(request) = &decoded.body else { return Err(anyhow!("not a Produce request")) };
    let response = wire::response_frame(ApiKey::Produce, produce.version, decoded.header.correlation_id, &wire::produce_response_for(request))?;
    let size = u32::try_from(produce.frame.len())?;
    let mut frame = size.to_be_bytes().to_vec();
    frame.extend_from_slice(&produce.frame);
    std::fs::create_dir_all(&dir)?;
    std::fs::write(dir.join("request.bin"), &frame)?;
    std::fs::write(dir.join("response.bin"), &response)?;
    eprintln!("Produce v{}: request {} bytes, response {} bytes", produce.version, frame.len(), response.len());
    Ok(())
}
