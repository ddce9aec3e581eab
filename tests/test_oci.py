"""istio/oci/build.py: the OCI image of the module that Istio's agent pulls for an oci:// WasmPlugin.

Checks that the build is reproducible (byte-identical tarball, same printed digest), that every
blob matches its descriptor, that the media types are the ones of the "compat" form the agent
accepts, that the agent's extraction logic (a Python rendering of istio/istio
pkg/wasm/imagefetcher.go, see istio/oci/README.md) yields the input module byte for byte, and
that the printed digest is the manifest digest, i.e. what WasmPlugin's sha256 must hold.
"""
from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from harness import ROOT

BUILD = ROOT / "istio" / "oci" / "build.py"
REAL_WASM = Path(os.environ.get("KAFKA_LENS_WASM", ROOT / ".run" / "kafka-lens.wasm"))

MT_INDEX = "application/vnd.oci.image.index.v1+json"
MT_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
MT_CONFIG = "application/vnd.oci.image.config.v1+json"
MT_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"  # go-containerregistry types.OCILayer
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DIGEST_RE = re.compile(r"^sha256:[a-f0-9]{64}$")
WASMPLUGIN_SHA256_RE = re.compile(r"^[a-f0-9]{64}$")  # the WasmPlugin CRD's pattern for spec.sha256


