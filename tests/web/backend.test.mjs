// The backend and variant rules of web/runtime/backend.js and the fp16 self-check's judgement
// (web/runtime/selfcheck.js), for the adapters this machine's Chromium cannot show (shader-f16, a real
// GPU with small limits, little memory). Run by tests/test_backend_rules.py: node --test tests/web/
import assert from "node:assert/strict";
import { test } from "node:test";

import { afterSelfCheck, chooseBackend, componentVariants, fp32Misfit, wasmThreads } from "../../web/runtime/backend.js";
import { judge, referenceOutput } from "../../web/runtime/selfcheck.js";

const GiB = 1024 ** 3;
const v = (backends, bytes) => ({ files: [{ bytes }], backends });
const manifest = (variants, size = 64, extra = {}) => ({
  vae_scale_factor: 8,
  defaults: { width: size, height: size },
  components: Object.fromEntries(["text_encoder", "unet", "vae_decoder"].map((c) => [c, { variants }])),
  ...extra,
});
// Per component; the model's total is three times this.
const small = manifest({ fp32: v(["webgpu", "wasm"], 1e6), fp16: v(["webgpu-f16"], 5e5), int8: v(["wasm"], 2.5e5), q4: v(["webgpu-f16", "wasm"], 2e5) });
const full = manifest({ fp32: v(["webgpu", "wasm"], 1.6 * GiB), fp16: v(["webgpu-f16"], 0.8 * GiB), int8: v(["wasm"], 0.4 * GiB), q4: v(["webgpu-f16", "wasm"], 0.3 * GiB) }, 512);
const mid = manifest({ fp32: v(["webgpu", "wasm"], 0.3 * GiB), int8: v(["wasm"], 0.08 * GiB) }, 512);

const gpu = (extra) => ({ available: true, f16: false, fallback: false, adapter: "nvidia ampere", maxBufferSize: 4 * GiB, maxStorageBufferBindingSize: 2 * GiB, ...extra });
const pick = (m, g, p, d) => {
  const b = chooseBackend(m, g, p, d);
  return [b.ep, b.variant];
};

test("WebGPU with shader-f16 takes fp16", () => {
  assert.deepEqual(pick(small, gpu({ f16: true })), ["webgpu", "fp16"]);
  assert.deepEqual(pick(full, gpu({ f16: true })), ["webgpu", "fp16"]);
  assert.equal(chooseBackend(full, gpu({ f16: true })).label, "WebGPU fp16");
});

test("without shader-f16, fp32 only where it fits the adapter's limits and memory", () => {
  assert.deepEqual(pick(small, gpu()), ["webgpu", "fp32"]);
  assert.deepEqual(pick(mid, gpu(), "auto", { memoryBytes: 8 * GiB }), ["webgpu", "fp32"]);
  // Attention scores over a 64×64 latent: 64 MiB in one buffer; a 32 MiB binding limit refuses it.
  const tight = chooseBackend(mid, gpu({ maxStorageBufferBindingSize: 32 * 1024 ** 2 }));
  assert.deepEqual([tight.ep, tight.variant], ["wasm", "int8"]);
  assert.match(tight.reason, /adapter has no shader-f16 and fp32 needs 64 MiB buffers, the adapter allows 32 MiB/);
  // 4.8 GiB of fp32 weights: more than the 4 GiB onnxruntime-web's heap holds, whatever the GPU.
  const big = chooseBackend(full, gpu(), "auto", { memoryBytes: 32 * GiB });
  assert.equal(big.ep, "wasm");
  assert.match(big.reason, /fp32 weights are 4915 MiB, more than the 4096 MiB/);
  // Little memory: half of it is the budget.
  const lowMemory = chooseBackend(mid, gpu(), "auto", { memoryBytes: 1 * GiB });
  assert.equal(lowMemory.ep, "wasm");
  assert.match(lowMemory.reason, /more than the 512 MiB/);
  assert.equal(fp32Misfit(mid, gpu(), { memoryBytes: 8 * GiB }), null);
});

test("a fallback (software) adapter is never chosen automatically", () => {
  const swiftshader = gpu({ fallback: true, adapter: "google swiftshader", maxBufferSize: GiB, maxStorageBufferBindingSize: GiB });
  const auto = chooseBackend(small, swiftshader);
  assert.deepEqual([auto.ep, auto.variant], ["wasm", "fp32"]);
  assert.equal(auto.label, "WASM: the WebGPU adapter (google swiftshader) is software, slower than WASM");
  assert.deepEqual(pick(full, { ...swiftshader, f16: true }), ["wasm", "q4"]);
  // ?backend=webgpu still forces it, and the badge says software.
  const forced = chooseBackend(small, swiftshader, "webgpu");
  assert.deepEqual([forced.ep, forced.variant, forced.label], ["webgpu", "fp32", "WebGPU fp32 (software)"]);
  assert.deepEqual(pick(full, swiftshader, "webgpu"), ["webgpu", "fp32"]); // forced even when it does not fit
});

