"""Config reload: Envoy serves the listener from a watched LDS file; replacing the kafka-lens
configuration in it gives new connections the new configuration while existing connections go on
under the old one until they close."""
from __future__ import annotations

import copy
import json
import os
import socket

import yaml

from clients import wait_until
from conftest import assert_vm_healthy
from harness import EchoServer, Envoy, free_port
from protocol_fuzz import API_VERSIONS_V0, METADATA_V1_ALL, recv_exact


def write_lds(directory, listener: dict) -> None:
    """Atomic replace (Envoy watches the directory for moves)."""
    tmp = directory / ".lds.tmp"
    tmp.write_text(yaml.safe_dump({"resources": [{"@type": "type.googleapis.com/envoy.config.listener.v3.Listener", **listener}]}))
    os.replace(tmp, directory / "lds.yaml")


def exchange(sock: socket.socket, data: bytes) -> None:
    sock.sendall(data)
    assert recv_exact(sock, len(data)) == data


def test_new_connections_use_the_new_config_old_ones_finish(workdir, proxy_port):
    echo = EchoServer()
    lds = workdir / f"lds-{free_port()}"
    lds.mkdir()
    state = {}

    def to_lds(config: dict) -> dict:
        listener = config["static_resources"].pop("listeners")[0]
        state["listener"] = listener
        write_lds(lds, listener)
        config["node"] = {"id": "kafka-lens-reload-test", "cluster": "kafka-lens"}
        config["dynamic_resources"] = {"lds_config": {"resource_api_version": "V3", "path_config_source": {
            "path": str(lds / "lds.yaml"), "watched_directory": {"path": str(lds)}}}}
        return config

    envoy = Envoy(proxy_port, echo.port, workdir, filter_config={"decode_bodies": True}, transform=to_lds,
                  extra_args=["--drain-time-s", "30"])
    try:
        decoded = lambda: envoy.metrics().get("kafka_bodies_decoded_total", direction="request", api="Metadata")  # noqa: E731
        old = socket.create_connection(("127.0.0.1", proxy_port), timeout=5)
        exchange(old, API_VERSIONS_V0 + METADATA_V1_ALL)
        wait_until(lambda: decoded() == 1, 5, what="the old connection's decode to be counted")
        loads = envoy.metrics().get("kafka_lens_config_loads_total")

        listener = copy.deepcopy(state["listener"])
        wasm = listener["filter_chains"][0]["filters"][0]["typed_config"]["config"]
        wasm["configuration"]["value"] = json.dumps({"decode_bodies": False})
        write_lds(lds, listener)
        wait_until(lambda: envoy.metrics().get("kafka_lens_config_loads_total") > loads, 20, what="the new configuration to load")
        wait_until(lambda: "listener_manager.lds.update_success: 2" in envoy.admin("stats?filter=lds.update_success"), 20,
                   what="the listener update")

        with socket.create_connection(("127.0.0.1", proxy_port), timeout=5) as new:
            exchange(new, API_VERSIONS_V0 + METADATA_V1_ALL)
        # The new connection's counts reach Envoy when it closes.
        wait_until(lambda: envoy.metrics().get("kafka_requests_total", api="Metadata") == 2, 5, what="the new connection's counts")
        assert decoded() == 1, "a new connection must run with decode_bodies=false"

        exchange(old, METADATA_V1_ALL)  # the old connection still works, under the old configuration
        wait_until(lambda: decoded() == 2, 5, what="the old connection's second decode to be counted")
        old.close()
        assert envoy.settled_metrics().get("kafka_connections_closed_by_filter_total") == 0
    finally:
        envoy.stop()
        echo.stop()
    assert_vm_healthy(envoy)
