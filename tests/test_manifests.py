"""The Istio objects in istio/, checked offline (no cluster exists here and none is pretended).

- Custom resources (EnvoyFilter, WasmPlugin, TrafficExtension, KafkaCluster) validate against the
  upstream CRD schemas in ../shared/schemas with unknown fields refused (validate_crd.py);
  built-in kinds (the dashboard ConfigMap) with `kubernetes-validate --strict`; the dashboard JSON
  inside the ConfigMap with `check-jsonschema` and Grafana's published dashboard schema.
- The dashboard ConfigMap and the PrometheusRule are generated from istio/grafana/ and
  istio/prometheus/ and equal them (no drift); the rules pass `promtool check rules`.
- Every directory of manifests has a kustomization listing exactly its manifests.
- The filter's placement: before tcp_proxy on port 9092, inbound for brokers and outbound for
  clients, the same module, pin and configuration in every variant, `"tag_format": "istio"`, and
  the fail strategies the guide argues for. The embedded configurations are parsed by the filter's
  own parser in filter/tests/istio_manifests.rs (cargo test).

The schemas are not copied into this repository: a missing ../shared/schemas fails these tests.
"""
from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
ISTIO = ROOT / "istio"
SCHEMAS = ROOT.parent / "shared" / "schemas"
BIN = Path(sys.executable).parent
K8S_VERSION = "1.32.0"  # one of the versions kubernetes-validate ships schemas for

DASHBOARD = ISTIO / "grafana" / "kafka-lens-dashboard.json"
ALERTS = ISTIO / "prometheus" / "kafka-lens-alerts.yaml"
CONFIGMAP = ISTIO / "monitoring" / "grafana-dashboard-configmap.yaml"
RULE = ISTIO / "monitoring" / "prometheus-rule.yaml"
KAFKACLUSTER = ISTIO / "koperator" / "kafkacluster.yaml"
# YAML files under istio/ that are not Kubernetes objects.
NOT_OBJECTS = {ALERTS, ISTIO / "metrics" / "mesh-config.yaml"}
# Ways of inserting the filter: directory -> kind (Istio versions: see istio/README.md).
VARIANTS = {
    "wasmplugin": "WasmPlugin",
    "trafficextension": "TrafficExtension",
    "envoyfilter": "EnvoyFilter",
    "envoyfilter-local": "EnvoyFilter",
}
CUSTOM_KINDS = {"EnvoyFilter", "WasmPlugin", "TrafficExtension", "KafkaCluster"}
BUILTIN_KINDS = {"ConfigMap"}
NETWORK_WASM = "type.googleapis.com/envoy.extensions.filters.network.wasm.v3.Wasm"
NETWORK_RBAC = "type.googleapis.com/envoy.extensions.filters.network.rbac.v3.RBAC"
STRING_VALUE = "type.googleapis.com/google.protobuf.StringValue"
KAFKA_PORT = 9092


def yaml_files() -> list[Path]:
    """Every YAML file under istio/, except istio/oci/ (build tooling)."""
    return sorted(p for p in ISTIO.rglob("*.yaml") if "oci" not in p.relative_to(ISTIO).parts)


def objects() -> list[tuple[Path, dict]]:
    """Every Kubernetes object (kustomizations included) in the YAML files under istio/."""
    out = []
    for path in yaml_files():
        if path in NOT_OBJECTS:
            continue
        for doc in yaml.safe_load_all(path.read_text()):
            assert isinstance(doc, dict) and doc.get("apiVersion") and doc.get("kind"), f"{path}: not a Kubernetes object"
            out.append((path, doc))
    return out


def manifests(kinds: set[str] | None = None) -> list[tuple[Path, dict]]:
    return [(p, d) for p, d in objects() if d["kind"] != "Kustomization" and (kinds is None or d["kind"] in kinds)]


def tool(name: str) -> str:
    path = BIN / name
    assert path.exists(), f"{path} missing: pip install -r tests/requirements.txt"
    return str(path)


def run(cmd: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)


