// The two decoders that can draw a run's finished picture, by name: the model's own VAE (exact) and
// the fast decoder, TAESD (py/sdlens/fast_decoder.py: much quicker, close). Every view that says
// which one drew a picture takes its words from here.

/** The decoders' names, as py/sdlens/fast_decoder.py's LABELS writes them (the worker's phases too). */
export const DECODER_LABELS = { vae: "the VAE", fast: "the fast decoder (TAESD)" };

/** "vae" or "fast" for a decoder's name (a phase event names the decoder in words). */
export const decoderKey = (label) => Object.keys(DECODER_LABELS).find((k) => DECODER_LABELS[k] === label) || "vae";

/** The decoder that drew a run's current picture: "vae" or "fast" (runs made before there was a choice: the VAE). */
export const decoderOf = (run) => (run?.decoder === "fast" ? "fast" : "vae");

/** A setting's value as the form's menu holds it ("taesd" is the fast decoder, as in Python). */
export const decoderValue = (value) => (["fast", "taesd"].includes(String(value ?? "").trim().toLowerCase()) ? "fast" : "vae");
