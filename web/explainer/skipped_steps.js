// Under the timeline, for a run that started from a picture: one cell per step of the schedule,
// the steps that strength skipped greyed out, the selected step marked. (A text-to-image run runs
// every step: no strip.)

import { stepsAtStrength } from "../picture/strength.js";

/** {steps, skipped} of a run from a picture, or null: the run's own report where it gave one,
 * else diffusers' rule (picture/strength.js), which the Python applies too. */
export function skippedSteps(run) {
  if (!run?.settings?.init_image) return null;
  const steps = Number(run.settings.steps);
  const reported = run.start?.start_step;
  if (Number.isInteger(reported)) return { steps, skipped: reported };
  const rule = stepsAtStrength(steps, run.settings.strength ?? 0.8);
  return rule.error ? null : { steps, skipped: rule.skipped };
}

export function mountSkippedSteps(container, store) {
  const strip = document.createElement("div");
  strip.className = "tl-steps";
  strip.setAttribute("aria-hidden", "true");
  const note = document.createElement("p");
  note.className = "tl-steps-note";
  note.id = "tl-skipped";
  container.append(strip, note);
  const update = () => {
    const run = store.main;
    const skip = skippedSteps(run);
    strip.hidden = note.hidden = !skip;
    if (!skip) return;
    const current = store.step()?.step;
    strip.replaceChildren(...Array.from({ length: skip.steps }, (_, i) => {
      const cell = document.createElement("span");
      if (i < skip.skipped) cell.className = "skipped";
      else if (i === current) cell.className = "current";
      cell.title = i < skip.skipped ? `step ${i + 1}: skipped (the picture stands in for it)` : `step ${i + 1}`;
      return cell;
    }));
    const from = `This run started from a picture at strength ${run.settings.strength}: `;
    note.textContent = skip.skipped === 0
      ? `${from}every step ran, from the picture noised to the first step's level.`
      : `${from}step${skip.skipped === 1 ? " 1 was" : `s 1–${skip.skipped} were`} skipped (grey); ` +
        `the picture, noised to step ${skip.skipped + 1}'s level, took their place.`;
  };
  for (const type of ["select", "step", "run", "finish"]) store.addEventListener(type, update);
  update();
}
