"""Fixtures: one broker per session; a fresh tap and a fresh Envoy per test, so every test reads
counters that only its own traffic produced."""
from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import ROOT, Broker, EchoServer, Envoy, free_port  # noqa: E402
from kafka_tap import KafkaTap  # noqa: E402


@pytest.fixture(scope="session")
def workdir() -> Path:
    d = ROOT / ".run" / f"e2e-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}"
    d.mkdir(parents=True, exist_ok=True)
    return d


@pytest.fixture(scope="session")
def proxy_port() -> int:
    """The Envoy listener port every test's Envoy binds; the broker advertises it."""
    return free_port()


@pytest.fixture(scope="session")
def broker(workdir: Path, proxy_port: int):
    b = Broker(free_port(), proxy_port, workdir)
    yield b
    b.stop()


@pytest.fixture
def tap(broker: Broker):
    t = KafkaTap(broker.port)
    yield t
    t.stop()


@pytest.fixture
def envoy(request, workdir: Path, proxy_port: int, tap: KafkaTap):
    """Envoy -> tap -> broker. A test can pass a filter configuration with
    `@pytest.mark.filter_config({...})`."""
    marker = request.node.get_closest_marker("filter_config")
    e = Envoy(proxy_port, tap.port, workdir, filter_config=marker.args[0] if marker else None)
    yield e
    panics = e.metrics().value("kafka_lens_panics_total")
    e.stop()
    assert_vm_healthy(e)
    assert panics == 0, f"kafka_lens_panics_total is {panics} (None: not defined)"


@pytest.fixture
def echo_envoy(workdir: Path, proxy_port: int):
    """Envoy + kafka-lens in front of an echo server instead of a broker: pass-through is exact
    to check, since what comes back crossed the proxy twice."""
    echo = EchoServer()
    e = Envoy(proxy_port, echo.port, workdir)
    yield e
    e.stop()
    echo.stop()
    assert_vm_healthy(e)


def assert_vm_healthy(envoy: Envoy) -> None:
    """No Wasm VM may have crashed during the test."""
    log = envoy.log_text()
    for marker in ("Function: proxy_on", "wasm trap", "panicked at", "Plugin configured to fail closed"):
        assert marker not in log, f"Wasm VM failure in Envoy log ({marker}); see {envoy.proc.log_path}"


def pytest_configure(config):
    config.addinivalue_line("markers", "filter_config(dict): kafka-lens JSON configuration for the test's Envoy")
