// Opening a model from the Hugging Face Hub, in the worker: the Hub's listing, the configs, a
// plan to show before any download, and the manifest once the graphs are open.
//
// What a repo's files mean is read by the same Python that `sdlens fetch` runs (py/sdlens/hub,
// through py/sdlens/browser/hub.py): this module only talks to the Hub. The files are fetched
// from `{endpoint}/{repo}/resolve/{commit}/…` (large ones are redirected to the Hub's CDN, which
// sends CORS headers too) into Cache Storage by model_files.js, checked against the sizes,
// sha256s and git blob ids of the Hub's own listing. The Hub's answers are kept as well, so a
// later visit opens a repo it opened before without the network.

import { ensureCached, ModelFileError, readCached } from "./model_files.js";
import { openStore } from "./storage.js";

const ANSWERS = "sdlens-hub-v1"; // the Hub's JSON answers (model info, file listings), for visits offline

/** Which command fetches a repo the page cannot open itself (private, gated). */
const fetchCommand = (repo) => `HF_TOKEN=hf_… python -m sdlens fetch ${repo} --out models/${repo.split("/")[1]}`;

/** The Hub's refusal in a user's words, naming the repo. */
async function refusal(response, repo, revision, endpoint) {
  const code = response.headers.get("X-Error-Code") || "";
  const host = new URL(endpoint).host;
  if (response.status === 403 || code === "GatedRepo") {
    return new ModelFileError(`${repo} is gated: its licence must be accepted on the Hub, and the page cannot send a token. ` +
      `Accept it on ${host}, then fetch it on the command line with a token (${fetchCommand(repo)}) and open it from ` +
      "that laptop's serve.py --models models.");
  }
  if (code === "RevisionNotFound") return new ModelFileError(`${repo} has no revision "${revision}" on ${host}.`);
  if (response.status === 401) {
    return new ModelFileError(`${repo} was not found on ${host}, or it is private. Check the spelling; a private repo ` +
      `can be fetched with a token on the command line (${fetchCommand(repo)}) and opened from serve.py --models models.`);
  }
  if (response.status === 404) return new ModelFileError(`${repo}: no such model repo on ${host}. Check the spelling.`);
  return new ModelFileError(`${host} answered HTTP ${response.status} for ${repo}${code ? ` (${code})` : ""}; try again later.`);
}

/** One of the Hub's JSON answers (a Response): from the network, else (offline) as it was the last time. */
async function hubAnswer(url, { repo, revision, endpoint }) {
  const answers = await openStore(ANSWERS);
  let response;
  try {
    response = await fetch(url, { cache: "no-cache" });
  } catch {
    const kept = await answers.match(url);
    if (kept) return kept;
    throw new ModelFileError(`Cannot reach the Hub (${new URL(endpoint).host}) to look up ${repo}, ` +
      "and this browser has not opened it before. Check the connection, or ask for the model on the class laptop.");
  }
  if (!response.ok) throw await refusal(response, repo, revision, endpoint);
  await answers.put(url, response.clone()).catch(() => {}); // (a private window may keep nothing)
  return response;
}

const hubJson = async (url, where) => (await hubAnswer(url, where)).json();

/** Every entry of a repo's tree (under `folder`), following the Hub's pages: it lists 1,000 files a
 * page and names the next in a Link header (rel="next"). */
async function hubTree(where, commit, folder = "") {
  const { endpoint, repo } = where;
  let url = `${endpoint}/api/models/${repo}/tree/${commit}${folder ? `/${folder}` : ""}?recursive=true`;
  const entries = [];
  while (url) {
    const response = await hubAnswer(url, where);
    const page = await response.json();
    if (!Array.isArray(page)) throw new ModelFileError(`${repo}: the Hub's file listing is not a list; is ${endpoint} a Hub?`);
    entries.push(...page);
    url = /<([^>]+)>;\s*rel="next"/.exec(response.headers.get("Link") || "")?.[1] || null;
  }
  return entries;
}

const resolveBase = (endpoint, repo, commit) => `${endpoint}/${repo}/resolve/${commit}/`;

/**
 * Look a repo up: its commit, what it is (Python reads the layout, the configs and the sizes) and
 * where its files are. `python` is py/sdlens/browser/hub.py. Nothing large is downloaded: only
 * the configs, which the summary needs (model size, precision). Returns {repo, commit, endpoint,
 * tree, configs, card, summary, manifest (the skeleton: files and backends), base, origin}.
 */
