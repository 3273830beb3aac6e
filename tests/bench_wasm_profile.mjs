// One graph under onnxruntime-web's WASM backend in Node (the same .wasm the page runs), timed and
// optionally profiled: `node tests/bench_wasm_profile.mjs GRAPH.onnx INPUTS_DIR THREADS RUNS [PROFILE]`.
// INPUTS_DIR holds inputs.json ({inputs: {name: {shape, file, dtype}}, external_data: [the graph's
// weight files, as its manifest lists them]}) and one raw file per input (float32, or int64 where
// dtype says so; tests/bench_op_profile.py writes them). Prints each run's seconds as a JSON line and
// writes the first output of the last run to INPUTS_DIR/output.f32 (the caller compares it with
// native onnxruntime's). With PROFILE=1 it then prints onnxruntime-web's profile: the JSON trace that
// endProfiling() writes to stdout, between the lines BEGIN-PROFILE and END-PROFILE (onnxruntime-web
// profiles from session creation; startProfiling() does nothing).
import fs from "node:fs";
import path from "node:path";
import * as ort from "../node_modules/onnxruntime-web/dist/ort.node.min.mjs";

const [graph, inputsDir, threads, runs, profile = "1"] = process.argv.slice(2);
const profiling = profile === "1";
ort.env.wasm.numThreads = Number(threads);
const described = JSON.parse(fs.readFileSync(path.join(inputsDir, "inputs.json")));
// The graph's weights, as the page hands them over: one externalData entry per file.
const externalData = described.external_data.map((f) => ({ path: f, data: new Uint8Array(fs.readFileSync(path.join(path.dirname(graph), f))) }));
const options = { executionProviders: ["wasm"], graphOptimizationLevel: "all", logSeverityLevel: 3, externalData,
  enableProfiling: profiling };
const created = performance.now();
const session = await ort.InferenceSession.create(new Uint8Array(fs.readFileSync(graph)), options);
const sessionSeconds = (performance.now() - created) / 1000;
const feeds = {};
for (const [name, { shape, file, dtype = "float32" }] of Object.entries(described.inputs)) {
  const bytes = fs.readFileSync(path.join(inputsDir, file));
  const values = dtype === "int64" ? new BigInt64Array(bytes.buffer, bytes.byteOffset, bytes.length / 8)
    : new Float32Array(bytes.buffer, bytes.byteOffset, bytes.length / 4);
  feeds[name] = new ort.Tensor(dtype, values, shape);
}
let outputs = await session.run(feeds); // first-run allocations
const seconds = [];
for (let i = 0; i < Number(runs); i++) {
  const t = performance.now();
  outputs = await session.run(feeds);
  seconds.push((performance.now() - t) / 1000);
}
const first = outputs[session.outputNames[0]];
fs.writeFileSync(path.join(inputsDir, "output.f32"), Buffer.from(first.data.buffer, first.data.byteOffset, first.data.byteLength));
console.log(JSON.stringify({ seconds, session_seconds: sessionSeconds, output_shape: first.dims }));
if (profiling) {
  console.log("BEGIN-PROFILE");
  session.endProfiling();
  console.log("END-PROFILE");
}
await session.release();
