// Which onnxruntime-web backend and model variant to use, and why: the badge tells the truth.
//
// - WebGPU with `shader-f16` → the fp16 variant, after a self-check on first load (selfcheck.js):
//   some WebGPU stacks run fp16 and return wrong numbers without an error.
// - WebGPU without `shader-f16` → fp32 only where it fits the adapter's limits and memory;
//   otherwise WASM, saying why.
// - A software (fallback) adapter such as SwiftShader is never chosen automatically: there it is
//   ~50× slower than WASM. `?backend=webgpu` still forces it, and the badge then says "software".
// - WASM → exact fp32 while the model is small, else the smallest variant made for WASM (int8 or
//   q4: the manifest's `wasm_preference`, when the export measured one, names the faster).

// Below this download size fp32 is affordable everywhere, and it is the exact variant.
export const SMALL_MODEL_BYTES = 600 * 1024 * 1024;
// onnxruntime-web builds its sessions in one wasm32 heap (4 GiB), WebGPU included: a model's fp32
// weights must leave room there for the largest graph being read in.
export const WASM_HEAP_BYTES = 4 * 1024 ** 3;
const COMPONENTS = ["text_encoder", "unet", "vae_decoder"];
// On WASM, a full-size model's component that runs faster in another variant than the model's,
// with an error no larger: {model's variant: {component: variant}}. Measured with `python -m
// tests.bench components` on an SD-Turbo-sized model at 512², 2 threads (README, Benchmarks): int8
// is the fastest WASM variant of every component (VAE decoder 33.8 s against fp32's 59.9 s, VAE
// encoder 12.6 s against 26.7 s, text encoder 0.60 s against 1.12 s; UNet 12.5 s against q4's
// 25 s), so the table is empty: every component runs the model's variant. Natively it is otherwise
// (fp32 decodes as fast as int8), which is why the choice is per backend.
export const WASM_COMPONENT_VARIANTS = {};

export async function probeWebGPU() {
  if (!self.isSecureContext) return { available: false, reason: "plain http: WebGPU needs https" };
  if (!("gpu" in navigator)) return { available: false, reason: "no WebGPU in this browser" };
  try {
    const adapter = await navigator.gpu.requestAdapter();
    if (!adapter) return { available: false, reason: "no WebGPU adapter" };
    const info = adapter.info || {};
    return {
      available: true,
      f16: adapter.features.has("shader-f16"),
      fallback: Boolean(adapter.isFallbackAdapter || info.isFallbackAdapter),
      adapter: [info.vendor, info.architecture].filter(Boolean).join(" ") || "unknown adapter",
      maxBufferSize: adapter.limits.maxBufferSize,
      maxStorageBufferBindingSize: adapter.limits.maxStorageBufferBindingSize,
    };
  } catch (err) {
    return { available: false, reason: `WebGPU adapter failed: ${err.message}` };
  }
}

/** What the machine offers besides the adapter: memory (navigator.deviceMemory, GiB, which
 *  browsers round and cap at 8) and cores. */
export function probeDevice() {
  return {
    memoryBytes: navigator.deviceMemory ? navigator.deviceMemory * 1024 ** 3 : null,
    cores: navigator.hardwareConcurrency || 1,
  };
}

export function variantBytes(manifest, variant) {
  let total = 0;
  for (const component of COMPONENTS) {
    const entry = manifest.components[component]?.variants?.[variant];
    if (!entry) return null;
    total += entry.files.reduce((sum, f) => sum + f.bytes, 0);
  }
  return total;
}

function variantsFor(manifest, backendTag) {
  const names = Object.keys(manifest.components.unet.variants);
  return names.filter((v) =>
    COMPONENTS.every((c) => manifest.components[c]?.variants?.[v]?.backends?.includes(backendTag)),
  );
}

/** The largest single GPU buffer a run needs, as far as the manifest tells: self-attention over
 *  the full-resolution latent holds (h·w)² float32 scores per head in one buffer. */
export function largestBufferBytes(manifest) {
  const f = manifest.vae_scale_factor || 8;
  const cells = ((manifest.defaults?.width || 512) / f) * ((manifest.defaults?.height || 512) / f);
  return cells * cells * 4;
}

const mib = (n) => `${Math.round(n / 1024 ** 2)} MiB`;

/** Why fp32 on this adapter would not fit, or null when it fits. */
export function fp32Misfit(manifest, gpu, device = {}) {
  const weights = variantBytes(manifest, "fp32");
  if (weights === null) return "the model has no fp32 variant";
  const buffer = largestBufferBytes(manifest);
  const limit = Math.min(gpu.maxBufferSize ?? Infinity, gpu.maxStorageBufferBindingSize ?? Infinity);
  if (buffer > limit) return `fp32 needs ${mib(buffer)} buffers, the adapter allows ${mib(limit)}`;
  const memory = Math.min(WASM_HEAP_BYTES, device.memoryBytes ? device.memoryBytes / 2 : WASM_HEAP_BYTES);
  if (weights > memory) return `fp32 weights are ${mib(weights)}, more than the ${mib(memory)} this browser can hold`;
  return null;
}

function wasmChoice(manifest, reason, device = {}) {
  const candidates = variantsFor(manifest, "wasm");
  if (!candidates.length) throw new Error("this model has no variant that runs on WASM");
  const fp32 = variantBytes(manifest, "fp32");
  let variant;
  if (candidates.includes("fp32") && fp32 <= SMALL_MODEL_BYTES) {
    variant = "fp32"; // exact, and small enough
  } else if (manifest.wasm_preference && candidates.includes(manifest.wasm_preference)) {
    variant = manifest.wasm_preference;
  } else {
    candidates.sort((a, b) => variantBytes(manifest, a) - variantBytes(manifest, b));
    variant = candidates[0];
  }
  return { ep: "wasm", variant, label: `WASM: ${reason}`, reason, threads: wasmThreads(device) };
}

