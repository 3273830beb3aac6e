// The numbers behind the attention views (attention.js): which tokens make each word, a word's map
// at a step or over the run, the run's one colour scale for its words, and how concentrated a map is.
//
// In every cross-attention layer each latent position spreads one unit of attention over the
// prompt's 77 token vectors (a softmax). The UNet graph returns, per step, that share for every
// token, averaged over heads and layers and resized to the latent (tokens × h × w; see
// export/attention.py). So every number here is a share of one position's attention, 0 to 1.

/** The prompt's words with their token positions (CLIP ends a word's last token with </w>),
 * framed by the start and end tokens, which are explained apart from the words. */
export function promptWords(tokens) {
  const words = [{ key: "t0", label: "⟨start⟩", positions: [0], special: true }];
  let current = [];
  for (let i = 1; i < tokens.length - 1; i++) {
    current.push(i);
    if (tokens.tokens[i].endsWith("</w>") || i === tokens.length - 2) {
      const label = current.map((j) => tokens.tokens[j].replace("</w>", "")).join("");
      words.push({ key: `w${current[0]}`, label, positions: current, pieces: current.length > 1 });
      current = [];
    }
  }
  words.push({ key: `t${tokens.length - 1}`, label: "⟨end⟩", positions: [tokens.length - 1], special: true });
  return words;
}

/** Whether a choice names ⟨start⟩ or ⟨end⟩ (or a single token at their places). */
export function isSpecial(positions, tokens) {
  return positions.length === 1 && (positions[0] === 0 || positions[0] >= tokens.length - 1);
}

/** Mean over `positions` of one step's (tokens, h, w) maps: an h·w Float32Array. */
export function mapOf(maps, shape, positions) {
  const [, h, w] = shape;
  const out = new Float32Array(h * w);
  for (const t of positions) for (let p = 0; p < h * w; p++) out[p] += maps[t * h * w + p];
  for (let p = 0; p < h * w; p++) out[p] /= positions.length;
  return out;
}

/** The same map summed over every step of the run. */
export function summedMap(run, positions) {
  const shape = run.steps[0].attention_shape;
  const out = new Float32Array(shape[1] * shape[2]);
  for (const step of run.steps) mapOf(step.tensors.attention, shape, positions).forEach((v, p) => (out[p] += v));
  return out;
}

/** Largest value of token `t`'s map at any step and position. */
function peakOf(run, t) {
  const [, h, w] = run.steps[0].attention_shape;
  let hi = 0;
  for (const step of run.steps) {
    const a = step.tensors.attention;
    for (let p = t * h * w; p < (t + 1) * h * w; p++) hi = Math.max(hi, a[p]);
  }
  return hi;
}

/**
 * The colour scale of one run's maps, in shares of attention. Every word of the prompt is drawn on
 * the same scale at every step (and averaged over the steps), so a word that pulls little is drawn
 * dim: lo is 0 (no attention) and hi the largest share any single token of the prompt's words gets
 * at any step and position (a word's map is the mean of its tokens', so it never exceeds that).
 * ⟨start⟩ and ⟨end⟩ are not words: each gets its own scale, 0 to its own peak over the run.
 */
export function runScale(run, positions = null) {
  if (positions) return { lo: 0, hi: Math.max(...positions.map((t) => peakOf(run, t))) || 1 };
  let hi = 0;
  for (let t = 1; t < run.tokens.length - 1; t++) hi = Math.max(hi, peakOf(run, t));
  return { lo: 0, hi: hi || 1 };
}

/** The "stretch" option: the chosen word's own range over the run (every step's map and their
 * average lie within it). It exaggerates a weak word; the view labels it so. */
export function stretchScale(run, positions) {
  const shape = run.steps[0].attention_shape;
  let lo = Infinity;
  let hi = -Infinity;
  for (const step of run.steps) {
    for (const v of mapOf(step.tensors.attention, shape, positions)) {
      lo = Math.min(lo, v);
      hi = Math.max(hi, v);
    }
  }
  return { lo, hi: hi > lo ? hi : lo + 1e-6 };
}

/** How concentrated a map is: its peak over its mean (1 = spread perfectly evenly; 2 = its brightest
 * spot gets twice its average share). Read as "the word points at a place". */
export function concentration(map) {
  let sum = 0;
  let max = 0;
  for (const v of map) {
    sum += v;
    max = Math.max(max, v);
  }
  return sum > 0 ? max / (sum / map.length) : 1;
}

// Below this a map is "spread evenly": no spot gets even a quarter more than the word's average.
// On the default model "a", "big" and "," stay under it (1.08–1.20); "red" and "circle" reach 1.5–1.9.
export const EVEN_SPREAD = 1.25;

// Function words are left out of the default choice: CLIP reads left to right, so "in" or "the"
// carry the words before them and can be as concentrated as a noun, but they are not what a
// learner asked for.
const QUIET_WORDS = new Set(["a", "an", "the", "on", "of", "in", "at", "with", "and", ",", "."]);

/** The word shown first: of the prompt's content words, the one whose map averaged over the run is
 * most concentrated (highest peak/mean, `concentration`), i.e. the word that points most clearly at
 * a place. */
export function defaultWord(run, words) {
  const candidates = words.filter((w) => !w.special && !QUIET_WORDS.has(w.label.toLowerCase()));
  const pool = candidates.length ? candidates : words.filter((w) => !w.special);
  if (!pool.length) return words[0];
  let best = pool[0];
  let bestValue = -Infinity;
  for (const word of pool) {
    const value = concentration(summedMap(run, word.positions));
    if (value > bestValue) [best, bestValue] = [word, value];
  }
  return best;
}

/** Where one position's attention goes on average over the run: the words, ⟨start⟩, ⟨end⟩ and the
 * padding after ⟨end⟩ (each a share; together 1). */
export function attentionBudget(run) {
  const [tokens, h, w] = run.steps[0].attention_shape;
  const totals = new Float64Array(tokens);
  for (const step of run.steps) {
    const a = step.tensors.attention;
    for (let t = 0; t < tokens; t++) for (let p = t * h * w; p < (t + 1) * h * w; p++) totals[t] += a[p];
  }
  const share = (from, to) => {
    let s = 0;
    for (let t = from; t < to; t++) s += totals[t];
    return s / (run.steps.length * h * w);
  };
  const end = run.tokens.length - 1;
  return { start: share(0, 1), words: share(1, end), end: share(end, end + 1), padding: share(end + 1, tokens),
           paddingTokens: tokens - end - 1 };
}
