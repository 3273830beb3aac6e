// Advice and errors shown by the form's fields as the learner types, in the same words as the
// Python check (py/sdlens/guidance.py), which has the last word when a run starts.

/** A bad value as typed, for a message: not “abc”, or but it is empty (as errors.as_typed). */
export function asTyped(value, longest = 30) {
  const text = String(value ?? "").trim();
  if (!text) return "but it is empty";
  return `not “${text.length > longest ? `${text.slice(0, longest)}…` : text}”`;
}

/**
 * What to say by the guidance box about `value`: {text, kind}, kind "error" for a value no run
 * accepts (then no advice: advice about g ≤ 1 would read as if −5 were fine), "warning" for one
 * that runs but deserves a word, "" for nothing to say.
 */
export function guidanceAdvice(value, formulaBelowOne = false) {
  const text = String(value ?? "").trim();
  const g = text === "" ? NaN : Number(text);
  if (!Number.isFinite(g) || g < 0) {
    return { text: `guidance must be a number, 0 or more (7.5 is usual), ${asTyped(value)}`, kind: "error" };
  }
  if (g > 20) {
    return { text: `g = ${g} is far above the usual 1 to 20: expect harsh, over-saturated colours or a broken picture.`, kind: "warning" };
  }
  if (g < 1 && formulaBelowOne) {
    return {
      text: `g = ${g} with the formula: ε = ε_uncond + ${g}·(ε_cond − ε_uncond)${g === 0 ? ", which ignores the prompt" : ", less than the prompt alone"}.`,
      kind: "warning",
    };
  }
  if (g <= 1) {
    return {
      text: "g ≤ 1 switches guidance off (as in diffusers): the prompt's prediction alone is used, so g = 0 and g = 1 give the same picture.",
      kind: "warning",
    };
  }
  return { text: "", kind: "" };
}