@pytest.fixture(scope="module")
def schemas() -> Path:
    assert (SCHEMAS / "validate_crd.py").exists(), f"{SCHEMAS} is missing: the upstream schemas live next to this repository"
    return SCHEMAS


def side(doc: dict) -> str:
    """`broker` (inbound, SERVER) or `client` (outbound, CLIENT) placement of a filter object."""
    spec = doc["spec"]
    if doc["kind"] == "EnvoyFilter":
        contexts = {p["match"]["context"] for p in spec["configPatches"] if p["applyTo"] == "NETWORK_FILTER"}
    else:
        contexts = {m["mode"] for m in spec["match"]}
    assert contexts in ({"SIDECAR_INBOUND"}, {"SERVER"}, {"SIDECAR_OUTBOUND"}, {"CLIENT"}), contexts
    return "broker" if contexts & {"SIDECAR_INBOUND", "SERVER"} else "client"


def wasm_typed_configs(value) -> list[dict]:
    """Every network Wasm typed config anywhere in an EnvoyFilter patch value."""
    found = []
    if isinstance(value, dict):
        if value.get("@type") == NETWORK_WASM:
            found.append(value)
        for child in value.values():
            found += wasm_typed_configs(child)
    elif isinstance(value, list):
        for child in value:
            found += wasm_typed_configs(child)
    return found


def filter_configs(doc: dict) -> list[dict]:
    """The kafka-lens configurations a filter object carries, as the JSON objects the filter gets."""
    if doc["kind"] == "WasmPlugin":
        return [doc["spec"]["pluginConfig"]]
    if doc["kind"] == "TrafficExtension":
        return [doc["spec"]["wasm"]["pluginConfig"]]
    out = []
    for typed in wasm_typed_configs(doc["spec"]["configPatches"]):
        configuration = typed["config"]["configuration"]
        assert configuration["@type"] == STRING_VALUE
        assert isinstance(configuration["value"], str)
        out.append(json.loads(configuration["value"]))
    return out


# --- the objects against the upstream schemas ---------------------------------------------------

def test_custom_resources_validate_against_the_upstream_crds(schemas: Path):
    crs = manifests(CUSTOM_KINDS)
    assert {d["kind"] for _, d in crs} == CUSTOM_KINDS
    files = sorted({str(p) for p, _ in crs})
    p = run([sys.executable, str(schemas / "validate_crd.py"), *files])
    assert p.returncode == 0, p.stdout + p.stderr
    ok = [line for line in p.stdout.splitlines() if line.startswith("OK ")]
    assert len(ok) == len(crs), p.stdout  # every object was checked against a CRD, none skipped


SPOILERS = [  # (file, text, replacement): each makes the file invalid against its CRD
    ("wasmplugin/broker-inbound.yaml", "failStrategy:", "failstrategy:"),
    ("trafficextension/broker-inbound.yaml", "    pluginName:", "    rootId:"),
    ("envoyfilter/broker-inbound.yaml", "  - applyTo: NETWORK_FILTER", "  - applyto: NETWORK_FILTER"),
    ("koperator/kafkacluster.yaml", "      brokerLabels:", "      podLabels:"),
    # An all-digit digest left unquoted is a YAML number, not a string.
    ("wasmplugin/client-outbound.yaml", f'sha256: "{"0" * 64}"', f"sha256: {'0' * 64}"),
]


def test_the_crd_validation_refuses_mistakes(schemas: Path, tmp_path: Path):
    """The validation above would catch a misspelt field: the same files, spoilt, fail."""
    spoilt = []
    for i, (path, old, new) in enumerate(SPOILERS):
        text = (ISTIO / path).read_text()
        assert old in text, (path, old)
        target = tmp_path / f"{i}-{Path(path).name}"
        target.write_text(text.replace(old, new, 1))
        spoilt.append(target)
    p = run([sys.executable, str(schemas / "validate_crd.py"), *map(str, spoilt)])
    assert p.returncode == 1, p.stdout + p.stderr
    for target in spoilt:
        assert f"FAIL  {target}" in p.stdout, f"{target.name} passed:\n{p.stdout}"


