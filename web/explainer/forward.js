// The forward process, made visible: the current run's clean latent x₀ noised to any training
// timestep t in one jump, x_t = √ᾱ_t · x₀ + √(1 − ᾱ_t) · ε, with the run's own ε (from its seed)
// and the model's own ᾱ (its scheduler config); then training's question about that x_t: the
// UNet's ε̂ beside the true ε, and the loss between them. Computed in the worker on the run's
// backend and drawn by the same decoder as every other latent on the page.

import { drawRgba } from "./colormaps.js";
import { displayed } from "./displayed.js";
import { skippedSteps } from "./skipped_steps.js";

const d3 = globalThis.d3;
const fmt = (x) => x.toFixed(3);

/** Where x₀ comes from for a run: the picture it started from, else its final latent. */
export function cleanLatent(run) {
  if (!run?.final) return null;
  const shape = run.steps[0]?.shape || run.start?.shape;
  if (run.initLatent && shape) {
    return { latent: run.initLatent, shape, fromPicture: true, source: "init",
      says: "x₀ is the latent of the picture this run started from (its VAE encoding)." };
  }
  if (run.latents && shape) {
    return { latent: run.latents, shape, fromPicture: false, source: "final_latent",
      says: "This model has no VAE encoder, so x₀ is this run's final latent: the one the VAE decoder drew the picture from." };
  }
  return null;
}

/** A text-to-image run's x₀: its final image encoded back through the VAE encoder, as training
 * encodes a picture (and as a run from this picture with this seed would); else `cleanLatent`. */
async function encodedLatent(run, api) {
  const fallback = cleanLatent(run);
  const shape = run?.steps[0]?.shape;
  if (!run?.final || run.initLatent || !shape) return fallback;
  try {
    const { latent } = await api.encode(run.final, run.settings.seed);
    if (latent) {
      return { latent, shape, fromPicture: true, source: "encoded",
        says: "x₀ is the final image encoded back by the VAE encoder, the way training encodes a picture." };
    }
  } catch (err) {
    // (no encoder, or one that fails: the run's own final latent still shows the forward process)
    if (/no VAE encoder/.test(err.message)) return fallback;
    return fallback && { ...fallback, says: `The VAE encoder could not encode the final image (${err.message}), ` +
      "so x₀ is this run's final latent: the one the VAE decoder drew the picture from." };
  }
  return fallback;
}

/** Training's loss for this one x_t, in words: the number, what it is, and what a guess of zero scores. */
function lossText(out, shape) {
  const count = shape.reduce((a, b) => a * b, 1);
  return `How far off: the mean of (ε̂ − ε)² over the ${count} numbers is ${fmt(out.loss)}. ` +
    `This is the loss training makes small, over many pictures, timesteps and noises ` +
    `(guessing ε̂ = 0 everywhere would score ${fmt(out.eps_mean_square)}).`;
}

