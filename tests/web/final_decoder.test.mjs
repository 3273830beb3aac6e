// The fast decoder on the page, without a browser: the decoder menu's default and its greyed-out
// reason, the estimate before Generate (this browser's measurement, else the reference), the
// progress line's words for each long part, the time line's parts and the saved file's name.
// Run by tests/test_backend_rules.py: node --test tests/web/
import assert from "node:assert/strict";
import { test } from "node:test";

import { decoderKey, decoderValue } from "../../web/decoders.js";
import { estimateRun, estimateSeconds, estimateText, wantsEstimate } from "../../web/estimate.js";
import { measured, rememberDecode, rememberRun } from "../../web/measured.js";
import { downloadText, expectedMs, phaseText } from "../../web/progress.js";
import { decoderChoice, upscalerText } from "../../web/stage/final_decoder.js";
import { timingParts } from "../../web/timings.js";
import { fileStem } from "../../web/explainer/save.js";

const unet = (bytes) => ({ variants: { int8: { files: [{ bytes }] }, fp32: { files: [{ bytes: bytes * 4 }] } } });
const model = (name, size, unetBytes, preview = true) => ({
  name, vae_scale_factor: 8, vae_scaling_factor: 0.18215, defaults: { width: size, height: size, steps: 1, guidance: 0 },
  components: { unet: unet(unetBytes), ...(preview ? { preview_decoder: { variants: { int8: {} } } } : {}) },
});
const turbo = model("sd-turbo", 512, 865e6);
const shapes = model("shapes", 64, 2e6);
const wasm = { ep: "wasm", label: "WASM", variant: "int8", threads: 2 };
const gpu = { ep: "webgpu", label: "WebGPU fp16", variant: "int8", threads: 2 };
const software = { ep: "webgpu", label: "WebGPU fp32 (software)", variant: "int8", threads: 2 };

test("the fast decoder is the default only for a full-size model on a slow backend", () => {
  assert.deepEqual(decoderChoice(turbo, wasm, true), { available: true, value: "fast", reason: "" });
  assert.equal(decoderChoice(turbo, software, true).value, "fast");
  assert.equal(decoderChoice(turbo, gpu, true).value, "vae");
  assert.equal(decoderChoice(shapes, wasm, true).value, "vae"); // a classroom model: the VAE is quick
});

test("without a full-size fast decoder the menu is greyed out, and says why", () => {
  const none = decoderChoice(model("shapes", 64, 2e6, false), wasm, false);
  assert.deepEqual(none, { available: false, value: "vae", reason: "shapes has no fast decoder (TAESD)" });
  // a TAESD exported before it could draw full-size pictures (its graph averages the latent)
  const old = decoderChoice(turbo, wasm, false);
  assert.equal(old.available, false);
  assert.match(old.reason, /only draws small step pictures.*--preview-decoder/);
  assert.equal(decoderValue("TAESD"), "fast");
  assert.equal(decoderValue(""), "vae");
  assert.equal(decoderKey("the fast decoder (TAESD)"), "fast");
});

test("the estimate is shown for full-size models on slow backends only", () => {
  assert.ok(wantsEstimate(turbo, wasm));
  assert.ok(!wantsEstimate(turbo, gpu));
  assert.ok(!wantsEstimate(shapes, wasm));
});

test("with no measurement the reference numbers are used and the words say so", () => {
  const vae = estimateRun(turbo, wasm, { steps: 1, guidance: 0, decoder: "vae" }, null);
  assert.equal(vae.source, "reference");
  assert.ok(Math.abs(vae.seconds - estimateSeconds(turbo, wasm, { steps: 1, guidance: 0 })) < 1e-9);
  assert.match(estimateText(vae), /^about 49 s \(estimated from a reference machine; not yet measured on this browser\)$/);
  // the fast decoder's reference time (TAESD int8 at 512², 2 threads) in place of the VAE's
  const fast = estimateRun(turbo, wasm, { steps: 1, guidance: 0, decoder: "fast" }, null);
  assert.ok(Math.abs(fast.seconds - (14.7 + 2.5)) < 1e-9, fast.seconds);
  assert.match(estimateText(fast), /^about 17 s \(estimated from a reference machine; not yet measured on this browser\)$/);
});