def fake_wasm(n: int = 70_000) -> bytes:
    """A wasm header plus bytes that span two 65535-byte stored deflate blocks."""
    return b"\0asm\x01\0\0\0" + bytes((i * 7 + i // 251) & 0xFF for i in range(n))


def build(tmp: Path, wasm: bytes | Path, *extra: str) -> tuple[Path, Path, str, str]:
    """Run the script; return (layout dir, tarball, printed digest, stderr)."""
    tmp.mkdir(parents=True, exist_ok=True)
    if isinstance(wasm, bytes):
        src = tmp / "in.wasm"
        src.write_bytes(wasm)
    else:
        src = wasm
    out = tmp / "oci"
    r = subprocess.run([sys.executable, str(BUILD), "--wasm", str(src), "--out", str(out), *extra],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, f"build.py failed ({r.returncode}):\n{r.stderr}"
    lines = r.stdout.splitlines()
    assert len(lines) == 1, f"stdout must be the digest alone, got {r.stdout!r}"
    return out, out.with_name("oci.tar"), lines[0], r.stderr


def read_blob(layout: Path, desc: dict) -> bytes:
    """Read a blob and verify it against its descriptor (digest and size)."""
    assert DIGEST_RE.match(desc["digest"]), desc
    blob = (layout / "blobs" / "sha256" / desc["digest"].split(":", 1)[1]).read_bytes()
    assert len(blob) == desc["size"], f"size of {desc['digest']}: {len(blob)} != {desc['size']}"
    assert "sha256:" + hashlib.sha256(blob).hexdigest() == desc["digest"]
    return blob


def parse_layout(layout: Path) -> dict:
    """index.json -> manifest -> config and layers, every blob verified."""
    assert json.loads((layout / "oci-layout").read_bytes()) == {"imageLayoutVersion": "1.0.0"}
    index = json.loads((layout / "index.json").read_bytes())
    assert index["schemaVersion"] == 2 and index["mediaType"] == MT_INDEX
    assert len(index["manifests"]) == 1
    mdesc = index["manifests"][0]
    assert mdesc["mediaType"] == MT_MANIFEST
    manifest_raw = read_blob(layout, mdesc)
    manifest = json.loads(manifest_raw)
    assert manifest["schemaVersion"] == 2
    config = json.loads(read_blob(layout, manifest["config"]))
    layers = [read_blob(layout, d) for d in manifest["layers"]]
    blob_files = sorted(p.name for p in (layout / "blobs" / "sha256").iterdir())
    referenced = sorted(d["digest"].split(":", 1)[1] for d in [mdesc, manifest["config"], *manifest["layers"]])
    assert blob_files == referenced, "the layout holds exactly the referenced blobs"
    return {"index": index, "mdesc": mdesc, "manifest_raw": manifest_raw, "manifest": manifest,
            "config": config, "layers": layers}


def istio_extract(manifest: dict, layers: list[bytes]) -> bytes:
    """What the agent does with a pulled image (istio/istio pkg/wasm/imagefetcher.go, PrepareFetch's
    binaryFetcher): a Docker manifest goes to extractDockerImage; otherwise extractOCIStandardImage
    takes the LAST layer, requires types.OCILayer, gunzips it and returns the first tar entry whose
    base name is plugin.wasm. (The 2-layer artifact fallback is not exercised: we do not build it.)"""
    assert manifest.get("mediaType") != DOCKER_MANIFEST
    assert len(manifest["layers"]) > 0, "number of layers must be greater than zero"
    assert manifest["layers"][-1]["mediaType"] == MT_LAYER
    with tarfile.open(fileobj=io.BytesIO(gzip.decompress(layers[-1])), mode="r:") as tar:
        for m in tar:
            if os.path.basename(m.name) == "plugin.wasm":
                return tar.extractfile(m).read()
    raise AssertionError("plugin.wasm not found in the archive")


def check_image(layout: Path, digest: str, wasm: bytes) -> dict:
    img = parse_layout(layout)
    manifest = img["manifest"]
    # The compat form: an OCI image manifest, OCI image config, one tar+gzip layer.
    assert manifest["mediaType"] == MT_MANIFEST
    assert manifest["config"]["mediaType"] == MT_CONFIG
    assert [d["mediaType"] for d in manifest["layers"]] == [MT_LAYER]
    # The printed digest is the manifest's, as the index and the raw manifest bytes say.
    assert DIGEST_RE.match(digest)
    assert digest == img["mdesc"]["digest"] == "sha256:" + hashlib.sha256(img["manifest_raw"]).hexdigest()
    # The layer: gzip with mtime 0; a tar of exactly plugin.wasm, normalised metadata.
    layer = img["layers"][0]
    assert layer[:3] == b"\x1f\x8b\x08" and layer[4:8] == b"\0\0\0\0", "gzip magic, deflate, MTIME 0"
    tar_bytes = gzip.decompress(layer)
    with tarfile.open(fileobj=io.BytesIO(tar_bytes), mode="r:") as tar:
        members = tar.getmembers()
        assert [m.name for m in members] == ["plugin.wasm"]
        m = members[0]
        assert (m.mtime, m.uid, m.gid, m.uname, m.gname, m.mode) == (0, 0, 0, "", "", 0o644)
        assert m.isfile() and tar.extractfile(m).read() == wasm
    # The config's diff_id is the uncompressed layer's digest.
    cfg = img["config"]
    assert cfg["rootfs"] == {"type": "layers", "diff_ids": ["sha256:" + hashlib.sha256(tar_bytes).hexdigest()]}
    assert cfg["architecture"] and cfg["os"]
    # And the agent's own logic gets the module back byte for byte.
    assert istio_extract(manifest, img["layers"]) == wasm
    return img


def check_tarball(tarball: Path, layout: Path) -> None:
    """The tarball holds the layout, sorted, with normalised metadata."""
    with tarfile.open(tarball, mode="r:") as tar:
        members = tar.getmembers()
        names = [m.name for m in members]
        assert names == sorted(names)
        files = {}
        for m in members:
            assert (m.mtime, m.uid, m.gid, m.uname, m.gname) == (0, 0, 0, "", ""), m.name
            if m.isdir():
                assert m.mode == 0o755
            else:
                assert m.isfile() and m.mode == 0o644, m.name
                files[m.name] = tar.extractfile(m).read()
    on_disk = {p.relative_to(layout).as_posix(): p.read_bytes() for p in layout.rglob("*") if p.is_file()}
    assert files == on_disk
    assert {"oci-layout", "index.json"} <= files.keys()


def check_wasmplugin_line(stderr: str, digest: str) -> None:
    """The hint for WasmPlugin names the manifest digest's hex, in the CRD's format."""
    m = re.search(r"^WasmPlugin: url: oci://\S+\s+sha256: (\S+)$", stderr, re.M)
    assert m, stderr
    assert WASMPLUGIN_SHA256_RE.match(m.group(1)) and m.group(1) == digest.split(":", 1)[1]


@pytest.mark.parametrize("compression", ["stored", "zlib"])
def test_reproducible_and_valid(tmp_path: Path, compression: str):
    wasm = fake_wasm()
    a_layout, a_tar, a_digest, a_err = build(tmp_path / "a", wasm, "--compression", compression)
    b_layout, b_tar, b_digest, _ = build(tmp_path / "b", wasm, "--compression", compression)
    assert a_digest == b_digest
    assert a_tar.read_bytes() == b_tar.read_bytes(), "the tarball is byte-identical across builds"
    check_image(a_layout, a_digest, wasm)
    check_tarball(a_tar, a_layout)
    check_wasmplugin_line(a_err, a_digest)
    # Rebuilding over an existing layout replaces it with the same bytes.
    _, c_tar, c_digest, _ = build(tmp_path / "a", wasm, "--compression", compression)
    assert c_digest == a_digest and c_tar.read_bytes() == b_tar.read_bytes()


def test_stored_layer_is_exact(tmp_path: Path):
    """The default layer does not depend on the zlib build: its deflate stream is stored blocks
    written by the script, so the whole gzip member is predictable from the tar alone."""
    wasm = fake_wasm()
    layout, _, digest, _ = build(tmp_path, wasm)
    layer = check_image(layout, digest, wasm)["layers"][0]
    tar_bytes = gzip.decompress(layer)
    assert layer[:10] == b"\x1f\x8b\x08\x00\0\0\0\0\x00\xff"
    blocks = -(-len(tar_bytes) // 0xFFFF)
    assert len(layer) == 10 + len(tar_bytes) + 5 * blocks + 8


def test_digest_depends_only_on_the_module(tmp_path: Path):
    wasm = fake_wasm()
    l1, _, d1, _ = build(tmp_path / "t1", wasm, "--tag", "0.1.0")
    l2, _, d2, _ = build(tmp_path / "t2", wasm, "--tag", "9.9.9")
    assert d1 == d2, "the tag is only in index.json; the manifest digest does not depend on it"
    assert parse_layout(l2)["mdesc"]["annotations"] == {"org.opencontainers.image.ref.name": "9.9.9"}
    _, _, d3, _ = build(tmp_path / "t3", wasm[:-1] + bytes([wasm[-1] ^ 1]))
    assert d3 != d1


def test_refuses_bad_input(tmp_path: Path):
    (tmp_path / "x.wasm").write_bytes(b"not wasm")
    r = subprocess.run([sys.executable, str(BUILD), "--wasm", str(tmp_path / "x.wasm"), "--out", str(tmp_path / "o")],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode != 0 and not (tmp_path / "o").exists()
    # An existing directory that is not an OCI layout is not wiped.
    keep = tmp_path / "keep"
    keep.mkdir()
    (keep / "precious").write_text("x")
    (tmp_path / "y.wasm").write_bytes(fake_wasm(100))
    r = subprocess.run([sys.executable, str(BUILD), "--wasm", str(tmp_path / "y.wasm"), "--out", str(keep)],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode != 0 and (keep / "precious").read_text() == "x"


def test_system_tools_read_the_layer(tmp_path: Path):
    """Cross-check with implementations other than Python's: GNU gzip and tar."""
    if not (shutil.which("tar") and shutil.which("gzip")):
        pytest.skip("no tar/gzip on PATH")
    wasm = fake_wasm()
    layout, tarball, digest, _ = build(tmp_path, wasm)
    layer_desc = parse_layout(layout)["manifest"]["layers"][0]
    layer_path = layout / "blobs" / "sha256" / layer_desc["digest"].split(":", 1)[1]
    with layer_path.open("rb") as f:
        subprocess.run(["gzip", "-t"], stdin=f, check=True)
    x = tmp_path / "x"
    x.mkdir()
    subprocess.run(["tar", "-xzf", str(layer_path), "-C", str(x)], check=True)
    assert (x / "plugin.wasm").read_bytes() == wasm
    y = tmp_path / "y"
    y.mkdir()
    subprocess.run(["tar", "-xf", str(tarball), "-C", str(y)], check=True)
    check_image(y, digest, wasm)


def test_real_module(tmp_path: Path):
    """The module tests/run.sh built: must exist (no skip), and survives the round trip."""
    assert REAL_WASM.is_file(), f"{REAL_WASM} missing: tests/setup.sh builds it"
    wasm = REAL_WASM.read_bytes()
    layout, tarball, digest, err = build(tmp_path / "a", REAL_WASM)
    check_image(layout, digest, wasm)
    check_tarball(tarball, layout)
    check_wasmplugin_line(err, digest)
    _, tarball2, digest2, _ = build(tmp_path / "b", REAL_WASM)
    assert digest2 == digest and tarball2.read_bytes() == tarball.read_bytes()
