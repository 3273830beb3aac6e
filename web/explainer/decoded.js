// Pictures of a step's tensors, made by the same decoder as the step strip's x̂₀ pictures
// (window.sdlens.decode: the preview decoder where the model has one, else the VAE). Each tensor
// of each step is decoded once per run and kept with the run, so scrubbing back costs nothing.
// The stage (x_t on the big picture) and the detail panel (one picture per tensor) share them.

/** A promise of {width, height, rgba, by} for tensor `name` ("latent", "x0", "eps_cond", …) of `step`. */
export function decodeTensor(run, step, name) {
  if (name === "x0" && step.preview.source !== "linear") return Promise.resolve({ ...step.preview, by: step.preview.source });
  run.decodedTensors ||= new Map();
  const key = `${step.index}:${name}`;
  if (!run.decodedTensors.has(key)) {
    const request = window.sdlens.decode(step.tensors[name], step.shape);
    request.catch(() => run.decodedTensors.delete(key)); // a later look tries again
    run.decodedTensors.set(key, request);
  }
  return run.decodedTensors.get(key);
}

/** Which decoder made a picture, in words. */
export const DECODERS = { vae: "the VAE", preview_decoder: "the preview decoder (TAESD)" };
