#!/usr/bin/env python3
"""What one steady-state Produce round trip touches in a proxy-wasm module, per callback.

A callback that starts after Envoy copied a megabyte through the caches pays for every code and
data line it touches for the first time, so how many it touches is what its cold cost follows.
This instruments the module twice with binaryen's `wasm-opt` (`--instrument-memory`: every load
and store calls the host; `--log-execution`: every function entry and loop head does), replays the
round trip of `host.cjs` under node, and reports per callback (frame start, rest of the request,
response) and for the round trip:

- data: distinct 64-byte lines of linear memory, split into the shadow stack, static data, the
  heap and the bytes Envoy's reads write into the VM, and the 4 KiB pages they lie in;
- code: the functions run and the size of their wasm bodies (V8's machine code is larger; a
  callback runs only part of each);
- the functions that touched the most data lines first.

Memory copied by `memory.copy`/`memory.fill` (bulk memory) is not seen by the instrumentation.

Usage: python3 bench/v8/footprint.py [--json FILE] <module.wasm> <frames dir> [config.json]
  (`--json FILE` also writes the figures, with every function's name, as JSON.)
  (`FOOTPRINT=1 bench/v8/run.sh [module.wasm ...]` builds the frames and runs it for each module.)
"""
import argparse
import collections
import json
import os
import re
import subprocess
import tempfile

CALLBACKS = ("frame start", "rest of request", "response")
LINE, PAGE = 64, 4096


def leb(data, pos, signed=False):
    """LEB128 at `pos` (unsigned, or signed): (value, position after it)."""
    value = shift = 0
    while True:
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if byte < 0x80:
            if signed and byte & 0x40:
                value -= 1 << shift
            return value, pos


def sections(data):
    """(id, start, end) of each section of a wasm binary."""
    pos = 8
    while pos < len(data):
        section, pos = data[pos], pos + 1
        size, pos = leb(data, pos)
        yield section, pos, pos + size
        pos += size


def i32_const(data, pos):
    """An `i32.const N; end` constant expression at `pos`: (N, position after its `end`).

    Raises ValueError for any other expression (a module this script was not written for).
    """
    if data[pos] != 0x41:
        raise ValueError(f"constant expression at {pos} is not i32.const")
    value, pos = leb(data, pos + 1, signed=True)
    return value, pos + 1


def skip_limits(data, pos):
    """The position after a table's or memory's limits (flags, minimum, maximum if flagged)."""
    flags, pos = leb(data, pos)
    _, pos = leb(data, pos)
    return leb(data, pos)[1] if flags & 1 else pos


class Layout:
    """Function names and body sizes, the data segments and the shadow stack's top of a module."""

    def __init__(self, path):
        with open(path, "rb") as file:
            data = file.read()
        self.sizes, self.names, segments = {}, {}, []
        imported = 0
        self.stack_top = None
        for section, start, end in sections(data):
            if section == 2:  # imports: function indices start after the imported functions
                count, pos = leb(data, start)
                for _ in range(count):
                    for _ in range(2):
                        length, pos = leb(data, pos)
                        pos += length
                    kind, pos = data[pos], pos + 1
                    if kind == 0:  # a function: its type index
                        _, pos = leb(data, pos)
                        imported += 1
                    elif kind in (1, 2):  # a table (its element type first) or a memory: limits
                        pos = skip_limits(data, pos + 1 if kind == 1 else pos)
                    else:  # a global: value type and mutability
                        pos += 2
            elif section == 6 and self.stack_top is None:  # the first global: __stack_pointer
                count, pos = leb(data, start)
                if count:
                    self.stack_top = i32_const(data, pos + 2)[0]
            elif section == 10:
                count, pos = leb(data, start)
                for index in range(imported, imported + count):
                    size, pos = leb(data, pos)
                    self.sizes[index] = size
                    pos += size
            elif section == 11:
                count, pos = leb(data, start)
                for _ in range(count):
                    flags, pos = leb(data, pos)
                    offset = None  # flags 1: a passive segment, not placed in memory
                    if flags == 2:  # active, with a memory index
                        _, pos = leb(data, pos)
                    if flags in (0, 2):
                        offset, pos = i32_const(data, pos)
                    size, pos = leb(data, pos)
                    if offset is not None:
                        segments.append((offset, offset + size))
                    pos += size
            elif section == 0:
                length, pos = leb(data, start)
                if data[pos:pos + length] != b"name":
                    continue
                pos += length
                while pos < end:
                    subsection, pos = data[pos], pos + 1
                    size, pos = leb(data, pos)
                    if subsection == 1:
                        count, at = leb(data, pos)
                        for _ in range(count):
                            index, at = leb(data, at)
                            length, at = leb(data, at)
                            self.names[data[at:at + length].decode("utf-8", "replace")] = index
                            at += length
                    pos += size
        self.static = (min(s for s, _ in segments), max(e for _, e in segments)) if segments else (0, 0)

    def region(self, line):
        address = line * LINE
        if self.stack_top is not None and address < self.stack_top and address < self.static[0]:
            return "stack"
        if self.static[0] <= address < self.static[1]:
            return "static"
        return "heap"

    def size(self, name):
        return self.sizes.get(self.names.get(name, -1), 0)


