"""Every shipped Envoy config passes `envoy --mode validate` (which also loads the Wasm module and
runs the filter's configuration check); filter/tests/shipped_configs.rs parses the embedded
kafka-lens configuration with the filter's own type."""
from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
import yaml

from harness import ROOT

CONFIGS = sorted((ROOT / "envoy-configs").glob("*.yaml"))


def module_paths(doc) -> list[str]:
    found = []
    if isinstance(doc, dict):
        local = doc.get("local")
        if isinstance(local, dict) and "filename" in local:
            found.append(local["filename"])
        for v in doc.values():
            found += module_paths(v)
    elif isinstance(doc, list):
        for v in doc:
            found += module_paths(v)
    return found


@pytest.mark.parametrize("config", CONFIGS, ids=[c.name for c in CONFIGS])
def test_envoy_validates_shipped_config(config: Path):
    missing = [m for m in module_paths(yaml.safe_load(config.read_text())) if not (ROOT / m).exists()]
    assert not missing, f"modules not built (tests/run.sh builds them before the end-to-end tests): {missing}"
    out = subprocess.run(["envoy", "--mode", "validate", "-c", str(config)], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    assert "OK" in out.stdout + out.stderr


BAD_CONFIGS = [
    ({"max_frame_bytes": 100, "diagnostics": {}}, "max_frame_bytes"),
    ({"policy": {"rules": [{"name": "r", "match": {"client_id": {"regex": "a)|(b"}}, "deny": True}]}},
     "policy.rules[0].match.client_id.regex"),
    ({"policy": {"rules": [{"name": "r", "match": {"apis": ["DeleteTopic"]}, "deny": True}]}}, "policy.rules[0].match.apis"),
    ({"policy": {"rules": [{"name": "r", "deny": True, "denyy": True}]}}, "policy.rules[0].denyy"),
    ({"topic_rewrite": {"renames": {"a": "x", "b": "x"}}}, "topic_rewrite.renames.b"),
    ({"tracing": {"collector_cluster": "otel", "sample_per_million": 2000000}}, "tracing.sample_per_million"),
    ({"topic_rewrite": {"tenants": [{"name": "a", "prefix": "t."}, {"name": "b", "prefix": "t.b."}]}},
     "topic_rewrite.tenants[1].prefix"),
]


@pytest.mark.parametrize("config,field", BAD_CONFIGS, ids=[f for _, f in BAD_CONFIGS])
def test_invalid_filter_config_is_refused_naming_the_field(tmp_path: Path, config: dict, field: str):
    """A bad configuration fails Envoy's config load, and the log names the field."""
    doc = yaml.safe_load((ROOT / "envoy-configs" / "local.yaml").read_text())
    wasm = doc["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"]["config"]
    wasm["configuration"]["value"] = json.dumps(config)
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(doc))
    out = subprocess.run(["envoy", "--mode", "validate", "-c", str(bad)], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode != 0
    log = out.stdout + out.stderr
    assert f"invalid kafka-lens configuration at `{field}`" in log, log[-3000:]