def test_builtin_kinds_validate_with_kubernetes_validate():
    builtin = manifests(BUILTIN_KINDS)
    assert builtin, "expected the dashboard ConfigMap"
    assert not [d["kind"] for _, d in manifests() if d["kind"] not in CUSTOM_KINDS | BUILTIN_KINDS | {"PrometheusRule"}]
    files = sorted({str(p) for p, _ in builtin})
    p = run([tool("kubernetes-validate"), "--strict", "-k", K8S_VERSION, *files])
    assert p.returncode == 0, p.stdout + p.stderr
    out = p.stdout + p.stderr
    assert "WARN" not in out and "ERROR" not in out, out
    assert out.count(" passed for resource ") == len(builtin), out


def test_the_dashboard_in_the_configmap_matches_the_grafana_schema(schemas: Path, tmp_path: Path):
    data = yaml.safe_load(CONFIGMAP.read_text())["data"]
    assert list(data) == ["kafka-lens-dashboard.json"]
    extracted = tmp_path / "kafka-lens-dashboard.json"
    extracted.write_text(data["kafka-lens-dashboard.json"])
    p = run([tool("check-jsonschema"), "--schemafile", str(schemas / "grafana" / "dashboard.jsonschema.json"), str(extracted)])
    assert p.returncode == 0, p.stdout + p.stderr


# --- generated monitoring objects: identical to their sources ---------------------------------

def test_the_configmap_and_the_prometheusrule_are_generated_from_the_sources():
    p = run([sys.executable, str(ISTIO / "generate.py"), "--check"])
    assert p.returncode == 0, p.stdout + p.stderr
    configmap = yaml.safe_load(CONFIGMAP.read_text())
    assert configmap["data"]["kafka-lens-dashboard.json"] == DASHBOARD.read_text()  # byte for byte
    rule = yaml.safe_load(RULE.read_text())
    assert rule["apiVersion"] == "monitoring.coreos.com/v1" and rule["kind"] == "PrometheusRule"
    assert set(rule) == {"apiVersion", "kind", "metadata", "spec"} and set(rule["spec"]) == {"groups"}
    assert rule["spec"]["groups"] == yaml.safe_load(ALERTS.read_text())["groups"]


def test_the_prometheusrule_groups_pass_promtool(tmp_path: Path):
    promtool = shutil.which("promtool")
    assert promtool, "promtool missing (Debian package prometheus; tests/setup.sh installs it)"
    rules = tmp_path / "rules.yaml"
    rules.write_text(yaml.safe_dump(yaml.safe_load(RULE.read_text())["spec"]))
    p = subprocess.run([promtool, "check", "rules", str(rules)], capture_output=True, text=True)
    assert p.returncode == 0 and "SUCCESS" in p.stdout, p.stdout + p.stderr


# --- kustomizations ----------------------------------------------------------------------------

def test_every_kustomization_lists_exactly_the_manifests_that_exist():
    kustomizations = {p.parent: d for p, d in objects() if d["kind"] == "Kustomization"}
    manifest_dirs = {p.parent for p, _ in manifests()}
    assert ISTIO in kustomizations
    assert set(kustomizations) == manifest_dirs | {ISTIO}, "a directory of manifests without a kustomization, or a kustomization without manifests"
    for directory, k in kustomizations.items():
        assert set(k) <= {"apiVersion", "kind", "resources"}, f"{directory}: only plain resources are used (no generators)"
        assert k["apiVersion"] == "kustomize.config.k8s.io/v1beta1"
        resources = k["resources"]
        assert len(resources) == len(set(resources)), f"{directory}: duplicate resources"
        for r in resources:
            target = directory / r
            assert target.exists(), f"{directory / 'kustomization.yaml'}: {r} does not exist"
            if target.is_dir():
                assert target in kustomizations, f"{target} has no kustomization.yaml"
        if directory != ISTIO:
            listed = {directory / r for r in resources}
            present = {p for p, _ in manifests() if p.parent == directory}
            assert listed == present, f"{directory}: kustomization lists {sorted(map(str, listed))}, manifests are {sorted(map(str, present))}"
    top = [directory.name for directory in (ISTIO / r for r in kustomizations[ISTIO]["resources"])]
    assert "monitoring" in top
    assert len([t for t in top if t in VARIANTS]) == 1, f"the top-level kustomization must insert the filter exactly once: {top}"


