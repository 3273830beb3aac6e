// The prompt's embeddings, made while the learner types. Once the words rest for a moment and the
// page is idle, the worker runs the text encoder on them (Pipeline.prepare_text), and Generate finds
// them made: at full size on WASM the text encoder is most of a second of the wait.

const REST_MS = 500;

/**
 * Watch `fields` (the prompt, the negative prompt, guidance). `words()` gives the settings that
 * decide the embeddings; `idle()` whether a model is loaded and nothing runs; `prepare(settings)`
 * is the worker's call. A failure only means Generate encodes the words itself, so it is not shown.
 */
export function prepareWhileTyping({ fields, words, idle, prepare }) {
  let timer = null;
  // "sdlens:prepared" ({settings, ran, ms}) says the worker has made these words' embeddings: what
  // a test waits on before Generate, rather than on time passing (the rest, then the worker's turn).
  const made = (settings) => prepare(settings)
    .then((answer) => window.dispatchEvent(new CustomEvent("sdlens:prepared", { detail: { settings, ...answer } })))
    .catch(() => {});
  const soon = () => {
    clearTimeout(timer);
    timer = setTimeout(() => idle() && made(words()), REST_MS);
  };
  for (const field of fields) field.addEventListener("input", soon);
}
