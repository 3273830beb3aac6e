// web/runtime/model_files.js when the browser will not store a file for a reason other than its quota
// (Chromium's private windows fail a large Cache.put with "Unexpected internal error"): the
// verified bytes are used from memory, and the result names what was not kept. Run by
// tests/test_backend_rules.py: node --test tests/web/
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { test } from "node:test";

const files = { "unet/model.onnx": new Uint8Array([1, 2, 3, 4, 5]), "tokenizer.json.gz": new Uint8Array([9, 8, 7]) };
const entries = Object.entries(files).map(([path, bytes]) => ({ path, bytes: bytes.length, sha256: createHash("sha256").update(bytes).digest("hex") }));
const base = "http://class.test/models/m/";

function browser({ putError }) {
  const stored = new Map();
  globalThis.caches = {
    open: async () => ({
      match: async (url) => stored.get(url),
      put: async (url, response) => {
        if (putError && url.endsWith("model.onnx")) throw putError;
        stored.set(url, response);
      },
    }),
  };
  globalThis.fetch = async (url) => new Response(files[url.slice(base.length)]);
  // Room enough by the estimate: what follows is the browser's own refusal.
  Object.defineProperty(globalThis, "navigator", { configurable: true, value: {
    storage: { estimate: async () => ({ quota: 1e9, usage: 0 }), persist: async () => true } } });
  return stored;
}

test("a refused put keeps the file in memory for its session and says so", async () => {
  const stored = browser({ putError: new TypeError("Failed to execute 'put' on 'Cache': Unexpected internal error.") });
  const { ensureCached, readCached } = await import("../../web/runtime/model_files.js");
  const result = await ensureCached(base, entries);
  assert.equal(result.downloaded, 2);
  assert.deepEqual(result.notKept.map((f) => [f.path, f.bytes]), [["unet/model.onnx", 5]]);
  assert.match(result.notKept[0].reason, /Unexpected internal error/);
  assert.equal(stored.size, 1); // the tokenizer was kept
  assert.deepEqual(await readCached(base, entries[0]), files["unet/model.onnx"]); // from memory, verified
  assert.deepEqual(await readCached(base, entries[1]), files["tokenizer.json.gz"]); // from the cache
  // Used once, then dropped: the page holds no second copy, and a later read says to reload.
  await assert.rejects(readCached(base, entries[0]), /no longer in the browser's cache; reload/);
});

test("a full quota is still an error that says so", async () => {
  const quota = new DOMException("quota", "QuotaExceededError");
  browser({ putError: quota });
  const { ensureCached } = await import("../../web/runtime/model_files.js");
  await assert.rejects(ensureCached(base, entries), /more of browser storage, but the browser refused to store more/);
});
