// Which onnxruntime-web backend and model variant to use, and why: the badge tells the truth.
//
// WebGPU when the browser has an adapter: fp16 variants only when the adapter has `shader-f16`
// (elsewhere they fail or, worse, silently compute wrong numbers); fp32 on WebGPU when the model
// is small enough; otherwise WASM on the CPU, preferring the smallest variant suited to it.

// Below this download size fp32 is affordable everywhere, and it is the exact variant.
export const SMALL_MODEL_BYTES = 600 * 1024 * 1024;
const COMPONENTS = ["text_encoder", "unet", "vae_decoder"];

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
    };
  } catch (err) {
    return { available: false, reason: `WebGPU adapter failed: ${err.message}` };
  }
}

function variantBytes(manifest, variant) {
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

/** Choose {ep, variant, label, reason} for a manifest, given the WebGPU probe and a user preference
 *  ("auto", "webgpu" or "wasm"). */
export function chooseBackend(manifest, gpu, preference = "auto") {
  const wasm = (reason) => {
    const candidates = variantsFor(manifest, "wasm");
    if (!candidates.length) throw new Error("this model has no variant that runs on WASM");
    const fp32 = variantBytes(manifest, "fp32");
    // Exact fp32 when it is small; otherwise the smallest download that WASM runs correctly.
    candidates.sort((a, b) => variantBytes(manifest, a) - variantBytes(manifest, b));
    const variant = candidates.includes("fp32") && fp32 <= SMALL_MODEL_BYTES ? "fp32" : candidates[0];
    return { ep: "wasm", variant, label: `WASM: ${reason}`, reason };
  };
  if (preference === "wasm") return wasm("chosen by you");
  if (!gpu.available) return wasm(gpu.reason);
  if (gpu.f16 && variantsFor(manifest, "webgpu-f16").includes("fp16")) {
    return { ep: "webgpu", variant: "fp16", label: "WebGPU (shader-f16)", reason: `fp16 on ${gpu.adapter}` };
  }
  const fp32 = variantBytes(manifest, "fp32");
  if (fp32 !== null && (fp32 <= SMALL_MODEL_BYTES || preference === "webgpu")) {
    const why = gpu.f16 ? "model has no fp16 variant" : "adapter has no shader-f16";
    return { ep: "webgpu", variant: "fp32", label: "WebGPU fp32", reason: `${why}; ${gpu.adapter}` };
  }
  if (!gpu.f16) return wasm("model variant needs shader-f16");
  return wasm("model too large for fp32 on WebGPU");
}
