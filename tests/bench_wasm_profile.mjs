// The UNet under onnxruntime-web's WASM backend in Node (the same .wasm the page runs), profiled:
// `node tests/bench_wasm_profile.mjs GRAPH.onnx INPUTS_DIR THREADS RUNS`. INPUTS_DIR holds
// inputs.json ({inputs: {name: {shape, file}}, external_data: [the graph's weight files, as its
// manifest lists them]}) and one raw float32 file per input (tests/bench_op_profile.py writes them). Prints each run's seconds as a JSON line, then onnxruntime-web's profile: the
// JSON trace of every run that endProfiling() writes to stdout, between the lines BEGIN-PROFILE and
// END-PROFILE (onnxruntime-web profiles from session creation; startProfiling() does nothing).
import fs from "node:fs";
import path from "node:path";
import * as ort from "../node_modules/onnxruntime-web/dist/ort.node.min.mjs";

const [graph, inputsDir, threads, runs] = process.argv.slice(2);
ort.env.wasm.numThreads = Number(threads);
const described = JSON.parse(fs.readFileSync(path.join(inputsDir, "inputs.json")));
// The graph's weights, as the page hands them over: one externalData entry per file.
const externalData = described.external_data.map((f) => ({ path: f, data: new Uint8Array(fs.readFileSync(path.join(path.dirname(graph), f))) }));
const options = { executionProviders: ["wasm"], graphOptimizationLevel: "all", logSeverityLevel: 3, externalData,
  enableProfiling: true };
const session = await ort.InferenceSession.create(new Uint8Array(fs.readFileSync(graph)), options);
const feeds = {};
for (const [name, { shape, file }] of Object.entries(described.inputs)) {
  const bytes = fs.readFileSync(path.join(inputsDir, file));
  feeds[name] = new ort.Tensor("float32", new Float32Array(bytes.buffer, bytes.byteOffset, bytes.length / 4), shape);
}
await session.run(feeds); // first-run allocations
const seconds = [];
for (let i = 0; i < Number(runs); i++) {
  const t = performance.now();
  await session.run(feeds);
  seconds.push((performance.now() - t) / 1000);
}
console.log(JSON.stringify({ seconds }));
console.log("BEGIN-PROFILE");
session.endProfiling();
console.log("END-PROFILE");
await session.release();