test("WASM: exact fp32 when small, else the smallest WASM variant or the export's measured preference", () => {
  const none = { available: false, reason: "no WebGPU adapter" };
  assert.deepEqual(pick(small, none), ["wasm", "fp32"]);
  assert.deepEqual(pick(full, none), ["wasm", "q4"]);
  assert.deepEqual(pick({ ...full, wasm_preference: "int8" }, none), ["wasm", "int8"]);
  assert.deepEqual(pick(small, gpu({ f16: true }), "wasm"), ["wasm", "fp32"]);
  assert.equal(chooseBackend(small, none).label, "WASM: no WebGPU adapter");
  // ?variant= picks another variant for measuring, and the badge says so
  const asked = chooseBackend(full, none, "auto", { variant: "int8" });
  assert.deepEqual([asked.variant, asked.label], ["int8", "WASM: no WebGPU adapter (int8)"]);
  assert.throws(() => chooseBackend(mid, none, "auto", { variant: "q4" }), /no q4 variant/);
});

test("threads: every core when cross-origin isolated, else one", () => {
  assert.equal(wasmThreads({ cores: 8, isolated: true }), 8);
  assert.equal(wasmThreads({ cores: 8, isolated: false }), 1);
  assert.equal(wasmThreads({ cores: 2, isolated: true, requested: 1 }), 1);
  assert.equal(wasmThreads({ cores: 2, isolated: true, requested: 4 }), 2);
  const none = { available: false, reason: "no WebGPU" };
  assert.equal(chooseBackend(small, none, "auto", { cores: 4, isolated: true }).threads, 4);
});

test("a failed fp16 self-check falls back, saying why", () => {
  const g = gpu({ f16: true });
  const choice = chooseBackend(full, g);
  const failed = afterSelfCheck(choice, { ok: false, reason: "fp16 results off by 0.42" }, full, g);
  assert.deepEqual([failed.ep, failed.variant, failed.label], ["wasm", "q4", "WASM: fp16 self-check failed"]);
  assert.match(failed.reason, /^fp16 self-check failed \(fp16 results off by 0.42\)/);
  // A small model still has fp32 on the GPU.
  const smallFailed = afterSelfCheck(chooseBackend(small, g), { ok: false, reason: "x" }, small, g);
  assert.deepEqual([smallFailed.ep, smallFailed.variant], ["webgpu", "fp32"]);
  assert.equal(afterSelfCheck(choice, { ok: true }, full, g), choice);
});

test("the self-check refuses silently wrong numbers", () => {
  const right = Float32Array.from(referenceOutput());
  assert.equal(judge(right).ok, true);
  // float16 rounding of every value passes
  const rounded = right.map((x) => x * (1 + 4e-4));
  assert.equal(judge(rounded).ok, true);
  const wrong = right.slice();
  wrong[5] += 0.05;
  assert.equal(judge(wrong).ok, false);
  assert.equal(judge(new Float32Array(right.length)).ok, false); // zeros: a kernel that did nothing
  assert.equal(judge(right.map(() => NaN)).ok, false);
  assert.equal(judge(right.slice(1)).ok, false);
});

test("each component's variant: the model's, or on WASM a faster one the table names", () => {
  const same = (variant) => ({ text_encoder: variant, unet: variant, vae_decoder: variant });
  const wasm = chooseBackend(full, { available: false, reason: "no WebGPU" }); // q4: this manifest's smallest
  // measured: the model's variant is every component's fastest on WASM, so the shipped table changes nothing
  assert.deepEqual(wasm.variants, same(wasm.variant));
  assert.deepEqual(chooseBackend(full, gpu({ f16: true })).variants, same("fp16"));
  const table = { [wasm.variant]: { vae_decoder: "int8", unet: "fp16" } }; // fp16 does not run on WASM: kept
  assert.deepEqual(componentVariants(full, wasm, false, table), { ...same(wasm.variant), vae_decoder: "int8" });
  assert.deepEqual(componentVariants(full, wasm, true, table), same(wasm.variant)); // ?variant= names every one
  assert.deepEqual(componentVariants(full, { ...wasm, ep: "webgpu" }, false, table), same(wasm.variant));
  assert.deepEqual(chooseBackend(full, { available: false, reason: "x" }, "auto", { variant: "int8" }).variants, same("int8"));
});

test("a model published in fp16 only (a Hub repo) runs on WebGPU with shader-f16, else says what would run it", () => {
  const hub = manifest({ fp16: v(["webgpu-f16"], 8e8) }, 512, { name: "sd-turbo-ort-web" });
  assert.deepEqual(pick(hub, gpu({ f16: true })), ["webgpu", "fp16"]);
  assert.deepEqual(pick(hub, gpu({ f16: true, fallback: true })), ["webgpu", "fp16"]); // no WASM to prefer
  assert.throws(() => chooseBackend(hub, gpu()), /sd-turbo-ort-web is published in fp16.*adapter \(nvidia ampere\) has no shader-f16.*Chrome or Edge/);
  assert.throws(() => chooseBackend(hub, { available: false, reason: "no navigator.gpu" }), /has no WebGPU \(no navigator.gpu\)/);
  assert.throws(() => chooseBackend(hub, gpu({ f16: true }), "wasm"), /WASM was asked for/);
});
