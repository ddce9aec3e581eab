#!/usr/bin/env python3
"""Package the kafka-lens proxy-wasm module as an OCI image that Istio's agent can pull.

    python3 istio/oci/build.py [--wasm .run/kafka-lens.wasm] [--out .run/oci] [--tag 0.1.0]
                               [--tar PATH] [--compression stored|zlib]

Writes an OCI image layout directory (oci-layout, index.json, blobs/sha256/...) at --out and a
tarball of that layout at --tar (default: <out>.tar), then prints the image manifest digest
(``sha256:<hex>``) on stdout, alone on its line. Everything else goes to stderr.

The image is the "compat" form that istio/istio pkg/wasm/imagefetcher.go tries first for OCI
manifests: one ``application/vnd.oci.image.layer.v1.tar+gzip`` layer whose tar holds
``plugin.wasm``. See istio/oci/README.md for why, and for which digest goes where: a WasmPlugin
``sha256:`` field for an ``oci://`` URL must hold the hex part of the printed manifest digest.

Reproducible: the output depends only on the wasm bytes, --compression and --tag (the tag is only
in index.json, so the manifest digest does not depend on it). Tar entries are sorted, with mtime 0,
uid/gid 0, no user or group names and fixed modes; gzip streams carry mtime 0, no file name and a
fixed OS byte. With the default --compression stored the deflate stream is written here, as stored
blocks, so the bytes do not depend on the zlib build either; --compression zlib (level 9, about
4x smaller for this module) is reproducible only across machines whose zlib produces the same
deflate output (zlib-ng, as on some distributions, does not).

Standard library only; no container engine or registry is used.
"""
from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import shutil
import struct
import sys
import tarfile
import tempfile
import zlib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent

MT_INDEX = "application/vnd.oci.image.index.v1+json"
MT_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
MT_CONFIG = "application/vnd.oci.image.config.v1+json"
MT_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
WASM_NAME = "plugin.wasm"  # the name imagefetcher.go's extractWasmPluginBinary looks for
REF_NAME = "org.opencontainers.image.ref.name"
WASM_MAGIC = b"\0asm"


def _dumps(obj) -> bytes:
    """Canonical JSON: fixed key order (as built), no whitespace, ASCII only."""
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=True).encode()


def _sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _tar(entries: list[tuple[str, bytes | None]]) -> bytes:
    """A deterministic ustar archive: entries in the given (sorted) order, a None body is a
    directory (0755), files are 0644; mtime 0, uid/gid 0, empty user and group names."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for name, body in entries:
            info = tarfile.TarInfo(name)
            info.mtime = 0
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            if body is None:
                info.type = tarfile.DIRTYPE
                info.mode = 0o755
                tar.addfile(info)
            else:
                info.type = tarfile.REGTYPE
                info.mode = 0o644
                info.size = len(body)
                tar.addfile(info, io.BytesIO(body))
    return buf.getvalue()


def _deflate_stored(data: bytes) -> bytes:
    """A raw deflate stream (RFC 1951) of stored blocks of at most 65535 bytes, written by hand
    so the bytes are the same whatever zlib the interpreter links."""
    out = bytearray()
    step = 0xFFFF
    n = len(data)
    pos = 0
    while True:
        chunk = data[pos:pos + step]
        pos += len(chunk)
        final = pos >= n
        # BFINAL in bit 0, BTYPE=00 (stored) in bits 1-2, then pad to the byte boundary.
        out.append(1 if final else 0)
        out += struct.pack("<HH", len(chunk), len(chunk) ^ 0xFFFF)
        out += chunk
        if final:
            return bytes(out)


def _gzip(data: bytes, compression: str) -> bytes:
    """A single-member gzip stream (RFC 1952) with MTIME 0, no FNAME, XFL 0 and OS 255."""
    if compression == "stored":
        body = _deflate_stored(data)
    elif compression == "zlib":
        c = zlib.compressobj(9, zlib.DEFLATED, -15, 9, zlib.Z_DEFAULT_STRATEGY)
        body = c.compress(data) + c.flush()
    else:
        raise ValueError(f"unknown compression {compression!r}")
    header = b"\x1f\x8b\x08\x00" + struct.pack("<I", 0) + b"\x00\xff"
    trailer = struct.pack("<II", zlib.crc32(data) & 0xFFFFFFFF, len(data) & 0xFFFFFFFF)
    return header + body + trailer


def _descriptor(media_type: str, blob: bytes, annotations: dict | None = None) -> dict:
    d = {"mediaType": media_type, "digest": _sha256(blob), "size": len(blob)}
    if annotations:
        d["annotations"] = annotations
    return d


def build_blobs(wasm: bytes, tag: str, compression: str = "stored") -> tuple[dict[str, bytes], bytes, str]:
    """Return (blobs by digest, index.json bytes, manifest digest) for the compat-form image."""
    layer_tar = _tar([(WASM_NAME, wasm)])
    layer = _gzip(layer_tar, compression)
    config = _dumps({
        # The module is built for wasm32-wasip1; these are the GOOS/GOARCH-style values the OCI
        # image spec asks for. Istio's agent never reads the config (it only reads the manifest
        # and the last layer), so this is for registries and tools that display it.
        "architecture": "wasm",
        "os": "wasip1",
        "config": {},
        "rootfs": {"type": "layers", "diff_ids": [_sha256(layer_tar)]},
    })
    manifest = _dumps({
        "schemaVersion": 2,
        "mediaType": MT_MANIFEST,
        "config": _descriptor(MT_CONFIG, config),
        "layers": [_descriptor(MT_LAYER, layer)],
    })
    manifest_digest = _sha256(manifest)
    index = _dumps({
        "schemaVersion": 2,
        "mediaType": MT_INDEX,
        "manifests": [_descriptor(MT_MANIFEST, manifest, {REF_NAME: tag})],
    })
    blobs = {_sha256(b): b for b in (config, layer, manifest)}
    return blobs, index, manifest_digest


def layout_entries(blobs: dict[str, bytes], index: bytes) -> list[tuple[str, bytes | None]]:
    """The layout's files and directories, sorted by path."""
    entries: list[tuple[str, bytes | None]] = [
        ("blobs", None),
        ("blobs/sha256", None),
        ("index.json", index),
        ("oci-layout", _dumps({"imageLayoutVersion": "1.0.0"})),
    ]
    for digest, blob in blobs.items():
        entries.append(("blobs/sha256/" + digest.split(":", 1)[1], blob))
    return sorted(entries, key=lambda e: e[0])


