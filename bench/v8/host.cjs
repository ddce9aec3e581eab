// A minimal proxy-wasm host for the kafka-lens module under V8 (node), to time and profile the
// filter's own code with symbols, which Envoy's V8 cannot give (no perf map).
//
// It replays what librdkafka's producer makes Envoy do: each ~1 MB Produce request arrives in two
// callbacks (the frame start, then the rest up to the frame end), its response in a third; the
// root context ticks every 250 requests. Between callbacks it writes over `thrash` bytes of memory
// as Envoy's socket copies do, so the filter's code and data are cold as they are in Envoy.
// Reads from the buffers call back into the VM to allocate, as Envoy does. Metrics, properties
// and shared data are accepted and dropped.
//
// Usage: node --no-liftoff bench/v8/host.cjs <module.wasm> <frames dir> [iterations] [thrash bytes] [config.json]
//   (bench/v8/run.sh builds the module and the frames first.) Prints one JSON line: microseconds
//   per request inside the filter's callbacks (after a warm-up quarter) and per callback (frame
//   start, rest of the request, response), reads and hostcalls per request (also by name).
//   `node --perf-basic-prof` plus `perf record` names the module's functions.
// Footprint mode (bench/v8/footprint.py): given a module instrumented by `wasm-opt
//   --instrument-memory` or `--log-execution` and FOOTPRINT_OUT=<file>, it also writes which 64-byte
//   lines of linear memory (with the access site that touched each first, or "host" for the bytes a
//   read writes) and which log points each callback of the first measured round trip touched.
'use strict';
const fs = require('fs');
const path = require('path');
const { WASI } = require('wasi');

const [wasmPath, framesDir, itersArg, thrashArg, configPath] = process.argv.slice(2);
if (!wasmPath || !framesDir) {
  console.error('usage: host.cjs <module.wasm> <frames dir> [iterations] [thrash bytes] [config.json]');
  process.exit(2);
}
const iterations = parseInt(itersArg || '20000', 10);
const thrashBytes = parseInt(thrashArg || '0', 10);
const config = configPath ? fs.readFileSync(configPath) : Buffer.from('{}');
const request = fs.readFileSync(path.join(framesDir, 'request.bin'));
const response = fs.readFileSync(path.join(framesDir, 'response.bin'));
// Where the first request callback ends: the frame start and about half of its records.
const split = Math.min(request.length - 1, parseInt(process.env.SPLIT || '500000', 10));

const BUFFER_DOWNSTREAM = 2, BUFFER_UPSTREAM = 3, BUFFER_PLUGIN_CONFIGURATION = 7;
const OK = 0, NOT_FOUND = 1;
const buffers = { [BUFFER_PLUGIN_CONFIGURATION]: config };
let instance;
let reads = 0, hostcalls = 0, nextMetricId = 1;
const memory = () => new Uint8Array(instance.exports.memory.buffer);
const view = () => new DataView(instance.exports.memory.buffer);
const footprintOut = process.env.FOOTPRINT_OUT;
let recording = -1;
const footprint = [0, 1, 2].map(() => ({ lines: new Map(), points: new Set() }));
const touch = (address, bytes, site) => {
  if (recording < 0) return;
  const lines = footprint[recording].lines;
  for (let line = address >>> 6; line <= (address + Math.max(bytes, 1) - 1) >>> 6; line++) {
    if (!lines.has(line)) lines.set(line, site);
  }
};
// The imports wasm-opt's instrumentation passes add; not counted as hostcalls.
const instrumentation = {
  load_ptr(site, bytes, offset, ptr) { touch(ptr + offset, bytes, site); return ptr; },
  store_ptr(site, bytes, offset, ptr) { touch(ptr + offset, bytes, site); return ptr; },
  log_execution(point) { if (recording >= 0) footprint[recording].points.add(point); },
};
for (const kind of ['load', 'store']) {
  for (const type of ['i32', 'i64', 'f32', 'f64']) instrumentation[`${kind}_val_${type}`] = (site, value) => value;
}
const text = (ptr, len) => Buffer.from(memory().subarray(ptr, ptr + len)).toString();

