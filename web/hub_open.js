// "Open a model from the Hub": a repo id typed in (or one of the repos sdlens knows, by name),
// then what it is before anything downloads: its name, size, licence, the backend it needs and
// whether this browser has it. A download over 100 MB waits for the button; a smaller one (or a
// model already in this browser's cache) opens at once. Models opened before stay in the model
// menu, in this browser (localStorage), and their pinned link (?model=hub:OWNER/REPO@COMMIT)
// opens them again, offline too once their files are cached (runtime/hub.js).

import { formatBytes } from "./progress.js";
import { HubIdError, hubModelId, parseHubId } from "./runtime/hub_id.js";

const OPENED = "sdlens-hub-opened";
const KEPT = 12; // models remembered in the menu

/** The Hub models opened in this browser before: [{id, name, hub: {repo, revision, endpoint}}]. */
export function openedHubModels() {
  try {
    const kept = JSON.parse(localStorage.getItem(OPENED) || "[]");
    return Array.isArray(kept) ? kept.filter((m) => m?.id && m.hub?.repo) : [];
  } catch {
    return [];
  }
}

function remember(model) {
  const kept = [model, ...openedHubModels().filter((m) => m.id !== model.id)].slice(0, KEPT);
  try {
    localStorage.setItem(OPENED, JSON.stringify(kept));
  } catch {
    // (a private window may refuse: the model opens all the same, it is just not listed next time)
  }
}

function element(tag, text, className) {
  const el = document.createElement(tag);
  if (text !== undefined) el.textContent = text;
  if (className) el.className = className;
  return el;
}

/** The summary as a definition list: what a teacher checks before a gigabyte download. */
function summaryList(look, endpoint) {
  const { summary, runs, commit } = look;
  const list = element("dl", undefined, "hub-facts");
  const add = (term, ...details) => {
    list.append(element("dt", term));
    const dd = element("dd");
    dd.append(...details);
    list.append(dd);
  };
  const page = element("a", `${summary.repo} at ${commit.slice(0, 12)}`);
  page.href = `${endpoint}/${summary.repo}/tree/${commit}`;
  page.target = "_blank";
  page.rel = "noopener";
  add("Model", `${summary.title} (`, page, ")");
  const now = runs.ok ? (look.toFetch ? `, ${formatBytes(look.toFetch)} to download now` : ", all of it in this browser's cache already") : "";
  add("Size", `${formatBytes(summary.bytes)} in all${now}`);
  add("Licence", summary.licence ? `${summary.licence} (from ${summary.licence_from})`
    : "not stated in the repo's model card: read the repo's page before using the model");
  add("Precision", `${summary.precision || "not known before download"}${summary.precision ? ` (from ${summary.precision_from})` : ""}`);
  add("Needs", summary.needs);
  add("This browser", runs.ok ? `runs it: ${runs.label}` : "cannot run it (below)");
  return list;
}

/**
 * Mount the panel in `root` (index.html's #hub-open). `hub` is api/hub.json ({endpoint, known});
 * `look(hub)` asks the worker what a repo is (runtime/worker.js hubLook); `open(model)` loads it
 * as the current model. Returns {look(text)}: the same as pressing "Look it up" on that text; it
 * settles when the model is open, and fails (after saying why in the panel) when it cannot be.
 */
export function mountHubOpen(root, { hub, look, open }) {
  const field = root.querySelector("#hub-repo");
  const lookButton = root.querySelector("#hub-look");
  const known = root.querySelector("#hub-known");
  const result = root.querySelector("#hub-result");
  const message = root.querySelector("#hub-message");
  let asked = 0; // the newest look-up: an older one that answers late is dropped

  const say = (text, kind = "error") => {
    message.textContent = text;
    message.className = `hub-message ${kind}`;
    message.hidden = !text;
  };
  const fail = (text) => {
    say(text);
    throw new Error(text);
  };

  async function lookUp(text) {
    const mine = ++asked;
    result.replaceChildren();
    say("");
    let id;
    try {
      id = parseHubId(text);
    } catch (err) {
      if (!(err instanceof HubIdError)) throw err;
      fail(err.message);
    }
    root.open = true;
    field.value = hubModelId(id.repo, id.revision).slice(4);
    say(`Looking up ${id.repo} on ${new URL(hub.endpoint).host}…`, "info");
    lookButton.disabled = true;
    let answer;
    try {
      answer = await look({ ...id, endpoint: hub.endpoint });
    } catch (err) {
      if (mine === asked) fail(err.message);
      throw err;
    } finally {
      if (mine === asked) lookButton.disabled = false;
    }
    if (mine !== asked) return null;
    say("");
    const facts = summaryList(answer, hub.endpoint);
    result.append(facts);
    if (!answer.runs.ok) fail(answer.runs.message);
    const model = {
      id: hubModelId(answer.repo, answer.commit), name: answer.summary.title,
      hub: { repo: answer.repo, revision: answer.commit, endpoint: hub.endpoint },
    };
    const start = () => {
      remember(model);
      say(`Opening ${answer.summary.title}: the progress line under the picture follows the download.`, "info");
      return open(model).then(() => {
        say("");
        facts.replaceWith(summaryList({ ...answer, toFetch: 0 }, hub.endpoint)); // (downloaded now)
      }, (err) => fail(err.message));
    };
    if (answer.toFetch <= answer.summary.confirm_bytes) return start();
    const button = element("button", `Download ${formatBytes(answer.toFetch)} and open`);
    button.type = "button";
    button.id = "hub-download";
    const waiting = new Promise((resolve, reject) => button.addEventListener("click", () => {
      button.disabled = true;
      start().then(resolve, reject);
    }, { once: true }));
    result.append(button);
    say(`${formatBytes(answer.toFetch)} is a large download: it starts when you press the button, and stays in this ` +
      "browser's cache for later visits.", "info");
    button.focus();
    return waiting;
  }

  for (const repo of hub.known) {
    const pick = element("button", repo.title, "hub-pick");
    pick.type = "button";
    pick.title = `${repo.repo}: ${repo.licence}; ${repo.precision}`;
    pick.addEventListener("click", () => lookUp(repo.repo).catch(() => {})); // (the panel says why)
    known.append(pick);
  }
  lookButton.addEventListener("click", () => lookUp(field.value).catch(() => {}));
  // Enter in the field looks the repo up (it sits inside the settings form, whose Enter is Generate).
  field.addEventListener("keydown", (event) => {
    if (event.key !== "Enter") return;
    event.preventDefault();
    event.stopPropagation();
    lookUp(field.value).catch(() => {});
  });
  return {
    look: lookUp,
    focus() {
      root.open = true;
      field.focus();
    },
  };
}
