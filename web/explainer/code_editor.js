// Change the algorithm: the real Python of the guidance function and of the chosen scheduler's
// `step`, as the worker's Pyodide has it, in an editor (CodeMirror 6). Run generates the same seed
// twice, A with the standard code and B with the edit, and Compare's views show both. Errors come
// back with their line (marked in the editor); the page and the next normal run are unaffected.
// Runs with edited code are marked "modified code" wherever they appear, and never go into links.

import { fileStem } from "./save.js";

const PARTS = { guidance: "Guidance", step: "Scheduler step" };
const TIME_LIMIT_S = 5;
const esc = (text) => String(text).replace(/[&<>"]/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;" })[c]);

/** The article's sentence about a run with modified code, or "" (article.js quotes it). */
export function modifiedCodeNote(store) {
  const run = store.runs.get("compare");
  if (!run?.final || !run.modifiedCode?.length) return "";
  return `<p class="modified-note"><span class="badge modified">modified code</span> Run B below was made with
    your own ${run.modifiedCode.map((p) => (p === "step" ? `${esc(run.settings.scheduler)} step` : "guidance")).join(" and ")}
    code, not the standard algorithm; everything above describes the standard run A.</p>`;
}

const LABEL_CODE_CHARS = 36; // of the changed line, in Compare's captions and legend

/** Where an edit differs from the original, for telling runs apart in Compare:
 * "line 3 `return eps_uncond + 3 * (eps_cond - eps_uncond)`" (the first changed line). */
export function changedLine(original, edited) {
  const a = original.split("\n");
  const b = edited.split("\n");
  let first = 0;
  while (first < a.length && first < b.length && a[first] === b[first]) first++;
  let tail = 0; // lines equal at the end, after the change
  while (tail < a.length - first && tail < b.length - first && a[a.length - 1 - tail] === b[b.length - 1 - tail]) tail++;
  const changed = b.length - tail - first; // edited lines first+1 … first+changed
  if (changed <= 0) return first ? `lines deleted after line ${first}` : "lines deleted at the top";
  const text = b[first].trim();
  const before = (a[first] ?? "").trim();
  let at = 0; // show the line from a little before its first changed character
  while (at < text.length && text[at] === before[at]) at++;
  const start = text.length <= LABEL_CODE_CHARS || at + 12 <= LABEL_CODE_CHARS ? 0
    : Math.max(0, Math.min(at - 12, text.length - LABEL_CODE_CHARS));
  const shown = (start > 0 ? "…" : "") + text.slice(start, start + LABEL_CODE_CHARS) + (start + LABEL_CODE_CHARS < text.length ? "…" : "");
  const lines = changed > 1 ? `lines ${first + 1}–${first + changed}` : `line ${first + 1}`;
  return `${lines} \`${shown}\``;
}