def test_every_yaml_file_is_accounted_for():
    """A YAML file under istio/ is a Kubernetes object or one of the known non-objects."""
    for path in NOT_OBJECTS:
        assert path.exists(), path
    objects()  # asserts that every other YAML document is an object


# --- the filter: where it goes, which module, which configuration ------------------------------

def filter_objects() -> list[tuple[str, Path, dict]]:
    out = []
    for variant, kind in VARIANTS.items():
        found = [(p, d) for p, d in manifests() if p.parent == ISTIO / variant]
        assert found and all(d["kind"] == kind for _, d in found), variant
        assert sorted(side(d) for _, d in found) == ["broker", "client"], f"{variant}: one broker-side and one client-side object"
        out += [(variant, p, d) for p, d in found]
    return out


def test_the_filter_sits_before_tcp_proxy_on_the_kafka_port():
    for variant, path, doc in filter_objects():
        spec = doc["spec"]
        inbound = side(doc) == "broker"
        if doc["kind"] == "EnvoyFilter":
            network = [p for p in spec["configPatches"] if p["applyTo"] == "NETWORK_FILTER"]
            assert len(network) == 1, path
            patch = network[0]
            listener = patch["match"]["listener"]
            assert patch["match"]["context"] == ("SIDECAR_INBOUND" if inbound else "SIDECAR_OUTBOUND")
            assert listener["portNumber"] == KAFKA_PORT
            assert listener["filterChain"]["filter"]["name"] == "envoy.filters.network.tcp_proxy"
            assert patch["patch"]["operation"] == "INSERT_BEFORE"
            value = patch["patch"]["value"]
            extension = [p for p in spec["configPatches"] if p["applyTo"] == "EXTENSION_CONFIG"]
            if variant == "envoyfilter":
                # The filter is configured by discovery from the EXTENSION_CONFIG of the same name;
                # the agent may substitute an RBAC filter when the download fails.
                assert len(extension) == 1 and extension[0]["patch"]["operation"] == "ADD", path
                assert value["name"] == extension[0]["patch"]["value"]["name"], path
                discovery = value["config_discovery"]
                assert discovery["type_urls"] == [NETWORK_WASM, NETWORK_RBAC], path
                assert "ads" in discovery["config_source"], path
                assert extension[0]["patch"]["value"]["typed_config"]["@type"] == NETWORK_WASM
            else:
                assert not extension and value["typed_config"]["@type"] == NETWORK_WASM, path
            typed = wasm_typed_configs(spec["configPatches"])
            assert len(typed) == 1, path
            config = typed[0]["config"]
            assert config["root_id"] == "kafka-lens" and config["vm_config"]["runtime"] == "envoy.wasm.runtime.v8", path
            assert config["name"] == value["name"], path
        else:
            wasm = spec if doc["kind"] == "WasmPlugin" else spec["wasm"]
            assert wasm["type"] == "NETWORK", path
            assert wasm["pluginName"] == "kafka-lens", path
            assert spec["match"] == [{"mode": "SERVER" if inbound else "CLIENT", "ports": [{"number": KAFKA_PORT}]}], path
            assert spec["phase"] == "STATS", path
        selector = spec["workloadSelector"]["labels"] if doc["kind"] == "EnvoyFilter" else spec["selector"]["matchLabels"]
        assert selector, f"{path}: the filter must select its workloads"


