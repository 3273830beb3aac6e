// When a view has stopped moving: its box the same for several animation frames in a row, the
// fonts loaded and no finite CSS animation or transition still running. Things placed beside a
// view (the tour's card) are placed after this, not after some time has passed, which on a busy
// machine is never long enough.

const STILL_FRAMES = 3; // frames in a row with the same box
const MOST_FRAMES = 600; // a view that never settles (a live run's progress) is taken as it is then

const nextFrame = () => new Promise((resolve) => requestAnimationFrame(resolve));

const boxOf = (element) => {
  const b = element.getBoundingClientRect();
  return `${b.left},${b.top},${b.width},${b.height},${document.documentElement.scrollHeight}`;
};

// Infinite animations (a spinner) never end, so they do not count as movement still to come.
const finiteAnimationRunning = () =>
  document.getAnimations().some((a) => a.playState === "running" && a.effect?.getComputedTiming().endTime !== Infinity);

/** Resolves once `element` has stopped moving (or MOST_FRAMES frames have gone by). */
export async function settled(element) {
  await document.fonts?.ready;
  let last = boxOf(element);
  let still = 0;
  for (let frame = 0; frame < MOST_FRAMES && still < STILL_FRAMES; frame++) {
    await nextFrame();
    const now = boxOf(element);
    still = now === last && !finiteAnimationRunning() ? still + 1 : 0;
    last = now;
  }
}

/** Resolves once `element` is hidden, or `gaveUp()` says it will not be (checked on each change). */
export function hiddenNow(element, gaveUp = () => false) {
  if (element.hidden || gaveUp()) return Promise.resolve();
  return new Promise((resolve) => {
    const watch = new MutationObserver(() => {
      if (!element.hidden && !gaveUp()) return;
      watch.disconnect();
      resolve();
    });
    watch.observe(element, { attributes: true, attributeFilter: ["hidden", "style"] });
  });
}