/** onnxruntime-web's thread count: every core, when the page is cross-origin isolated (threads
 *  need SharedArrayBuffer); `requested` (the ?threads= URL parameter) overrides. */
export function wasmThreads({ cores = 1, isolated = false, requested = null } = {}) {
  if (!isolated) return 1;
  if (requested) return Math.max(1, Math.min(cores, requested));
  return Math.max(1, cores);
}

/** A model published in fp16 only (a Hub repo: sd-turbo-ort-web, the WebNN ones): nothing else runs it. */
const onlyFp16 = (manifest) => !variantsFor(manifest, "wasm").length && !variantsFor(manifest, "webgpu").length &&
  variantsFor(manifest, "webgpu-f16").includes("fp16");

function fp16OnlyChoice(manifest, gpu, preference) {
  const missing = preference === "wasm" ? "WASM was asked for (?backend=wasm)"
    : !gpu.available ? `this browser has no WebGPU (${gpu.reason})`
      : !gpu.f16 ? `this browser's WebGPU adapter (${gpu.adapter}${gpu.fallback ? ", a software one" : ""}) has no shader-f16`
        : null;
  if (missing) {
    throw new Error(`${manifest.name} is published in fp16, which runs only on WebGPU with shader-f16, and ${missing}. ` +
      "Open it in Chrome or Edge on a GPU with shader-f16 (most laptop and desktop GPUs of recent years), " +
      "or use an fp32 export of the model (python -m export convert).");
  }
  return { ep: "webgpu", variant: "fp16", label: "WebGPU fp16", reason: `the model is fp16 only; adapter ${gpu.adapter} has shader-f16`, threads: 1 };
}

/**
 * Choose {ep, variant, variants, label, reason, threads} for a manifest, given the WebGPU probe, a
 * user preference ("auto", "webgpu" or "wasm") and the device {memoryBytes, cores, isolated,
 * requested (threads), variant (a variant the user asked for)}. `variant` is the model's variant;
 * `variants` each component's, where WASM runs a component faster in another (componentVariants).
 */
export function chooseBackend(manifest, gpu, preference = "auto", device = {}) {
  const choice = onlyFp16(manifest) ? fp16OnlyChoice(manifest, gpu, preference) : automaticChoice(manifest, gpu, preference, device);
  const wanted = device.variant; // ?variant= in the URL, for measuring one against another: every component
  if (!wanted || wanted === choice.variant) return { ...choice, variants: componentVariants(manifest, choice, Boolean(wanted)) };
  if (variantBytes(manifest, wanted) === null) throw new Error(`this model has no ${wanted} variant of every graph`);
  const forced = { ...choice, variant: wanted, label: `${choice.label} (${wanted})`, reason: `${choice.reason}; ${wanted} chosen by you` };
  return { ...forced, variants: componentVariants(manifest, forced, true) };
}

/**
 * Each component's variant: the model's, except on WASM where a component is faster in another
 * variant whose error is no larger (WASM_COMPONENT_VARIANTS); never for a model small enough to run
 * exact fp32, and never when the user named the variant.
 */
export function componentVariants(manifest, choice, named = false, table = WASM_COMPONENT_VARIANTS) {
  const variants = Object.fromEntries(COMPONENTS.map((c) => [c, choice.variant]));
  if (choice.ep !== "wasm" || named || choice.variant === "fp32") return variants;
  for (const [component, better] of Object.entries(table[choice.variant] || {})) {
    if (manifest.components[component]?.variants?.[better]?.backends?.includes("wasm")) variants[component] = better;
  }
  return variants;
}

function automaticChoice(manifest, gpu, preference, device) {
  if (preference === "wasm") return wasmChoice(manifest, "chosen by you", device);
  if (!gpu.available) return wasmChoice(manifest, gpu.reason, device);
  const forced = preference === "webgpu";
  if (gpu.fallback && !forced) {
    return wasmChoice(manifest, `the WebGPU adapter (${gpu.adapter}) is software, slower than WASM`, device);
  }
  const kind = gpu.fallback ? "software " : "";
  const webgpu = (variant, label, reason) => ({
    ep: "webgpu", variant, label: gpu.fallback ? `${label} (software)` : label, reason: `${reason}; ${kind}adapter ${gpu.adapter}`,
    threads: 1,
  });
  if (gpu.f16 && variantsFor(manifest, "webgpu-f16").includes("fp16")) {
    return webgpu("fp16", "WebGPU fp16", forced ? "chosen by you; adapter has shader-f16" : "adapter has shader-f16");
  }
  const why = gpu.f16 ? "model has no fp16 variant" : "adapter has no shader-f16";
  const misfit = fp32Misfit(manifest, gpu, device);
  if (!misfit || (forced && variantBytes(manifest, "fp32") !== null)) {
    return webgpu("fp32", "WebGPU fp32", forced ? `chosen by you; ${why}` : why);
  }
  return wasmChoice(manifest, `${why} and ${misfit}`, device);
}

/** The choice once the fp16 self-check has run: unchanged when it passed, else the best choice
 *  without fp16, saying why. */
export function afterSelfCheck(choice, check, manifest, gpu, preference = "auto", device = {}) {
  if (choice.variant !== "fp16" || choice.ep !== "webgpu" || check.ok) return choice;
  const next = chooseBackend(manifest, { ...gpu, f16: false }, preference, device);
  const reason = `fp16 self-check failed (${check.reason}); ${next.reason}`;
  return { ...next, reason, label: next.ep === "wasm" ? `WASM: fp16 self-check failed` : next.label };
}