def test_one_module_and_one_pin_everywhere():
    """Every agent-fetched variant pulls the same OCI image with the same quoted sha256 (the guide
    replaces one placeholder); the local variant reads one file."""
    urls, pins, files = set(), set(), set()
    for variant, path, doc in filter_objects():
        if doc["kind"] == "EnvoyFilter":
            code = wasm_typed_configs(doc["spec"]["configPatches"])[0]["config"]["vm_config"]["code"]
            if variant == "envoyfilter-local":
                assert set(code) == {"local"}, path
                files.add(code["local"]["filename"])
                continue
            urls.add(code["remote"]["http_uri"]["uri"])
            pins.add(code["remote"]["sha256"])
        else:
            wasm = doc["spec"] if doc["kind"] == "WasmPlugin" else doc["spec"]["wasm"]
            urls.add(wasm["url"])
            pins.add(wasm["sha256"])
            assert wasm["imagePullPolicy"] == "IfNotPresent", path
    assert len(urls) == 1 and next(iter(urls)).startswith("oci://"), urls
    assert len(pins) == 1 and all(isinstance(p, str) and re.fullmatch(r"[a-f0-9]{64}", p) for p in pins), pins
    assert files == {"/var/local/lib/wasm/kafka-lens.wasm"}, files


def test_every_variant_carries_the_same_configuration_per_side():
    by_side: dict[str, list] = {"broker": [], "client": []}
    for _, path, doc in filter_objects():
        configs = filter_configs(doc)
        assert len(configs) == 1, path
        config = configs[0]
        assert config["tag_format"] == "istio", f"{path}: the filter must write Istio's tag form under Istio"
        by_side[side(doc)].append(config)
    for name, configs in by_side.items():
        assert len(configs) == len(VARIANTS), name
        assert all(c == configs[0] for c in configs), f"{name}-side configurations differ between the variants"
    assert by_side["broker"][0]["policy"]["rules"], "broker side: the sample policy"
    assert "policy" not in by_side["client"][0], "client side: metrics only"
    # Identity-keyed rules need the verified mTLS principal, which only the inbound sidecar has.
    assert any("principal" in json.dumps(r["match"]) for r in by_side["broker"][0]["policy"]["rules"] if "match" in r)


def test_fail_strategies():
    """Client side: fail open (metrics must never cost the client its Kafka connections).
    Broker side, which enforces a policy: never fail open (a policy must not silently vanish);
    FAIL_RELOAD where the Istio versions the manifest is for support it."""
    expected = {
        ("wasmplugin", "broker"): "FAIL_CLOSE",  # Istio >= 1.20; FAIL_RELOAD needs >= 1.27
        ("trafficextension", "broker"): "FAIL_RELOAD",
        ("envoyfilter", "broker"): "FAIL_RELOAD",
        ("envoyfilter-local", "broker"): "FAIL_RELOAD",
    }
    for variant, path, doc in filter_objects():
        s = side(doc)
        if doc["kind"] == "EnvoyFilter":
            strategy = wasm_typed_configs(doc["spec"]["configPatches"])[0]["config"]["failure_policy"]
        else:
            strategy = (doc["spec"] if doc["kind"] == "WasmPlugin" else doc["spec"]["wasm"])["failStrategy"]
        assert strategy == ("FAIL_OPEN" if s == "client" else expected[(variant, s)]), f"{path}: {strategy}"


# --- the KafkaCluster sample and the filter objects fit together ------------------------------

