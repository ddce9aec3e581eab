"""The demo behind envoy-configs/demo.sh: broker + Envoy + kafka-lens on the ports of
envoy-configs/local.yaml, a sample producer and consumer with kcat, then the metrics."""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import ROOT, Broker, Envoy, Metrics  # noqa: E402

PROXY_PORT, ADMIN_PORT, BROKER_PORT = 19092, 9901, 9092


def kcat(*args: str, stdin: bytes | None = None) -> bytes:
    env = {**os.environ, "LD_LIBRARY_PATH": os.environ["KCAT_LIBDIR"]}
    return subprocess.run(["kcat", *args], input=stdin, env=env, check=True, capture_output=True, timeout=60).stdout


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--exit", action="store_true", help="stop after the sample run")
    args = parser.parse_args()
    logs = ROOT / ".run" / "demo"
    logs.mkdir(parents=True, exist_ok=True)

    print(f"\n== starting tansu on 127.0.0.1:{BROKER_PORT} (advertising the proxy, 127.0.0.1:{PROXY_PORT})")
    broker = Broker(BROKER_PORT, PROXY_PORT, logs)
    print(f"== starting Envoy + kafka-lens: Kafka on 127.0.0.1:{PROXY_PORT}, admin on 127.0.0.1:{ADMIN_PORT}")
    envoy = Envoy(PROXY_PORT, BROKER_PORT, logs, failure_policy="FAIL_OPEN", admin_port=ADMIN_PORT)
    try:
        bootstrap = f"127.0.0.1:{PROXY_PORT}"
        from kafka.admin import KafkaAdminClient, NewTopic
        admin = KafkaAdminClient(bootstrap_servers=bootstrap, client_id="demo-admin")
        if "demo" not in admin.list_topics():
            admin.create_topics([NewTopic("demo", 3, 1)])
        admin.close()

        lines = [f"order-{i}:{{\"order\": {i}, \"amount\": {i * 7 % 100}}}" for i in range(1000)]
        print("== kcat: producing 1000 records to topic 'demo' through the proxy")
        kcat("-b", bootstrap, "-P", "-t", "demo", "-K", ":", "-X", "client.id=demo-producer",
             stdin="\n".join(lines).encode() + b"\n")
        print("== kcat: consuming them back in consumer group 'demo-group'")
        out = kcat("-b", bootstrap, "-G", "demo-group", "-X", "client.id=demo-consumer",
                   "-X", "auto.offset.reset=earliest", "-e", "-f", "%k\n", "demo")
        print(f"   consumed {len(out.decode().split())} records")

        time.sleep(0.5)
        m = Metrics.parse(envoy.admin("stats/prometheus"))
        print("\n== what kafka-lens saw (requests per API):")
        for api, n in sorted(m.by_label("kafka_requests_total", "api").items()):
            print(f"   {api:<26} {int(n)}")
        print(f"\nMetrics:  curl -s http://127.0.0.1:{ADMIN_PORT}/stats/prometheus | grep ^kafka_")
        print(f"Kafka:    any client with bootstrap servers 127.0.0.1:{PROXY_PORT}")
        print(f"Logs:     {logs}")
        if args.exit or not sys.stdin.isatty():
            return 0
        print("\nRunning; press Ctrl-C to stop.")
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        return 0
    finally:
        envoy.stop()
        broker.stop()


if __name__ == "__main__":
    sys.exit(main())