test("after a run, the estimate is this browser's own, per UNet call, guidance batch and decoder", () => {
  // two steps; with the fast decoder only the first step's picture is drawn during the run
  const timings = { text_ms: 500, step_ms: [9000, 9000], report_ms: 600, preview_ms: 500, decode_ms: 2000, decoder: "fast", encode_ms: 0 };
  rememberRun("sd-turbo", wasm, { guidance: "0" }, timings);
  const own = measured("sd-turbo", wasm);
  assert.equal(own.unet_call_ms, 9300);
  assert.equal(measured("sd-turbo", { ...wasm, threads: 1 }), null); // another thread count is another machine
  const one = estimateRun(turbo, wasm, { steps: "1", guidance: "0", decoder: "fast" }, own);
  assert.equal(one.source, "measured");
  assert.equal(own.preview_ms_per_step, 500);
  // a run that found its words' embeddings made took no time for them: not a text encoder's time
  rememberRun("sd-turbo", wasm, { guidance: "0" }, { ...timings, text_ms: 3, text_reused: true });
  assert.equal(measured("sd-turbo", wasm).text_ms, 500);
  assert.ok(Math.abs(one.seconds - (0.5 + 9.3 + 2)) < 1e-9, one.seconds); // (its one picture is drawn after)
  assert.equal(estimateText(one), "about 12 s on this browser (from your last run)");
  // four steps with guidance: each call carries a batch of two
  const guided = estimateRun(turbo, wasm, { steps: "4", guidance: "7.5", decoder: "fast" }, own);
  assert.ok(Math.abs(guided.seconds - (0.5 + 4 * 2 * 9.3 + 3 * 0.5 + 2)) < 1e-9, guided.seconds);
  // the VAE not yet timed here: its reference time, and the words say which part is estimated
  const vae = estimateRun(turbo, wasm, { steps: "1", guidance: "0", decoder: "vae" }, own);
  assert.match(estimateText(vae), /from your last run; the VAE decoder's time estimated\)/);
  rememberDecode("sd-turbo", wasm, "vae", 22500);
  const timed = estimateRun(turbo, wasm, { steps: "1", guidance: "0", decoder: "vae" }, measured("sd-turbo", wasm));
  assert.ok(Math.abs(timed.seconds - (0.5 + 9.3 + 0.5 + 22.5)) < 1e-9);
  assert.deepEqual(timed.unmeasured, []);
  // the progress line's "of about": each part's own last time
  assert.equal(expectedMs("decode", "the VAE", measured("sd-turbo", wasm)), 22500);
  assert.equal(expectedMs("decode", "the fast decoder (TAESD)", measured("sd-turbo", wasm)), 2000);
  assert.equal(expectedMs("encode", "the VAE", measured("sd-turbo", wasm)), undefined);
  // a UNet call: the measured call, twice for a batch of two where the measured one was of one
  const last = measured("sd-turbo", wasm);
  assert.equal(expectedMs("unet", "the VAE", last, { batch: last.unet_batch }), last.unet_call_ms);
  assert.equal(expectedMs("unet", "the VAE", last, { batch: 2 * last.unet_batch }), 2 * last.unet_call_ms);
});

test("the progress line names each long part, with its seconds and the measured time where there is one", () => {
  assert.equal(phaseText("text", "the VAE", 1234, undefined), "Encoding the prompt (text encoder)… 1.2 s");
  assert.equal(phaseText("encode", "the VAE", 0, 4000), "Encoding your picture (VAE encoder)… 0.0 s of about 4.0 s");
  assert.equal(phaseText("decode", "the fast decoder (TAESD)", 500, 22500),
    "Drawing the final picture with the fast decoder (TAESD)… 0.5 s of about 23 s");
  // each UNet call: which step (and call, for Heun), and the batch of two that guidance runs
  assert.equal(phaseText("unet", "the VAE", 4500, 11000, { step: 0, steps: 1, call: 0, calls: 1, batch: 1 }),
    "Step 1 of 1: the UNet predicts the noise… 4.5 s of about 11 s");
  assert.equal(phaseText("unet", "the VAE", 100, undefined, { step: 3, steps: 10, call: 1, calls: 2, batch: 2 }),
    "Step 4 of 10, UNet call 2 of 2: the UNet predicts the noise, with and without the prompt… 0.1 s");
});

test("the encoder's download says whose files they are", () => {
  const event = { totalReceived: 2e6, total: 4e6, file: "vae_encoder/model_int8.onnx", received: 2e6, size: 4e6 };
  assert.equal(downloadText({ ...event, component: "vae_encoder" }),
    "VAE encoder files: 2.0 MB of 4.0 MB; vae_encoder/model_int8.onnx 2.0 MB of 4.0 MB");
  assert.match(downloadText(event), /^Model files: 2.0 MB of 4.0 MB/);
});

test("the time line names the decoder and counts the picture's encoder as its own part", () => {
  const marks = { started: 0, loaded: 10, asked: 20, answered: 900, finished: 1000 };
  const base = { text_ms: 50, step_ms: [100], report_ms: 0, preview_ms: 0, decode_ms: 300 };
  const fast = timingParts({ ...base, decoder: "fast", encode_ms: 200 }, marks, "wasm", true);
  // (its one step's picture was drawn after the final one: no step picture during the run, no part for it)
  assert.deepEqual(fast.map((p) => p.key), ["load", "prepare", "text", "encode", "steps", "report", "decode", "other"]);
  const drawn = timingParts({ ...base, preview_ms: 40, decoder: "vae" }, marks);
  assert.equal(drawn.find((p) => p.key === "previews").ms, 40);
  assert.equal(fast.find((p) => p.key === "encode").label, "VAE encoder (your picture)");
  assert.match(fast.find((p) => p.key === "decode").label, /fast decoder \(TAESD\)/);
  assert.equal(fast.find((p) => p.key === "other").ms, 1000 - 10 - 10 - 50 - 200 - 100 - 300);
  const vae = timingParts({ ...base, decoder: "vae", encode_ms: 3 }, marks);
  assert.ok(!vae.some((p) => p.key === "encode")); // text-to-image: no encoder part (its 3 ms: the noise, in "the rest")
  assert.equal(vae.find((p) => p.key === "other").ms, 1000 - 10 - 10 - 50 - 100 - 300);
  assert.equal(vae.find((p) => p.key === "decode").label, "VAE decoder");
});

test("the saved file and the Upscaler panel say when the fast decoder drew the picture", () => {
  assert.equal(fileStem({ prompt: "a red circle!", seed: "3" }, "fast"), "a-red-circle-seed3-fast-decoder");
  assert.equal(fileStem({ prompt: "a red circle!", seed: "3" }, "vae"), "a-red-circle-seed3");
  const shapesOf = { latent: "4×64×64", image: "3×512×512" };
  assert.match(upscalerText({ manifest: turbo, decoder: "fast" }, shapesOf), /fast decoder \(TAESD\).*Redraw with the full VAE/);
  assert.match(upscalerText({ manifest: turbo, decoder: "vae" }, shapesOf), /decoded by the VAE/);
});
