// The badge in the header: which backend runs the model, and in its tooltip why, with how many
// threads and each graph's variant (web/runtime/backend.js chooses them all).

const NAMES = { text_encoder: "text encoder", unet: "UNet", vae_decoder: "VAE decoder" };

/** Show `backend` ({ep, label, reason, variant, variants, threads}) on the badge element. */
export function showBackend(badge, backend) {
  badge.textContent = backend.label;
  const threads = backend.ep === "wasm" ? `; ${backend.threads} thread${backend.threads === 1 ? "" : "s"}` : "";
  // Each graph's own variant: on WASM a component may run faster in another than the model's.
  const each = Object.entries(backend.variants || {}).map(([c, v]) => `${NAMES[c] || c} ${v}`).join(", ");
  badge.title = `${backend.variant}: ${backend.reason}${threads}${each ? `; ${each}` : ""}`;
  badge.className = `badge ${backend.ep}${backend.ep === "webgpu" && backend.label.endsWith("(software)") ? " software" : ""}`;
}