export function mountForward(explainer, store, api) {
  let section = document.getElementById("forward-section");
  if (!section) {
    section = document.createElement("section");
    section.id = "forward-section";
    explainer.insertBefore(section, document.getElementById("code-section"));
  }
  section.className = "forward";
  section.innerHTML = `
    <h3>The forward process: where the noise comes from</h3>
    <p>Training runs the other way from generating: it takes a clean picture's latent x₀, adds noise ε
      in one jump to a random timestep t, and teaches the UNet to predict that ε from x_t, t and the
      picture's caption. Below, the UNet answers for this x_t, beside the true ε. Its answer is what the
      Refiner's ε_cond panel shows at each step of the reverse process.</p>
    <p class="note" id="forward-source"></p>
    <div class="forward-body">
      <div class="forward-pictures">
        <div class="forward-row" role="group" aria-label="noising x₀ to x_t">
          <figure><canvas class="forward-picture" id="forward-x0"></canvas><figcaption>x₀ (t = 0)</figcaption></figure>
          <span class="forward-op" aria-hidden="true">+</span>
          <figure><canvas class="forward-picture" id="forward-eps"></canvas><figcaption id="forward-eps-caption">ε, the noise</figcaption></figure>
          <span class="forward-op" aria-hidden="true">=</span>
          <figure><canvas class="forward-picture" id="forward-xt"></canvas><figcaption id="forward-xt-caption">x_t</figcaption></figure>
        </div>
        <div class="forward-row" role="group" aria-label="what training asks the UNet">
          <figure><canvas class="forward-picture" id="forward-predicted"></canvas>
            <figcaption>ε̂: the UNet's guess, from x_t, t and the prompt</figcaption></figure>
          <span class="forward-op" aria-hidden="true">vs</span>
          <figure><canvas class="forward-picture" id="forward-eps-true"></canvas><figcaption>ε: the true noise</figcaption></figure>
          <p class="forward-loss" id="forward-loss" aria-live="polite"></p>
        </div>
        <p class="note" id="forward-noise-note">ε and ε̂ are latents, not images: their pictures are the noise
          decoded as if it were a latent, by the decoder the step strip uses. The number says how close they are.</p>
      </div>
      <div class="forward-controls">
        <label>t = <output id="forward-t-value">500</output>
          <input type="range" id="forward-t" min="0" max="999" step="1" value="500" aria-label="training timestep t"></label>
        <div class="forward-formula" id="forward-formula" aria-live="polite"></div>
        <svg id="forward-curve" viewBox="0 0 360 170" role="img" aria-label="ᾱ_t over t"></svg>
        <p class="note" id="forward-legend">Blue: ᾱ_t, how much of x₀ is left at each t (its square root weighs x₀).
          Orange: the t shown.</p>
      </div>
    </div>`;
  const $ = (id) => section.querySelector(`#${id}`);
  const slider = $("forward-t");
  let alphas = null;
  let current = null; // {run, clean}
  let busy = false;
  let wanted = null;
  let startT = null;
  let loading = null; // the run whose x₀ is being fetched

  async function ensureSchedule() {
    if (!alphas) alphas = await api.schedule();
    slider.max = String(alphas.length - 1);
    return alphas;
  }

  function drawCurve(t) {
    const svg = d3.select($("forward-curve"));
    const [w, h, m] = [360, 170, { left: 38, right: 10, top: 10, bottom: 30 }];
    const x = d3.scaleLinear().domain([0, alphas.length - 1]).range([m.left, w - m.right]);
    const y = d3.scaleLinear().domain([0, 1]).range([h - m.bottom, m.top]); // the whole 0…1: nothing exaggerated
    svg.selectAll("*").remove();
    svg.append("g").attr("transform", `translate(0,${h - m.bottom})`).call(d3.axisBottom(x).ticks(5));
    svg.append("g").attr("transform", `translate(${m.left},0)`).call(d3.axisLeft(y).ticks(4));
    svg.append("text").attr("x", w - m.right).attr("y", h - 2).attr("text-anchor", "end").attr("font-size", 11).text("t");
    const line = d3.line().x((_, i) => x(i)).y((a) => y(a));
    svg.append("path").attr("d", line(alphas)).attr("fill", "none").attr("stroke", "#2f6fb2").attr("stroke-width", 2);
    if (startT !== null) {
      svg.append("line").attr("x1", x(startT)).attr("x2", x(startT)).attr("y1", y(0)).attr("y2", y(1))
        .attr("stroke", "#7a8490").attr("stroke-dasharray", "4 3");
      // Top right of the curve is empty: the label goes right of the line, or left of it near the end.
      const right = startT <= 550;
      svg.append("text").attr("id", "forward-start-mark").attr("x", x(startT) + (right ? 4 : -4)).attr("y", y(0.95))
        .attr("text-anchor", right ? "start" : "end").attr("font-size", 11).attr("fill", "#3d4753")
        .text(`this run started here (t = ${startT})`);
    }
    svg.append("circle").attr("cx", x(t)).attr("cy", y(alphas[t])).attr("r", 5).attr("fill", "#e07b00");
    svg.append("line").attr("x1", x(t)).attr("x2", x(t)).attr("y1", y(0)).attr("y2", y(alphas[t]))
      .attr("stroke", "#e07b00");
  }

  async function show(t) {
    if (!current) return;
    wanted = t;
    if (busy) return;
    busy = true;
    try {
      while (wanted !== null) {
        const at = wanted;
        wanted = null;
        const { run, clean } = current;
        const out = await api.forward({ x0: clean.latent, shape: clean.shape, t: at, seed: run.settings.seed,
          fromPicture: clean.fromPicture, prompt: run.settings.prompt });
        if (current?.run !== run) return;
        drawRgba($("forward-xt"), out);
        drawRgba($("forward-eps"), out.eps);
        drawRgba($("forward-eps-true"), out.eps);
        drawRgba($("forward-predicted"), out.predicted);
        $("forward-t-value").textContent = String(at);
        $("forward-xt-caption").textContent = `x_t at t = ${at}, decoded`;
        $("forward-eps-caption").textContent = `ε, the noise (from seed ${run.settings.seed})`;
        $("forward-formula").textContent =
          `x_${at} = ${fmt(out.signal)} · x₀ + ${fmt(out.noise)} · ε    (ᾱ_t = ${fmt(out.alpha_bar)}; ${fmt(out.signal)}² + ${fmt(out.noise)}² = 1)`;
        $("forward-loss").textContent = lossText(out, clean.shape);
        drawCurve(at);
        displayed.forward = { t: at, seed: run.settings.seed, weights: [out.signal, out.noise], alpha_bar: out.alpha_bar, source: clean.source,
          from_picture: clean.fromPicture, t_start: startT, shape: clean.shape, latent: out.latent, x0: clean.latent,
          picture: { width: out.width, height: out.height, rgba: out.rgba }, decoded_by: out.by,
          prompt: run.settings.prompt, eps: out.eps.latent, predicted: out.predicted.latent, loss: out.loss,
          eps_mean_square: out.eps_mean_square,
          eps_picture: { width: out.eps.width, height: out.eps.height, rgba: out.eps.rgba }, eps_decoded_by: out.eps.by };
        section.dispatchEvent(new CustomEvent("forward", { detail: displayed.forward }));
      }
    } catch (err) {
      $("forward-formula").textContent = `Could not compute x_t: ${err.message}`;
    } finally {
      busy = false;
    }
  }

  async function follow() {
    const run = store.main;
    if (current?.run === run && run) return;
    if (!run?.final) return;
    if (!visible || loading === run) return; // computed when looked at: at 512² the encoder and decoder take seconds
    loading = run;
    const clean = await encodedLatent(run, api).finally(() => (loading = null));
    if (store.main !== run) return; // another run finished meanwhile
    body.hidden = !clean;
    if (!clean) {
      current = null;
      $("forward-source").textContent = run?.final
        ? "Run with “Explain every step” on to see this run's own latent here."
        : "Run the model: its picture appears here, and you can noise it to any t.";
      return;
    }
    current = { run, clean };
    await ensureSchedule();
    const skip = skippedSteps(run);
    startT = skip ? Math.round(run.start?.t_start ?? run.steps[0].timestep) : null;
    $("forward-source").textContent = clean.says;
    $("forward-legend").textContent = "Blue: ᾱ_t, how much of x₀ is left at each t (its square root weighs x₀). Orange: the t shown." +
      (startT !== null ? " Dashed: the t this run started from." : "");
    const init = clean.source === "init";
    drawRgba($("forward-x0"), init ? run.settings.init_image : run.final);
    section.querySelector("#forward-x0 + figcaption").textContent = init ? "the starting picture (x₀)" : "the final image (x₀)";
    const t = startT ?? Number(slider.value);
    slider.value = String(t);
    await show(t);
  }

  const body = section.querySelector(".forward-body");
  let visible = false;
  new IntersectionObserver((entries) => {
    visible = entries.some((entry) => entry.isIntersecting);
    if (visible) follow();
  }).observe(section);
  slider.addEventListener("input", () => show(Number(slider.value)));
  store.addEventListener("finish", ({ detail }) => detail.key === "main" && follow());
  store.addEventListener("run", ({ detail }) => {
    if (detail.key === "main" && !store.main?.final) { // a new run is on its way
      body.hidden = true;
      current = null;
      $("forward-source").textContent = "Waiting for the run to finish…";
    }
  });
  body.hidden = true;
  $("forward-source").textContent = "Run the model: its picture appears here, and you can noise it to any t.";
  return { show, follow, section };
}
