// The Hub's side of the page's runtime that needs no browser: repo ids as people type them
// (web/runtime/hub_id.js), git's blob ids (git_blob_id.js, against node's own SHA-1), and files
// checked by blob id or kept at a URL of their own (model_files.js). Run by
// tests/test_backend_rules.py: node --test tests/web/
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { test } from "node:test";

import { gitBlobId, sha1HexPortable } from "../../web/runtime/git_blob_id.js";
import { HubIdError, isOpenModel, parseHubId } from "../../web/runtime/hub_id.js";
import { ensureCached, ModelFileError, readCached } from "../../web/runtime/model_files.js";
import { tooLarge } from "../../web/runtime/hub.js";

test("repo ids are read as people write them, and a typo is told at once", () => {
  assert.deepEqual(parseHubId("schmuell/sd-turbo-ort-web"), { repo: "schmuell/sd-turbo-ort-web", revision: null });
  assert.deepEqual(parseHubId(" hub:microsoft/stable-diffusion-v1.5-webnn@abc "), { repo: "microsoft/stable-diffusion-v1.5-webnn", revision: "abc" });
  assert.deepEqual(parseHubId("https://huggingface.co/schmuell/sd-turbo-ort-web"), { repo: "schmuell/sd-turbo-ort-web", revision: null });
  assert.deepEqual(parseHubId("https://huggingface.co/a/b/tree/v2"), { repo: "a/b", revision: "v2" });
  for (const bad of ["sd-turbo", "a/b/c", "a/b@", "-a/b", "a--b/c", "a/b@c@d", "a b/c"]) {
    assert.throws(() => parseHubId(bad), (err) => err instanceof HubIdError && err.message.includes("is not a Hub repo id"), bad);
  }
  assert.throws(() => parseHubId("  "), /Type a Hub repo id/);
});

test("a link without a revision names the model open at its commit", () => {
  assert.ok(isOpenModel("hub:a/b", "hub:a/b@0123"));
  assert.ok(isOpenModel("tiny-random", "tiny-random"));
  assert.ok(!isOpenModel("hub:a/b@0123", "hub:a/b@4567"));
  assert.ok(!isOpenModel("hub:a/b", "hub:a/bc@0123"));
});

test("git blob ids equal git's, with and without crypto.subtle", async () => {
  for (const n of [0, 1, 55, 56, 63, 64, 65, 119, 120, 1000, 70_001]) {
    const bytes = new Uint8Array(n).map((_, i) => (i * 2654435761) >>> 24);
    const expected = createHash("sha1").update(`blob ${n}\0`).update(bytes).digest("hex");
    assert.equal(await gitBlobId(bytes), expected, `${n} bytes`);
    const blob = Buffer.concat([Buffer.from(`blob ${n}\0`), Buffer.from(bytes)]);
    assert.equal(sha1HexPortable(new Uint8Array(blob)), expected, `${n} bytes, portable`);
  }
});

const base = "http://hub.test/o/r/resolve/0123/";
function browser(files) {
  const stored = new Map();
  globalThis.caches = { open: async () => ({ match: async (url) => stored.get(url), put: async (url, r) => void stored.set(url, r) }) };
  globalThis.fetch = async (url) => (url in files ? new Response(files[url]) : new Response("", { status: 404 }));
  Object.defineProperty(globalThis, "navigator", { configurable: true, value: {
    storage: { estimate: async () => ({ quota: 1e9, usage: 0 }), persist: async () => true } } });
  return stored;
}
const oid = (bytes) => createHash("sha1").update(`blob ${bytes.length}\0`).update(bytes).digest("hex");
const origin = { listing: "the Hub's listing of o/r", remedy: "reload the page to download it again" };

test("a small Hub file is checked by its git blob id, and one kept elsewhere by its own URL", async () => {
  const config = new TextEncoder().encode('{"sample_size": 8}');
  const vocab = new TextEncoder().encode('{"a": 0}');
  const elsewhere = "http://hub.test/other/repo/resolve/4567/tokenizer/vocab.json";
  const stored = browser({ [base + "unet/config.json"]: config, [elsewhere]: vocab });
  const entries = [{ path: "unet/config.json", bytes: config.length, sha256: null, git_oid: oid(config) },
    { path: "tokenizer/vocab.json", bytes: vocab.length, git_oid: oid(vocab), url: elsewhere }];
  const result = await ensureCached(base, entries, () => {}, origin);
  assert.equal(result.downloaded, 2);
  assert.ok(stored.has(elsewhere) && stored.has(base + "unet/config.json"));
  assert.deepEqual(await readCached(base, entries[1]), vocab);
  // A second visit knows them by their ids, without downloading.
  assert.equal((await ensureCached(base, entries, () => {}, origin)).fromCache, 2);
});

test("a file whose blob id differs is named with the listing it was checked against, and not kept", async () => {
  const config = new TextEncoder().encode('{"sample_size": 8}');
  const stored = browser({ [base + "unet/config.json"]: config });
  const entries = [{ path: "unet/config.json", bytes: config.length, git_oid: "0".repeat(40) }];
  await assert.rejects(ensureCached(base, entries, () => {}, origin), (err) => err instanceof ModelFileError &&
    err.message.includes("unet/config.json failed its checksum (its git blob id differs from the Hub's listing of o/r)") &&
    err.message.includes("reload the page"));
  assert.equal(stored.size, 0);
});

test("a model too large for a browser is refused before its download, naming the file", () => {
  const summary = { repo: "o/r", bytes: 3 * 1024 ** 3, too_big: [{ path: "unet/model.onnx", bytes: 3 * 1024 ** 3 }], over_memory: false };
  assert.match(tooLarge(summary), /unet\/model\.onnx is 3\.00 GiB, and a browser holds at most 2 GiB in one file/);
  assert.match(tooLarge({ ...summary, too_big: [], bytes: 5 * 1024 ** 3, over_memory: true }), /5\.00 GiB in all, more than the 4 GiB/);
  assert.equal(tooLarge({ ...summary, too_big: [], over_memory: false }), null);
});
