// What strength means in steps, by diffusers' rule (StableDiffusionImg2ImgPipeline.get_timesteps):
//   init_timestep = min(int(steps · strength), steps);  t_start = max(steps − init_timestep, 0)
// The run skips the first t_start steps (t_start · order UNet calls) and starts from the picture
// noised to the timestep of the first step it runs. The Python pipeline applies the same rule.

/** {run, skipped, steps}: how many of `steps` run at `strength`, or {error} where none can. */
export function stepsAtStrength(steps, strength) {
  const n = Number(steps);
  const s = Number(strength);
  if (!Number.isInteger(n) || n < 1) return { error: "steps must be a whole number of at least 1" };
  if (!Number.isFinite(s) || s <= 0 || s > 1) return { error: `strength must be above 0 and at most 1, got ${strength}` };
  const initTimestep = Math.min(Math.floor(n * s), n); // Python's int() of a positive float
  const skipped = Math.max(n - initTimestep, 0);
  if (initTimestep < 1) {
    return { error: `strength ${s} of ${n} steps runs no step at all (int(${n} × ${s}) = 0); raise the strength or the steps` };
  }
  return { run: initTimestep, skipped, steps: n };
}

/** The one line under the slider: "strength 0.6 → the last 15 of 25 steps run". */
export function strengthLine(steps, strength) {
  const r = stepsAtStrength(steps, strength);
  if (r.error) return r.error;
  const s = Number(strength);
  if (r.run === r.steps) return `strength ${s} → all ${r.steps} steps run (the picture is noised to the first step's level: little of it is left)`;
  return `strength ${s} → the last ${r.run} of ${r.steps} step${r.steps === 1 ? "" : "s"} run`;
}