def instrumented_sites(path, imports):
    """Which function each instrumentation call site (its constant id) sits in, from the text."""
    text = subprocess.run(["wasm-dis", path], check=True, capture_output=True, text=True).stdout
    call = re.compile(r"\(call \$(?:%s)\s+\(i32\.const (\d+)\)" % "|".join(imports))
    sites = {}
    for function in re.split(r"\n \(func \$", text)[1:]:
        name = function.split(None, 1)[0]
        for match in call.finditer(function):
            sites[int(match.group(1))] = name
    return sites


def short(name):
    """A Rust symbol without its hash, its path trimmed to the last 80 characters."""
    name = re.sub(r"17h[0-9a-f]{16}E$", "", name)
    return name if len(name) <= 80 else "…" + name[-79:]


def replay(host, module, frames, config, out):
    command = ["node", "--no-liftoff", host, module, frames, "40", "0"] + ([config] if config else [])
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                   env={**os.environ, "FOOTPRINT_OUT": out})
    with open(out) as file:
        return json.load(file)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("module", help="the proxy-wasm module (.wasm)")
    parser.add_argument("frames", help="the directory with request.bin and response.bin")
    parser.add_argument("config", nargs="?", help="the filter configuration (JSON file; default {})")
    parser.add_argument("--json", metavar="FILE", help="also write the figures as JSON")
    args = parser.parse_args()
    module, frames, config, json_out = args.module, args.frames, args.config, args.json
    host = os.path.join(os.path.dirname(os.path.abspath(__file__)), "host.cjs")
    layout = Layout(module)
    with tempfile.TemporaryDirectory() as work:
        memory, execution = os.path.join(work, "memory.wasm"), os.path.join(work, "execution.wasm")
        subprocess.run(["wasm-opt", module, "--instrument-memory", "-g", "-o", memory], check=True)
        subprocess.run(["wasm-opt", module, "--log-execution", "-g", "-o", execution], check=True)
        touched = replay(host, memory, frames, config, os.path.join(work, "memory.json"))
        run = replay(host, execution, frames, config, os.path.join(work, "execution.json"))
        access_sites = instrumented_sites(memory, ["load_ptr", "store_ptr"])
        log_points = instrumented_sites(execution, ["log_execution"])

    summary = summarise(layout, touched, run, access_sites, log_points)
    if json_out:
        with open(json_out, "w") as file:
            json.dump(summary, file, indent=1)
    print(f"{os.path.basename(module)}: one round trip, per callback")
    print("| callback | data lines | stack / static / heap / read | 4 KiB pages | functions run | their wasm bytes |")
    print("|---|---|---|---|---|---|")
    for row in summary["callbacks"]:
        split = " / ".join(str(row["regions"][r]) for r in ("stack", "static", "heap", "read"))
        print(f"| {row['callback']} | {row['lines']} | {split} | {row['pages']} | "
              f"{len(row['functions'])} | {row['function_bytes']} |")
    print("\nData lines first touched, by function (summed over the callbacks):")
    for function, count in summary["first_touch"][:12]:
        print(f"  {count:4}  {short(function)}")
    print("\nLargest functions run (wasm bytes):")
    for size, function in summary["largest"][:12]:
        print(f"  {size:6}  {short(function)}")


def summarise(layout, touched, run, access_sites, log_points):
    """Per callback and for the round trip: lines by region, pages, functions and their sizes."""
    rows, all_lines, all_functions = [], {}, set()
    first_touch = collections.Counter()
    for name, callback, executed in zip(CALLBACKS, touched, run):
        lines = dict(callback["lines"])
        functions = {log_points[p] for p in executed["points"] if p in log_points}
        for line, site in lines.items():
            all_lines.setdefault(line, site)
        all_functions |= functions
        rows.append((name, lines, functions))
        for site in lines.values():
            first_touch["(read into the VM)" if site == "host" else access_sites.get(site, "?")] += 1
    rows.append(("round trip", all_lines, all_functions))
    callbacks = []
    for name, lines, functions in rows:
        regions = collections.Counter("read" if site == "host" else layout.region(line)
                                      for line, site in lines.items())
        callbacks.append({
            "callback": name,
            "lines": len(lines),
            "regions": {r: regions[r] for r in ("stack", "static", "heap", "read")},
            "pages": len({line * LINE // PAGE for line in lines}),
            "functions": sorted(functions),
            "function_bytes": sum(layout.size(f) for f in functions),
        })
    return {
        "callbacks": callbacks,
        "first_touch": first_touch.most_common(),
        "largest": sorted(((layout.size(f), f) for f in all_functions), reverse=True),
    }


if __name__ == "__main__":
    main()