export function mountCodeEditor(container, store) {
  if (!container || container.dataset.mounted) return;
  container.dataset.mounted = "code";
  container.classList.add("code-editor");
  container.innerHTML = `
    <h2>Change the algorithm <span class="badge modified" id="code-badge" hidden>modified code</span></h2>
    <p class="hint">This is the real Python that runs in this page (in the worker's Pyodide). Edit it and press
      Run: the same seed is generated with the standard code (A) and with yours (B), compared below.
      Tensors can be added, subtracted and multiplied or divided by numbers, as in the formula
      <code>eps_uncond + g * (eps_cond - eps_uncond)</code>: each such expression runs as one linear
      combination. Try guidance that returns only <code>eps_cond</code>, or a step that skips the noise re-injection.</p>
    <div class="code-tabs" role="tablist">
      <button type="button" role="tab" data-part="guidance" aria-selected="true">Guidance</button>
      <button type="button" role="tab" data-part="step" aria-selected="false">Scheduler step</button>
    </div>
    <div class="code-host" aria-label="Python source"></div>
    <div class="code-buttons">
      <button type="button" id="code-run">Run A and B</button>
      <button type="button" id="code-stop" disabled>Stop</button>
      <button type="button" id="code-reset">Reset</button>
      <button type="button" id="code-save" disabled>Save B (PNG)</button>
    </div>
    <div class="code-status" id="code-status" role="status"></div>
    <pre class="code-error" id="code-error" role="alert" hidden></pre>`;
  const el = (id) => container.querySelector(`#${id}`);
  const host = container.querySelector(".code-host");
  const originals = new Map(); // "guidance" | "step:ddim" … → the worker's source text
  const texts = new Map(); // the same keys → the learner's text
  let part = "guidance";
  let view = null;
  let cm = null;
  let running = false;
  let label = null; // Compare's name for the run B being made (see the "run" listener below)
  const state = { lastError: null };

  const scheduler = () => document.getElementById("scheduler")?.value || "ddim";
  const keyOf = (p) => (p === "step" ? `step:${scheduler()}` : "guidance");
  const status = (text) => (el("code-status").textContent = text);

  async function original(p) {
    const key = keyOf(p);
    if (!originals.has(key)) originals.set(key, await window.sdlens.source(p, scheduler()));
    return originals.get(key);
  }

  /** Edited parts only: a part whose text equals the original runs the standard code. */
  async function edits() {
    const code = {};
    for (const p of Object.keys(PARTS)) {
      const key = keyOf(p);
      if (texts.has(key) && texts.get(key) !== (await original(p))) code[p] = texts.get(key);
    }
    return code;
  }

  /** Compare's name for run B: which edit made it ("modified code: guidance line 3 `…`"). */
  async function runLabel(code) {
    const parts = [];
    for (const p of Object.keys(code)) {
      const name = p === "step" ? `${scheduler()} step` : "guidance";
      parts.push(`${name} ${changedLine(await original(p), code[p])}`);
    }
    return `modified code: ${parts.join("; ")}`;
  }

  async function updateBadge() {
    el("code-badge").hidden = !Object.keys(await edits()).length;
  }

  function showError(error) {
    state.lastError = error;
    const box = el("code-error");
    box.hidden = !error;
    box.textContent = error ? error.message : "";
    if (!view || !cm) return;
    const diagnostics = [];
    if (error && error.part === part && error.line) {
      const line = view.state.doc.line(Math.min(error.line, view.state.doc.lines));
      diagnostics.push({ from: line.from, to: line.to, severity: "error", message: error.message });
      view.dispatch({ selection: { anchor: line.from }, scrollIntoView: true });
    }
    view.dispatch(cm.lint.setDiagnostics(view.state, diagnostics));
  }

  async function show(p) {
    part = p;
    for (const tab of container.querySelectorAll(".code-tabs button")) {
      tab.setAttribute("aria-selected", String(tab.dataset.part === p));
      if (tab.dataset.part === "step") tab.textContent = `Scheduler step (${scheduler()})`;
    }
    const key = keyOf(p);
    const text = texts.get(key) ?? (await original(p));
    view.setState(cm.state.EditorState.create({ doc: text, extensions: extensions() }));
    if (state.lastError) showError(state.lastError);
  }

  function extensions() {
    return [cm.codemirror.basicSetup, cm.python.python(), cm.lint.lintGutter(),
      cm.view.EditorView.updateListener.of((update) => {
        if (!update.docChanged) return;
        texts.set(keyOf(part), update.state.doc.toString());
        updateBadge();
      })];
  }

  function setText(p, text) {
    texts.set(keyOf(p), text);
    if (p === part) view.dispatch({ changes: { from: 0, to: view.state.doc.length, insert: text } });
    return updateBadge();
  }

  async function reset() {
    texts.delete(keyOf(part));
    showError(null);
    await show(part);
    await updateBadge();
    status(`${PARTS[part]} reset to the standard code.`);
  }

  async function run() {
    if (running) return null;
    const code = await edits();
    if (!Object.keys(code).length) {
      status("The code is the standard one: edit it first (Reset brings the standard code back).");
      return null;
    }
    running = true;
    el("code-run").disabled = true;
    el("code-stop").disabled = false;
    showError(null);
    const settings = (await import("./compare.js")).formSettings();
    label = await runLabel(code);
    const notes = [];
    if (code.guidance && !(Number(settings.guidance) > 1)) notes.push("guidance is off (g ≤ 1), so your guidance code is not used");
    try {
      status("Running A (standard code)…");
      const a = await window.sdlens.explain(settings, "main");
      if (a.cancelled) return status("Stopped."), null;
      status("Running B (your code)…");
      const b = await window.sdlens.explainWithCode(settings, { ...code, time_limit_s: TIME_LIMIT_S }, "compare");
      if (b.cancelled) return status("Stopped. The next run works as usual."), null;
      status(`Done: A is the standard code, B yours (${Object.keys(code).join(" and ")}), compared below.` +
        (notes.length ? ` Note: ${notes.join("; ")}.` : ""));
      el("code-save").disabled = false;
      document.getElementById("compare-section")?.scrollIntoView({ behavior: "smooth", block: "start" });
      return b;
    } catch (err) {
      if (err.codeError) {
        if (err.codeError.part !== part) await show(err.codeError.part);
        showError(err.codeError);
        status("Your code stopped with an error; nothing else changed.");
      } else {
        status(`Could not run: ${err.message}`);
      }
      return null;
    } finally {
      running = false;
      label = null;
      el("code-run").disabled = false;
      el("code-stop").disabled = true;
    }
  }

  container.querySelectorAll(".code-tabs button").forEach((tab) => tab.addEventListener("click", () => show(tab.dataset.part)));
  el("code-run").addEventListener("click", run);
  el("code-reset").addEventListener("click", reset);
  el("code-stop").addEventListener("click", () => window.sdlens.interrupt());
  el("code-save").addEventListener("click", async () => {
    const b = store.runs.get("compare");
    if (!b?.final) return;
    const canvas = document.createElement("canvas");
    canvas.width = b.final.width;
    canvas.height = b.final.height;
    canvas.getContext("2d").putImageData(new ImageData(new Uint8ClampedArray(b.final.rgba), b.final.width, b.final.height), 0, 0);
    const link = document.createElement("a");
    link.download = `${fileStem(b.settings, b.decoder)}-modified-code.png`;
    link.href = canvas.toDataURL("image/png");
    link.click();
  });
  document.getElementById("scheduler")?.addEventListener("change", () => view && show(part));
  store.addEventListener("run", ({ detail }) => {
    if (detail.key !== "compare") return;
    el("code-save").disabled = true;
    const b = store.runs.get("compare");
    if (running && label && b && !b.final) b.codeLabel = label; // B just began: Compare shows this name
  });

  window.sdlens.debug = { ...(window.sdlens.debug || {}), code: { setText, run, reset, show, edits, state,
    text: () => view?.state.doc.toString(), get part() { return part; } } };

  (async () => {
    try {
      const [codemirror, python, lint, stateModule, viewModule] = await Promise.all([
        import("codemirror"), import("@codemirror/lang-python"), import("@codemirror/lint"),
        import("@codemirror/state"), import("@codemirror/view")]);
      cm = { codemirror, python, lint, state: stateModule, view: viewModule };
      view = new viewModule.EditorView({ parent: host });
      await show("guidance");
      container.dataset.ready = "true";
    } catch (err) {
      status(`The code editor could not start: ${err.message}`);
    }
  })();
}
