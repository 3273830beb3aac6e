// The timestep controller: a slider over the run's steps, play/pause, step back/forward, and the
// keyboard (space plays, arrows step, while the timeline or nothing has the focus). Every view
// follows `store.selected`.

export function mountTimeline(container, store) {
  container.innerHTML = `
    <div class="timeline">
      <button type="button" id="tl-back" aria-label="previous step">◀</button>
      <button type="button" id="tl-play" aria-label="play">▶ play</button>
      <button type="button" id="tl-forward" aria-label="next step">▶</button>
      <input type="range" id="tl-slider" min="0" max="0" value="0" aria-label="denoising step">
      <span id="tl-label">Run the model to explore its steps.</span>
    </div>`;
  const slider = container.querySelector("#tl-slider");
  const label = container.querySelector("#tl-label");
  const play = container.querySelector("#tl-play");
  let timer = null;

  const steps = () => store.main?.steps.length || 0;
  const update = () => {
    const n = steps();
    slider.max = Math.max(0, n - 1);
    slider.value = store.selected;
    const step = store.step();
    // A run from a picture skipped its first steps: count in the whole schedule, as the strip below does.
    const which = store.main?.start
      ? `Step ${step?.step + 1} of ${step?.steps} (${store.selected + 1} of the ${n} that ran)`
      : `Step ${store.selected + 1} of ${n}`;
    label.textContent = step
      ? `${which} · timestep t = ${Math.round(step.timestep)} · noise level σ = ${step.sigma.toFixed(3)}`
      : "Run the model to explore its steps.";
  };
  const stopPlaying = () => {
    clearInterval(timer);
    timer = null;
    play.textContent = "▶ play";
    delete play.dataset.playing;
  };
  const togglePlay = () => {
    if (timer) return stopPlaying();
    if (!steps()) return;
    if (store.selected >= steps() - 1) store.select(0);
    play.textContent = "❚❚ pause";
    play.dataset.playing = "1";
    // One step every 100 ms, as the original Diffusion Explainer: the picture on the stage follows.
    timer = setInterval(() => {
      if (store.selected >= steps() - 1) return stopPlaying();
      store.select(store.selected + 1);
    }, 100);
  };

  slider.addEventListener("input", () => {
    stopPlaying(); // a hand on the slider takes over from play
    store.select(Number(slider.value));
  });
  container.querySelector("#tl-back").addEventListener("click", () => store.select(store.selected - 1));
  container.querySelector("#tl-forward").addEventListener("click", () => store.select(store.selected + 1));
  play.addEventListener("click", togglePlay);
  // Space and the arrows drive the timeline only when the timeline, or nothing, has the focus:
  // on any other button Space must press that button, and in a field it types.
  document.addEventListener("keydown", (event) => {
    if (event.defaultPrevented || event.altKey || event.ctrlKey || event.metaKey) return;
    const target = event.target;
    const nothingFocused = target === document.body || target === document.documentElement;
    const inTimeline = container.contains(target);
    if (!nothingFocused && !inTimeline) return;
    if (event.key === " ") {
      if (target.closest?.("button")) return; // a timeline button: Space presses it (play, or a step)
      event.preventDefault();
      togglePlay();
    } else if ((event.key === "ArrowLeft" || event.key === "ArrowRight") && target !== slider) {
      // (the focused slider moves itself on arrows, and reports it as an input event)
      event.preventDefault();
      store.select(store.selected + (event.key === "ArrowLeft" ? -1 : 1));
    }
  });
  for (const type of ["select", "step", "run", "finish"]) store.addEventListener(type, update);
  update();
}
