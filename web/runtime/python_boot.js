// How Pyodide boots, fastest first: from a memory snapshot of a Python that has already imported
// py/sdlens (about 1.7 s in Chromium against 6–8 s), else with the standard library precompiled
// to .pyc (about half the plain boot), else plainly from Pyodide's own files. The snapshot and the
// .pyc zip are build products (`python -m sdlens snapshot`, py/sdlens/serving/boot_files.py) that
// built/boot.json describes; each is used only where it matches what this page runs, and every
// step down the ladder says why in the boot record (window.sdlens.debug.boot).
//
// The snapshot holds the wasm heap only, so the file system is rebuilt around it: the same .pyc
// zip it was made with (byte for byte: its directory's offsets are in the heap) and py/sdlens's
// files (written again, because the code editor reads them through inspect.getsource).

import { sha256Hex } from "./model_files.js";

export const PY_ROOT = "/home/pyodide/";
export const BOOT_JSON = "built/boot.json";

/** Which family of browser this is: a snapshot records the JSPI support of the engine it was made in. */
export function browserFamily() {
  const brands = self.navigator?.userAgentData?.brands?.map((b) => b.brand) ?? [];
  if (brands.includes("Chromium")) return "chromium";
  const ua = self.navigator?.userAgent ?? "";
  if (/Firefox\//.test(ua)) return "firefox";
  if (/Chrome\//.test(ua)) return "chromium";
  return /Safari\//.test(ua) ? "safari" : "other";
}

/** The sha256 that keys a snapshot to py/sdlens: over each file's name, size and bytes, in
 * api/python.json's order (boot_files.sources_sha256 computes the same in CPython). */
export async function sourcesSha256(sources) {
  const encoder = new TextEncoder();
  const parts = sources.flatMap(([file, bytes]) => [encoder.encode(`${file}\n${bytes.length}\n`), bytes]);
  const all = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const part of parts) {
    all.set(part, at);
    at += part.length;
  }
  return sha256Hex(all);
}

/** Fetched bytes checked against a boot.json entry {path, bytes, sha256}; a clear error otherwise. */
async function checkedBytes(appUrl, entry, what) {
  const response = await fetch(appUrl(entry.path));
  if (!response.ok) throw new Error(`${what} ${entry.path}: HTTP ${response.status}`);
  const bytes = new Uint8Array(await response.arrayBuffer());
  // A host that adds Content-Encoding: gzip of its own hands over the file as stored, so the
  // size and hash checked are those of the file itself.
  if (bytes.length !== entry.bytes) throw new Error(`${what} ${entry.path} is ${bytes.length} bytes, not ${entry.bytes} (truncated?)`);
  if ((await sha256Hex(bytes)) !== entry.sha256) throw new Error(`${what} ${entry.path} does not match its sha256 (corrupt?)`);
  return bytes;
}

/** The snapshot's heap: stored gzipped (6 MB, not 30), unpacked here, so no host needs to
 * compress it, and a wrong Content-Type changes nothing (the bytes are read as bytes). */
async function snapshotHeap(appUrl, entry) {
  const packed = await checkedBytes(appUrl, entry, "snapshot");
  const stream = new Blob([packed]).stream().pipeThrough(new DecompressionStream("gzip"));
  const heap = new Uint8Array(await new Response(stream).arrayBuffer());
  if (heap.length !== entry.heap_bytes) throw new Error(`snapshot heap is ${heap.length} bytes, not ${entry.heap_bytes}`);
  return heap;
}

async function readBootJson(appUrl) {
  try {
    const response = await fetch(appUrl(BOOT_JSON), { cache: "no-cache" });
    if (!response.ok) return { error: `no built boot files (${BOOT_JSON}: HTTP ${response.status}; run python -m sdlens snapshot)` };
    return { value: await response.json() };
  } catch (err) {
    return { error: `${BOOT_JSON} unreadable: ${err.message}` };
  }
}

/** The snapshot for this browser family: one made in it, else one known to restore in it
 * (`restores_in`: a heap made in headless Chromium restores in Firefox ESR 153, run_sync included). */
function snapshotFor(built, family) {
  const snapshots = built.snapshots ?? {};
  return snapshots[family] ?? Object.values(snapshots).find((s) => s.restores_in?.includes(family));
}

/** Why this page may not restore the snapshot boot.json offers, or null where it may. */
function snapshotRefusal(built, family, version, sourcesHash) {
  const snapshot = snapshotFor(built, family);
  if (!snapshot) return `no snapshot for this browser family (${family}); made in: ${Object.keys(built.snapshots ?? {}).join(", ") || "none"}`;
  if (built.pyodide !== version) return `the snapshot is of Pyodide ${built.pyodide}, this page runs ${version}`;
  if (snapshot.sources_sha256 !== sourcesHash) return "the snapshot was made from other py/sdlens sources than these";
  if (snapshot.stdlib_sha256 !== built.stdlib?.sha256) return "the snapshot was made with another standard library zip";
  return null;
}

/**
 * A booted Pyodide with py/sdlens importable and imported, and the record of how it booted:
 * {mode: "snapshot" | "pyc" | "plain", family, reasons: [why each faster way was not taken], ms}.
 * `sources` is a promise of [[file, bytes]] (api/python.json's files).
 */
export async function bootPython(appUrl, sources) {
  const started = performance.now();
  const indexURL = appUrl("vendor/pyodide/");
  const [{ loadPyodide, version }, bootJson, files] = await Promise.all([
    import(appUrl("vendor/pyodide/pyodide.mjs")), readBootJson(appUrl), sources]);
  const family = browserFamily();
  const reasons = [];
  const built = bootJson.value;
  if (bootJson.error) reasons.push(bootJson.error);
  let stdlib = null; // the .pyc zip's URL, once checked, for the snapshot and the .pyc boot
  if (built?.stdlib) {
    try {
      // Checked here, then fetched again by Pyodide from the HTTP cache (a blob: URL would be a
      // second origin, and the page asks nothing of any origin but its own).
      await checkedBytes(appUrl, built.stdlib, "standard library");
      stdlib = appUrl(built.stdlib.path);
    } catch (err) {
      reasons.push(err.message);
    }
  }
  const attempts = [];
  if (built && stdlib) {
    const refusal = snapshotRefusal(built, family, version, await sourcesSha256(files));
    if (refusal) reasons.push(refusal);
    else attempts.push(["snapshot", () => ({ stdLibURL: stdlib, _loadSnapshot: snapshotHeap(appUrl, snapshotFor(built, family)) })]);
  }
  if (stdlib) attempts.push(["pyc", () => ({ stdLibURL: stdlib })]);
  attempts.push(["plain", () => ({})]);
  for (const [mode, options] of attempts) {
    try {
      const pyodide = await loadPyodide({ indexURL, ...options() });
      writeSources(pyodide, files);
      if (mode === "snapshot") {
        // The heap came back with random's state and everything imported frozen at build time.
        pyodide.runPython("import random; random.seed()");
      } else {
        importSdlens(pyodide);
      }
      return { pyodide, boot: { mode, family, reasons, ms: performance.now() - started } };
    } catch (err) {
      if (mode === "plain") throw err;
      reasons.push(`the ${mode} boot failed: ${String(err?.message || err).split("\n")[0]}`);
    }
  }
}

/** py/sdlens into Pyodide's file system (under PY_ROOT). */
export function writeSources(pyodide, files) {
  for (const [file, bytes] of files) {
    const path = PY_ROOT + file;
    pyodide.FS.mkdirTree(path.slice(0, path.lastIndexOf("/")));
    pyodide.FS.writeFile(path, bytes);
  }
}

/** What every boot imports before the page may use Python (and what a snapshot holds imported). */
export function importSdlens(pyodide) {
  pyodide.runPython(`import sys\nif "${PY_ROOT}" not in sys.path: sys.path.insert(0, "${PY_ROOT}")`);
  pyodide.runPython("import sdlens.browser.session, sdlens.browser.preview, sdlens.browser.forward");
}

/** api/python.json's files as [[file, bytes]], fetched in parallel. */
export async function fetchSources(appUrl, files) {
  return Promise.all(files.map(async (file) => {
    const response = await fetch(appUrl(`py/${file}`));
    if (!response.ok) throw new Error(`py/${file}: HTTP ${response.status}`);
    return [file, new Uint8Array(await response.arrayBuffer())];
  }));
}
