// Firefox ESR (Debian's, as schools have it) opens the page with no link, headless, over WebDriver
// BiDi: the first visit must run the starter prompt by itself; then one generate from the form's
// API. Prints one JSON line: each run's settings and pixels (RGB as base64), the backend and any
// page errors. Run by tests/test_firefox.py:
//   node tests/web/firefox_first_visit.mjs URL '{"prompt": …}'   (URL of `python serve.py`)
import puppeteer from "puppeteer-core";

const [url, generateJson] = process.argv.slice(2);
const executablePath = process.env.SDLENS_FIREFOX || "/usr/bin/firefox-esr";

// A wait that did not end says where the page was, so that a failure can be read from the log.
async function waitFor(page, expression, options, errors) {
  try {
    await page.waitForFunction(expression, options);
  } catch (err) {
    const where = await Promise.race([
      page.evaluate(() => ({ progress: document.getElementById("progress-text")?.textContent,
        startup: window.sdlens?.startup, boot: window.sdlens?.debug?.boot, backend: window.sdlens?.backend,
        stage: window.sdlens?.debug?.displayed?.stage?.kind })).catch((e) => `page did not answer: ${e}`),
      new Promise((resolve) => setTimeout(() => resolve("page did not answer in 10 s"), 10_000)),
    ]);
    console.error(`waiting for ${expression}: ${err.message}\npage: ${JSON.stringify(where)}\nerrors: ${JSON.stringify(errors)}`);
    throw err;
  }
}

const browser = await puppeteer.launch({ browser: "firefox", executablePath, headless: true, protocolTimeout: 600_000 });
try {
  const page = await browser.newPage();
  const errors = [];
  page.on("pageerror", (err) => errors.push(String(err?.message || err)));
  page.on("console", (message) => message.type() === "error" && errors.push(message.text()));
  await page.goto(`${url}/?backend=wasm`);
  // The first visit's own run: nothing here asks for it.
  await waitFor(page, "window.sdlens?.startup?.firstImage", { timeout: 600_000, polling: 100 }, errors);
  // It plays once by itself (the stage); the picture is compared once the play has ended on it.
  // (Its step pictures are decoded after the image, then it plays: startup.pictures marks that.)
  await waitFor(page, "window.sdlens.startup?.pictures && window.sdlens.debug?.displayed?.stage?.kind === 'final' " +
    "&& !document.getElementById('tl-play').dataset.playing",
    { timeout: 120_000, polling: 100 }, errors);
  const result = await page.evaluate(async (request) => {
    await window.sdlens.ready;
    const rgb = (rgba) => {
      const out = new Uint8Array((rgba.length / 4) * 3);
      for (let i = 0, j = 0; i < rgba.length; i += 4, j += 3) out.set(rgba.subarray(i, i + 3), j);
      let text = "";
      for (const byte of out) text += String.fromCharCode(byte);
      return btoa(text);
    };
    const main = window.sdlens.store.main;
    const first = { settings: main.settings, width: main.final.width, height: main.final.height, rgb: rgb(main.final.rgba) };
    const drawn = document.getElementById("image");
    const canvas = drawn.getContext("2d").getImageData(0, 0, drawn.width, drawn.height).data;
    const generated = await window.sdlens.generate(request);
    const second = { settings: generated.settings, width: generated.width, height: generated.height, rgb: rgb(generated.rgba) };
    return { first, second, canvasMatches: rgb(canvas) === first.rgb, backend: window.sdlens.backend, userAgent: navigator.userAgent,
      boot: window.sdlens.debug.boot };
  }, JSON.parse(generateJson));
  console.log(JSON.stringify({ ...result, errors }));
} finally {
  await browser.close();
}
