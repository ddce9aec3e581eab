//! `loadgen`: the Kafka load generator and canned responder of the kafka-lens benchmarks.
//!
//! ```text
//! loadgen respond --listen 127.0.0.1:PORT
//! loadgen setup   --addr 127.0.0.1:PORT --topics a,b [--preload TOPIC=SHAPE:BATCHES]...
//! loadgen run     --addr 127.0.0.1:PORT --workload produce|fetch --shape 100B|1KiB|64KiB --topic T
//!                 [--connections 1] [--window 4] [--warmup 0.5] [--duration 2] [--rate REQ_PER_S]
//!                 [--watch LABEL=PID]... [--clock-ticks 100]
//! loadgen hold    --addr 127.0.0.1:PORT --connections N --shape S --topic T [--hold 5]
//! ```
//! `run` prints one JSON report; `hold` prints `{"held": N}` once its connections are open.
//! bench/run.py drives it.

#![allow(clippy::expect_used, clippy::unwrap_used, clippy::indexing_slicing)]

use std::collections::HashMap;
use std::io::Write;
use std::net::{SocketAddr, TcpListener};
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use kafka_lens_bench::client::{self, LoadSpec, Watched, Workload};
use kafka_lens_bench::responder;
use kafka_lens_bench::session;
use kafka_lens_bench::shape::Shape;

/// `--key value` options; repeated keys keep every value.
struct Args(HashMap<String, Vec<String>>);

impl Args {
    fn parse(raw: &[String]) -> Result<Args> {
        let mut map: HashMap<String, Vec<String>> = HashMap::new();
        let mut it = raw.iter();
        while let Some(key) = it.next() {
            let key = key.strip_prefix("--").ok_or_else(|| anyhow!("expected --option, got {key:?}"))?;
            let value = it.next().ok_or_else(|| anyhow!("--{key} needs a value"))?;
            map.entry(key.to_string()).or_default().push(value.clone());
        }
        Ok(Args(map))
    }

    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.last()).map(String::as_str)
    }

    fn all(&self, key: &str) -> &[String] {
        self.0.get(key).map(Vec::as_slice).unwrap_or_default()
    }

    fn req(&self, key: &str) -> Result<&str> {
        self.get(key).ok_or_else(|| anyhow!("--{key} is required"))
    }

    fn num<T: std::str::FromStr>(&self, key: &str, default: T) -> Result<T> {
        match self.get(key) {
            None => Ok(default),
            Some(v) => v.parse().map_err(|_| anyhow!("--{key}: cannot parse {v:?}")),
        }
    }

    fn addr(&self, key: &str) -> Result<SocketAddr> {
        let raw = self.req(key)?;
        let addr: SocketAddr = raw.parse().with_context(|| format!("--{key} {raw:?}"))?;
        if !addr.ip().is_loopback() {
            bail!("--{key} {addr}: the benchmarks only send traffic to loopback addresses");
        }
        Ok(addr)
    }

    fn shape(&self) -> Result<Shape> {
        self.req("shape")?.parse().map_err(|e: String| anyhow!(e))
    }
}

fn main() -> Result<()> {
    let raw: Vec<String> = std::env::args().skip(1).collect();
    let (command, rest) = raw.split_first().ok_or_else(|| anyhow!("usage: loadgen respond|setup|run|hold --option value..."))?;
    let args = Args::parse(rest)?;
    match command.as_str() {
        "respond" => {
            let listener = TcpListener::bind(args.addr("listen")?)?;
            println!("listening on {}", listener.local_addr()?);
            std::io::stdout().flush()?;
            responder::serve(listener)
        }
        "setup" => {
            let addr = args.addr("addr")?;
            let topics: Vec<String> = args.req("topics")?.split(',').filter(|t| !t.is_empty()).map(str::to_string).collect();
            session::create_topics(addr, &topics)?;
            for preload in args.all("preload") {
                let (topic, spec) = preload.split_once('=').ok_or_else(|| anyhow!("--preload TOPIC=SHAPE:BATCHES"))?;
                let (shape, batches) = spec.split_once(':').ok_or_else(|| anyhow!("--preload TOPIC=SHAPE:BATCHES"))?;
                let shape: Shape = shape.parse().map_err(|e: String| anyhow!(e))?;
                session::preload(addr, topic, shape, batches.parse()?)?;
            }
            println!("{}", serde_json::json!({ "topics": topics }));
            Ok(())
        }
        "run" => {
            let watch = args
                .all("watch")
                .iter()
                .map(|w| {
                    let (label, pid) = w.split_once('=').ok_or_else(|| anyhow!("--watch LABEL=PID"))?;
                    Ok(Watched { label: label.to_string(), pid: pid.parse()? })
                })
                .collect::<Result<Vec<_>>>()?;
            let spec = LoadSpec {
                addr: args.addr("addr")?,
                workload: Workload::parse(args.req("workload")?)?,
                shape: args.shape()?,
                topic: args.req("topic")?.to_string(),
                connections: args.num("connections", 1)?,
                window: args.num("window", 4)?,
                warmup: Duration::from_secs_f64(args.num("warmup", 0.5)?),
                duration: Duration::from_secs_f64(args.num("duration", 2.0)?),
                rate: args.get("rate").map(str::parse).transpose()?,
                watch,
                clock_ticks: args.num("clock-ticks", 100)?,
            };
            let report = client::run(&spec)?;
            println!("{report}");
            let errors = report["errors"].as_array().map_or(0, Vec::len);
            if errors > 0 {
                bail!("{errors} connection(s) failed: {}", report["errors"]);
            }
            Ok(())
        }
        "hold" => {
            let hold = Duration::from_secs_f64(args.num("hold", 5.0)?);
            client::hold(args.addr("addr")?, args.num("connections", 1)?, args.shape()?, args.req("topic")?, hold, |n| {
                println!("{}", serde_json::json!({ "held": n }));
                let _ = std::io::stdout().flush();
            })
        }
        other => bail!("unknown command {other:?}: respond, setup, run, hold"),
    }
}