const calls = {
  proxy_log(level, ptr, len) { if (level >= 3) console.error(`[wasm ${level}] ${text(ptr, len)}`); return OK; },
  proxy_get_log_level(ptr) { view().setUint32(ptr, 2, true); return OK; },
  proxy_get_current_time_nanoseconds(ptr) { view().setBigUint64(ptr, process.hrtime.bigint(), true); return OK; },
  proxy_get_buffer_bytes(type, start, max, dataPtr, sizePtr) {
    reads++;
    const buffer = buffers[type];
    const end = buffer ? Math.min(buffer.length, start + max) : 0;
    if (start >= end) return NOT_FOUND;
    const data = instance.exports.proxy_on_memory_allocate(end - start);
    memory().set(buffer.subarray(start, end), data);
    touch(data, end - start, 'host');
    view().setUint32(dataPtr, data, true);
    view().setUint32(sizePtr, end - start, true);
    return OK;
  },
  proxy_define_metric(kind, ptr, len, idPtr) { view().setUint32(idPtr, nextMetricId++, true); return OK; },
  proxy_get_property() { return NOT_FOUND; },
  proxy_get_shared_data() { return NOT_FOUND; },
};
const env = {};
const callCounts = {};
const wasmModule = new WebAssembly.Module(fs.readFileSync(wasmPath));
for (const { module: from, name } of WebAssembly.Module.imports(wasmModule)) {
  if (from !== 'env') continue;
  if (instrumentation[name]) { env[name] = instrumentation[name]; continue; }
  const call = calls[name];
  callCounts[name] = 0;
  env[name] = (...args) => { hostcalls++; callCounts[name]++; return call ? call(...args) : OK; };
}
const wasi = new WASI({ version: 'preview1', args: [], env: {} });
instance = new WebAssembly.Instance(wasmModule, { env, wasi_snapshot_preview1: wasi.wasiImport });
if (instance.exports._initialize) wasi.initialize(instance);
const vm = instance.exports;
const ROOT = 1, STREAM = 2;
vm.proxy_on_context_create(ROOT, 0);
vm.proxy_on_vm_start(ROOT, 0);
if (!vm.proxy_on_configure(ROOT, config.length)) {
  console.error('the module refused its configuration');
  process.exit(1);
}
vm.proxy_on_context_create(STREAM, ROOT);
vm.proxy_on_new_connection(STREAM);

const junk = new Uint8Array(Math.max(thrashBytes, 1));
const thrash = (round) => { for (let i = 0; i < thrashBytes; i += 64) junk[i] = (junk[i] + round) & 255; };
const warmUp = Math.floor(iterations / 4);
let inside = 0n;
// Time inside each of the three callbacks of a round trip: the frame start, the rest, the response.
const perCallback = [0n, 0n, 0n];
const timed = (round, which, callback) => {
  thrash(round);
  recording = footprintOut && round === warmUp ? which : -1;
  const start = process.hrtime.bigint();
  callback();
  const spent = process.hrtime.bigint() - start;
  recording = -1;
  inside += spent;
  perCallback[which] += spent;
};
let counted = { reads: 0, hostcalls: 0, byName: {} };
for (let i = 0; i < iterations; i++) {
  if (i === warmUp) { inside = 0n; perCallback.fill(0n); counted = { reads, hostcalls, byName: { ...callCounts } }; }
  request.writeInt32BE(1000 + i, 8);
  response.writeInt32BE(1000 + i, 4);
  buffers[BUFFER_DOWNSTREAM] = request.subarray(0, split);
  timed(i, 0, () => vm.proxy_on_downstream_data(STREAM, split, 0));
  buffers[BUFFER_DOWNSTREAM] = request.subarray(split);
  timed(i, 1, () => vm.proxy_on_downstream_data(STREAM, request.length - split, 0));
  buffers[BUFFER_UPSTREAM] = response;
  timed(i, 2, () => vm.proxy_on_upstream_data(STREAM, response.length, 0));
  if (i % 250 === 249) vm.proxy_on_tick(ROOT);
}
const measured = iterations - warmUp;
console.log(JSON.stringify({
  module: path.basename(wasmPath),
  iterations: measured,
  thrash_bytes: thrashBytes,
  us_per_request_inside: Number(inside) / measured / 1000,
  us_per_callback: perCallback.map((ns) => Math.round(Number(ns) / measured) / 1000),
  reads_per_request: (reads - counted.reads) / measured,
  hostcalls_per_request: (hostcalls - counted.hostcalls) / measured,
  hostcalls_per_request_by_name: Object.fromEntries(Object.entries(callCounts)
    .map(([name, n]) => [name, (n - (counted.byName[name] || 0)) / measured])
    .filter(([, n]) => n > 0)),
}));
if (footprintOut) {
  fs.writeFileSync(footprintOut, JSON.stringify(footprint.map(({ lines, points }) => ({
    lines: [...lines.entries()],
    points: [...points],
  }))));
}