def test_the_kafkacluster_sample_runs_its_brokers_with_sidecars_and_matches_the_selectors():
    cluster = yaml.safe_load(KAFKACLUSTER.read_text())
    spec = cluster["spec"]
    namespace, name = cluster["metadata"]["namespace"], cluster["metadata"]["name"]
    assert "istioControlPlane" not in spec and "istioIngressConfig" not in spec  # removed in Koperator 0.29
    groups = spec["brokerConfigGroups"]
    for group in groups.values():
        assert group["brokerLabels"]["sidecar.istio.io/inject"] == "true"
        proxy_config = yaml.safe_load(group["brokerAnnotations"]["proxy.istio.io/config"])
        assert proxy_config["holdApplicationUntilProxyStarts"] is True
    listeners = {l["containerPort"]: l for l in spec["listenersConfig"]["internalListeners"]}
    client_listener = listeners[KAFKA_PORT]
    # Plain Kafka inside the pod (Istio's mTLS encrypts between sidecars): the filter must read it;
    # inter-broker and controller traffic on other ports, away from the broker-side policy.
    assert client_listener["type"] == "plaintext" and not client_listener.get("usedForInnerBrokerCommunication")
    assert all(l["type"] == "plaintext" for l in listeners.values())
    # Koperator labels broker pods app=kafka, kafka_cr=<cluster>, isBrokerNode=true.
    broker_groups = {g for g, c in groups.items() if "broker" in c.get("processRoles", [])}
    assert broker_groups and all(b.get("brokerConfigGroup") in groups for b in spec["brokers"])
    assert any(b["brokerConfigGroup"] in broker_groups for b in spec["brokers"])
    pod_labels = {"app": "kafka", "kafka_cr": name, "isBrokerNode": "true"}
    for _, path, doc in filter_objects():
        if side(doc) != "broker":
            continue
        selector = doc["spec"]["workloadSelector"]["labels"] if doc["kind"] == "EnvoyFilter" else doc["spec"]["selector"]["matchLabels"]
        assert selector.items() <= pod_labels.items(), f"{path}: selector {selector} does not select the sample's broker pods"
        assert doc["metadata"]["namespace"] == namespace, path


def test_client_side_objects_live_in_the_root_namespace():
    """Client pods live in many namespaces: the client-side objects go to Istio's root namespace,
    where a selector applies mesh-wide."""
    for _, path, doc in filter_objects():
        if side(doc) == "client":
            assert doc["metadata"]["namespace"] == "istio-system", path


# --- the guide ---------------------------------------------------------------------------------

def test_the_guide_links_exist_and_name_every_variant():
    guide = (ISTIO / "README.md").read_text()
    for target in re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", guide):
        if "://" in target:
            continue
        assert (ISTIO / target).resolve().exists(), f"istio/README.md links to missing {target}"
    for variant in [*VARIANTS, "koperator", "monitoring"]:
        assert f"{variant}/" in guide, variant
    assert "kafka_requests_total" in guide and "15020/stats/prometheus" in guide


# --- the Envoy config inside the EnvoyFilters, checked by Envoy itself -------------------------
def test_envoy_accepts_the_wasm_filter_of_every_envoyfilter(tmp_path: Path):
    """The CRD schema does not look inside a patch value. Each EnvoyFilter's network Wasm typed
    config is put in place of the one in envoy-configs/local.yaml (its module source changed to the
    local build: an oci:// module can only be fetched by the Istio agent) and must pass
    `envoy --mode validate`, which also runs the filter's configuration check."""
    local = yaml.safe_load((ROOT / "envoy-configs" / "local.yaml").read_text())
    module = ROOT / ".run" / "kafka-lens.wasm"
    assert module.exists(), "tests/run.sh builds the module before the end-to-end tests"
    checked = 0
    for path, doc in manifests({"EnvoyFilter"}):
        for typed in wasm_typed_configs(doc["spec"]["configPatches"]):
            config = json.loads(json.dumps(local))
            candidate = json.loads(json.dumps(typed))
            candidate["config"]["vm_config"]["code"] = {"local": {"filename": str(module)}}
            config["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"] = candidate
            rendered = tmp_path / f"{path.parent.name}-{path.stem}-{checked}.yaml"
            rendered.write_text(yaml.safe_dump(config, sort_keys=False))
            out = subprocess.run(["envoy", "--mode", "validate", "-c", str(rendered)], cwd=ROOT, capture_output=True,
                                 text=True, timeout=120)
            assert out.returncode == 0, f"{path}: " + (out.stdout + out.stderr)[-3000:]
            checked += 1
    assert checked >= 4, checked
