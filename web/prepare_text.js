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
  const soon = () => {
    clearTimeout(timer);
    timer = setTimeout(() => idle() && prepare(words()).catch(() => {}), REST_MS);
  };
  for (const field of fields) field.addEventListener("input", soon);
}
