"""Seeds the fuzz corpora from the recorded real traffic (codec/tests/data/traces): every request
frame, every response frame with its API and version, every Produce request / Fetch response body
for the scan target. Re-run after re-recording the traces:  python tests/fuzz/seed_corpora.py"""
from __future__ import annotations

import hashlib
import shutil
import struct
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TRACES = ROOT / "codec" / "tests" / "data" / "traces"
CORPUS = Path(__file__).resolve().parent / "corpus"


def chunks(path: Path):
    raw = path.read_bytes()
    i = 0
    while i < len(raw):
        d, n = struct.unpack_from(">BI", raw, i)
        yield d, raw[i + 5:i + 5 + n]
        i += 5 + n


def frames(stream: bytes):
    i = 0
    while i + 4 <= len(stream):
        (n,) = struct.unpack_from(">i", stream, i)
        yield stream[i + 4:i + 4 + n]
        i += 4 + n


def header_len(frame: bytes, flexible: bool) -> int:
    (client_len,) = struct.unpack_from(">h", frame, 8)
    n = 10 + max(client_len, 0)
    return n + 1 if flexible else n  # no request header tags in recorded traffic


def save(target: str, data: bytes) -> None:
    d = CORPUS / target
    d.mkdir(parents=True, exist_ok=True)
    (d / hashlib.sha1(data).hexdigest()[:16]).write_bytes(data)


# Translated APIs in the order of codec/src/legacy/translate.rs TRANSLATED_APIS (the `legacy`
# target picks the API by index), with each one's oldest translated version.
LEGACY_APIS = [(0, 0), (1, 0), (2, 0), (8, 0), (9, 0), (23, 0), (19, 0), (20, 0), (32, 0), (29, 0), (30, 0), (31, 0),
               (38, 0), (39, 0), (40, 0), (41, 0), (35, 0), (34, 0)]


def legacy_seeds() -> None:
    """Old-protocol request bodies recorded from old clients (traces/old-*) for the `legacy` target:
    its input is (API index, version offset, mode 0 = upgrade) then the body after the header."""
    index = {key: (i, first) for i, (key, first) in enumerate(LEGACY_APIS)}
    for trace in sorted(TRACES.glob("old-*/*.trace")):
        requests = b"".join(c for d, c in chunks(trace) if d == 0)
        for f in frames(requests):
            key, version = struct.unpack_from(">hh", f, 0)
            if key in index and version < {0: 3, 1: 4, 8: 2, 23: 2, 19: 2}.get(key, 1):
                i, first = index[key]
                save("legacy", bytes([i, version - first, 0]) + f[header_len(f, False):])


def main() -> None:
    for target in ("frame_split", "connection", "request_decode", "response_decode", "scan", "legacy"):
        if (CORPUS / target).exists():
            shutil.rmtree(CORPUS / target)
    legacy_seeds()
    for trace in sorted(p for p in TRACES.rglob("*.trace") if not p.parent.name.startswith("old-")):
        parts = list(chunks(trace))
        requests = b"".join(c for d, c in parts if d == 0)
        responses = b"".join(c for d, c in parts if d == 1)
        save("frame_split", bytes([64, 0, 16]) + requests[:4096])
        save("connection", requests[:2048])
        pending = {}
        for f in frames(requests):
            key, version, corr = struct.unpack_from(">hhi", f, 0)
            save("request_decode", f)
            pending[corr] = (key, version)
            if key == 0:  # Produce: body after the header (v9+ flexible)
                save("scan", bytes([0, version - 3]) + f[header_len(f, version >= 9):])
        for f in frames(responses):
            (corr,) = struct.unpack_from(">i", f, 0)
            if corr not in pending:
                continue
            key, version = pending.pop(corr)
            save("response_decode", struct.pack(">hh", key, version) + f)
            if key == 1:  # Fetch: body after the response header (v12+ has one tag byte)
                save("scan", bytes([1, version - 4]) + f[5 if version >= 12 else 4:])
    for d in sorted(CORPUS.iterdir()):
        print(d.name, len(list(d.iterdir())), "inputs")


if __name__ == "__main__":
    main()