export async function lookUp({ repo, revision, endpoint }, python) {
  const where = { repo, revision: revision || "main", endpoint };
  const info = await hubJson(`${endpoint}/api/models/${repo}/revision/${encodeURIComponent(where.revision)}`, where);
  const commit = info.sha;
  if (!/^[0-9a-f]{40}$/.test(commit || "")) throw new ModelFileError(`${repo}: the Hub's answer names no commit; is ${endpoint} a Hub?`);
  const tree = await hubTree(where, commit);
  const read = JSON.parse(python.layout(repo, JSON.stringify(tree)));
  const base = resolveBase(endpoint, repo, commit);
  const origin = { listing: `the Hub's listing of ${repo}`, remedy: "reload the page to download it again" };
  const byPath = new Map(read.files.map((f) => [f.path, f]));
  const configPaths = { ...read.layout.configs, ...(read.layout.tokenizer.config ? { tokenizer: read.layout.tokenizer.config } : {}) };
  const entries = Object.values(configPaths).map((path) => byPath.get(path));
  await ensureCached(base, entries, () => {}, origin);
  const configs = {};
  for (const [key, path] of Object.entries(configPaths)) {
    const text = new TextDecoder().decode(await readCached(base, byPath.get(path)));
    try {
      configs[key] = JSON.parse(text);
    } catch {
      throw new ModelFileError(`${repo}: ${path} is not valid JSON`);
    }
  }
  const card = info.cardData || {};
  const { summary, skeleton } = JSON.parse(python.plan(repo, commit, JSON.stringify(tree), JSON.stringify(configs), JSON.stringify(card)));
  let tokenizer = null;
  if (read.tokenizer_from) tokenizer = await tokenizerElsewhere(read.tokenizer_from, endpoint, python);
  if (tokenizer) skeleton.tokenizer = { files: tokenizer };
  return { repo, commit, endpoint, tree, configs, card, summary, manifest: skeleton, tokenizer, base, origin };
}

/** A tokenizer kept in another repo (the WebNN export has none of its own): its files, each with
 * its own URL there. */
async function tokenizerElsewhere({ repo, folder }, endpoint, python) {
  const where = { repo, revision: "main", endpoint };
  const info = await hubJson(`${endpoint}/api/models/${repo}/revision/main`, where);
  const tree = await hubTree(where, info.sha, folder);
  const files = JSON.parse(python.tokenizer(repo, JSON.stringify(tree), folder));
  const base = resolveBase(endpoint, repo, info.sha);
  for (const entry of Object.values(files)) {
    entry.url = new URL(entry.source, base).href;
    delete entry.source;
  }
  return files;
}

/** Why a summary's model cannot be opened in a browser at all (too large), or null. */
export function tooLarge(summary) {
  const gib = (n) => `${(n / 1024 ** 3).toFixed(2)} GiB`;
  if (summary.too_big.length) {
    const [first] = summary.too_big;
    return `${summary.repo} cannot run in a browser: ${first.path} is ${gib(first.bytes)}, and a browser holds at most ` +
      "2 GiB in one file (one ArrayBuffer). Nothing was downloaded.";
  }
  if (summary.over_memory) {
    return `${summary.repo} cannot run in a browser: its graphs are ${gib(summary.bytes)} in all, more than the 4 GiB ` +
      "that onnxruntime-web's wasm32 memory holds. Nothing was downloaded.";
  }
  return null;
}

/** A graph's inputs and outputs as onnxruntime reports them → {name, dtype, shape} as the
 * manifest lists them (a symbolic dimension by its name, an unknown one as null). */
export function graphIo(session) {
  const value = (m) => ({
    name: m.name,
    dtype: m.type,
    shape: (m.shape || []).map((d) => (typeof d === "number" && d > 0 ? d : typeof d === "string" && d ? d : null)),
  });
  return { inputs: session.inputMetadata.filter((m) => m.isTensor).map(value), outputs: session.outputMetadata.filter((m) => m.isTensor).map(value) };
}

/** The whole manifest, from the plan and each component's opened session. */
export function manifestOf(plan, sessions, python) {
  const precision = plan.summary.precision || "fp32";
  const graphs = Object.fromEntries(Object.entries(sessions).map(([component, session]) => [component, { ...graphIo(session), precision }]));
  return JSON.parse(python.manifest(plan.repo, plan.commit, JSON.stringify(plan.tree), JSON.stringify(plan.configs),
    JSON.stringify(graphs), JSON.stringify(plan.tokenizer), plan.endpoint, JSON.stringify(plan.card)));
}
