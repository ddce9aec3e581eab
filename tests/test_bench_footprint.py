"""bench/v8/footprint.py, which counts the code and data one round trip touches in a module: run
on the pass-through floor module with and without its frame-start reads, the reads must show up as
the 1 KiB of lines they write into the VM and as the functions that serve them, and nothing else.
"""
from __future__ import annotations

import json
import shutil
import struct
import subprocess
import sys
from pathlib import Path

import pytest

from harness import ROOT

FLOOR = ROOT / ".run" / "bench-floor.wasm"  # built by tests/run.sh
TOOLS = ("node", "wasm-opt", "wasm-dis")


def frames(directory: Path) -> None:
    """A 2,000-byte request frame and a 59-byte response frame, as host.cjs replays them."""
    request = struct.pack(">ihhi", 1996, 0, 9, 1) + bytes(1996 - 8)
    response = struct.pack(">ii", 55, 1) + bytes(55 - 4)
    (directory / "request.bin").write_bytes(request)
    (directory / "response.bin").write_bytes(response)


def footprint(tmp_path: Path, config: dict) -> dict:
    frames(tmp_path)
    config_path = tmp_path / "config.json"
    config_path.write_text(json.dumps(config))
    out = tmp_path / "footprint.json"
    subprocess.run([sys.executable, str(ROOT / "bench" / "v8" / "footprint.py"), "--json", str(out),
                    str(FLOOR), str(tmp_path), str(config_path)],
                   check=True, capture_output=True, timeout=300)
    return {row["callback"]: row for row in json.loads(out.read_text())["callbacks"]}


@pytest.mark.skipif(any(shutil.which(tool) is None for tool in TOOLS), reason="needs node and binaryen")
def test_the_floor_filters_reads_are_what_its_footprint_adds(tmp_path):
    reading = footprint(tmp_path, {"read": "frame_starts"})
    quiet = footprint(tmp_path, {})

    # The frame start's read writes 1 KiB into the VM: 16 lines, less any the allocator touched
    # first (the chunk it hands out sits next to its own header).
    assert 14 <= reading["frame start"]["regions"]["read"] <= 17
    assert quiet["round trip"]["regions"]["read"] == 0
    # Serving a read calls back into the VM's allocator; a filter that reads nothing does not.
    assert "proxy_on_memory_allocate" in reading["frame start"]["functions"]
    assert "proxy_on_memory_allocate" not in quiet["round trip"]["functions"]
    assert "dlmalloc" not in quiet["round trip"]["functions"]
    for name in ("proxy_on_downstream_data", "proxy_on_upstream_data"):
        assert name in quiet["round trip"]["functions"]
    assert reading["round trip"]["lines"] > quiet["round trip"]["lines"] + 14
    assert reading["round trip"]["function_bytes"] > quiet["round trip"]["function_bytes"]
    # Every line is in one region, and lines lie in at least as many pages as their count allows.
    for row in (*reading.values(), *quiet.values()):
        assert sum(row["regions"].values()) == row["lines"]
        assert row["pages"] * 64 >= row["lines"] > 0 or row["lines"] == row["pages"] == 0
