// "More settings": what a first run does not need (model, negative prompt, steps, scheduler, …)
// folds away under one summary line that says what is set. A message for a folded field (a bad
// step count, a scheduler warning) opens the fold, so that nobody misses why a run did not start.

const $ = (id) => document.getElementById(id);

export function mountFold(details) {
  const note = details.querySelector(".summary-note");
  const summarise = () => {
    const model = $("model").selectedOptions[0]?.textContent || "";
    const scheduler = $("scheduler").selectedOptions[0]?.textContent || $("scheduler").value;
    const karras = $("karras").checked && !$("karras").disabled ? " Karras" : "";
    const negative = $("negative").value.trim() ? " · with a negative prompt" : "";
    note.textContent = `(${[model, `${$("steps").value} steps`, `${scheduler}${karras}`].filter(Boolean).join(" · ")}${negative})`;
  };
  details.addEventListener("input", summarise);
  details.addEventListener("change", summarise);
  // The page writes each run's settings into the form without input events: summarise after runs too.
  new MutationObserver(summarise).observe($("model"), { childList: true });
  new MutationObserver(summarise).observe($("scheduler"), { childList: true });
  const messages = details.querySelectorAll(".field-message");
  const openFor = () => {
    if ([...messages].some((m) => m.textContent.trim())) details.open = true;
  };
  for (const m of messages) new MutationObserver(openFor).observe(m, { childList: true, characterData: true, subtree: true });
  summarise();
  return { summarise };
}
