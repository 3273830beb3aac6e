// The explainer's memory: every run's per-step tensors as the worker reported them, and the
// selected step. Views draw only from here, so scrubbing a finished run recomputes nothing, and
// what a view shows is exactly what the run computed.
//
// A run: {key, settings, manifest, backend, explained, steps: [step], tokens, textEmbeddings,
//         textShape, final: {width, height, rgba}, decoder: "vae" | "fast" (which drew `final`),
//         decoderLabel, latents (the final latent), latentShape, decoded: Map(step index → {width, height, rgba}),
//         start: null, or for a run from a picture {start_step, t_start, init_latent, …} (the steps
//         before start_step were skipped; `steps` holds only those that ran)}
// `explained` is false for a run made with "Explain every step" off: it is still the current run
// (image, link, downloads, tokens, timeline), but its steps carry no tensors.
// A step: {index, steps, timestep, sigma, ms, coefficients, shape,
//          tensors: {latent, eps_uncond?, eps_cond, eps_guided, x0, attention?}, attention_shape?, preview}
//          (attention: the conditional pass's per-token cross-attention maps, tokens × h × w)

export class RunStore extends EventTarget {
  constructor() {
    super();
    this.runs = new Map();
    this.previous = new Map(); // key → the finished run a running one replaced (for Stop)
    this.selected = 0;
  }

  /** Start collecting a run under `key` ("main", "compare", …); replaces an older one. */
  begin(key, settings, manifest, backend, { explained = true } = {}) {
    const run = { key, settings, manifest, backend, explained, steps: [], decoded: new Map(), final: null };
    const older = this.runs.get(key);
    if (older?.final) this.previous.set(key, older);
    this.runs.set(key, run);
    this.emit("run", { key });
    return run;
  }

  addStep(key, step) {
    const run = this.runs.get(key);
    run.steps.push(step);
    if (key === "main") this.selected = step.index;
    this.emit("step", { key, index: step.index });
  }

  finish(key, result) {
    const run = this.runs.get(key);
    Object.assign(run, {
      final: { width: result.width, height: result.height, rgba: result.rgba },
      tokens: result.tokens,
      textEmbeddings: result.text_embeddings,
      textShape: result.text_shape,
      latents: result.latents,
      latentShape: result.latent_shape,
      // which decoder drew `final`: "vae" or "fast" (TAESD); "Redraw with the full VAE" changes both
      decoder: result.decoder || "vae",
      decoderLabel: result.decoder_label || "the VAE",
      timings: result.timings,
      hasAttention: result.has_attention,
      modifiedCode: result.modified_code || [], // ["guidance", "step"]: parts run with a learner's edit
      // A run from a picture: where it started ({start_step, t_start, shape, …}) and the picture's latent x₀
      start: result.start || null,
      initLatent: result.start?.init_latent || null,
    });
    this.previous.delete(key);
    this.emit("finish", { key });
  }

  /** A run under `key` was stopped or failed: the finished run it replaced comes back (or none).
   * Returns that run. */
  restore(key) {
    const previous = this.previous.get(key) || null;
    this.previous.delete(key);
    if (previous) this.runs.set(key, previous);
    else this.runs.delete(key);
    if (key === "main") this.selected = Math.max(0, (previous?.steps.length || 1) - 1);
    this.emit("run", { key });
    if (previous) this.emit("finish", { key });
    return previous;
  }

  /** Make `run` (a finished run kept elsewhere, or null for none) the run under `key` again, at
   * step `selected`: the guided tour brings back the learner's run with it. */
  reinstate(key, run, selected = 0) {
    this.previous.delete(key);
    if (run) this.runs.set(key, run);
    else this.runs.delete(key);
    if (key === "main") this.selected = Math.max(0, Math.min(selected, (run?.steps.length || 1) - 1));
    this.emit("run", { key });
    if (run) this.emit("finish", { key });
  }

  get main() {
    return this.runs.get("main");
  }

  select(index) {
    const run = this.main;
    if (!run || !run.steps.length) return;
    this.selected = Math.max(0, Math.min(run.steps.length - 1, index));
    this.emit("select", { index: this.selected });
  }

  step(key = "main", index = this.selected) {
    const run = this.runs.get(key);
    if (!run || !run.steps.length) return null;
    return run.steps[Math.min(index, run.steps.length - 1)];
  }

  emit(type, detail) {
    this.dispatchEvent(new CustomEvent(type, { detail }));
  }
}