def _replace_dir(out: Path, entries: list[tuple[str, bytes | None]]) -> None:
    if out.exists() and not (out.is_dir() and (not any(out.iterdir()) or (out / "oci-layout").is_file())):
        raise SystemExit(f"refusing to replace {out}: it exists and is not an OCI layout")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=out.name + ".", dir=out.parent))
    try:
        for name, body in entries:
            p = tmp / name
            if body is None:
                p.mkdir(parents=True, exist_ok=True)
            else:
                p.write_bytes(body)
        os.chmod(tmp, 0o755)
        if out.exists():
            shutil.rmtree(out)
        os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _write_atomic(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--wasm", type=Path, default=ROOT / ".run" / "kafka-lens.wasm",
                    help="the module (default: .run/kafka-lens.wasm)")
    ap.add_argument("--out", type=Path, default=ROOT / ".run" / "oci",
                    help="OCI image layout directory to (re)write (default: .run/oci)")
    ap.add_argument("--tag", default="0.1.0",
                    help="ref name of the manifest in index.json (default: 0.1.0)")
    ap.add_argument("--tar", type=Path, default=None,
                    help="tarball of the layout (default: <out>.tar)")
    ap.add_argument("--compression", choices=("stored", "zlib"), default="stored",
                    help="deflate of the layer: stored (byte-identical on any machine, default) "
                         "or zlib level 9 (smaller, reproducible with the same zlib build)")
    args = ap.parse_args(argv)

    wasm = args.wasm.read_bytes()
    if not wasm.startswith(WASM_MAGIC):
        raise SystemExit(f"{args.wasm}: not a wasm module (no \\0asm magic)")
    if not args.tag or "/" in args.tag:
        raise SystemExit(f"bad tag {args.tag!r}")
    out = args.out.resolve()
    tar_path = (args.tar or out.with_name(out.name + ".tar")).resolve()
    if tar_path == out or out in tar_path.parents:
        raise SystemExit("--tar must be outside --out")

    blobs, index, manifest_digest = build_blobs(wasm, args.tag, args.compression)
    entries = layout_entries(blobs, index)
    _replace_dir(out, entries)
    _write_atomic(tar_path, _tar(entries))

    hexdigest = manifest_digest.split(":", 1)[1]
    print(f"layout   {out} (ref {args.tag})", file=sys.stderr)
    print(f"tarball  {tar_path}", file=sys.stderr)
    print(f"module   {args.wasm} sha256:{hashlib.sha256(wasm).hexdigest()} (not what WasmPlugin pins for oci://)",
          file=sys.stderr)
    print(f"WasmPlugin: url: oci://<registry>/<repo>:{args.tag}  sha256: {hexdigest}", file=sys.stderr)
    print(manifest_digest)
    return 0


if __name__ == "__main__":
    sys.exit(main())
