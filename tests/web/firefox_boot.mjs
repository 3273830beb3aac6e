// Firefox ESR opens the page (no link, headless, WebDriver BiDi) and reports how its Python booted
// and when each start-up part ended: one JSON line {boot, startup, errors}. Used by
// `python -m tests.bench browser --firefox` (tests/bench.py):
//   node tests/web/firefox_boot.mjs URL [reload]
import puppeteer from "puppeteer-core";

const [url, reload] = process.argv.slice(2);
const executablePath = process.env.SDLENS_FIREFOX || "/usr/bin/firefox-esr";

const browser = await puppeteer.launch({ browser: "firefox", executablePath, headless: true, protocolTimeout: 600_000 });
try {
  const page = await browser.newPage();
  const errors = [];
  page.on("pageerror", (err) => errors.push(String(err?.message || err)));
  const visit = async (open) => {
    const opened = Date.now();
    await open();
    await page.waitForFunction("window.sdlens?.startup?.firstImage", { timeout: 600_000, polling: 50 });
    const outer = (Date.now() - opened) / 1000;
    return { outer_s: outer, ...(await page.evaluate("({boot: window.sdlens.debug?.boot, startup: window.sdlens.startup, " +
      "run_ms: window.sdlens.store.main.timings?.wall_ms})")) };
  };
  const first = await visit(() => page.goto(`${url}/?backend=wasm`));
  const again = reload ? await visit(() => page.reload()) : null;
  console.log(JSON.stringify({ first, reload: again, errors }));
} finally {
  await browser.close();
}
