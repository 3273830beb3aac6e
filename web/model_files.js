// Model files: fetched with progress, checked against the manifest's sha256, kept in Cache Storage.
//
// A second visit reads them from the cache (checked again: a cache can hold a stale copy), so the
// app still works with the server stopped. A file failing its checksum is never used.

import { sha256HexPortable } from "./sha256.js";
import { openStore } from "./storage.js";

const CACHE = "sdlens-models-v1";

export class ModelFileError extends Error {}

export async function sha256Hex(bytes) {
  if (!crypto.subtle) return sha256HexPortable(bytes); // plain http: no crypto.subtle
  const digest = await crypto.subtle.digest("SHA-256", bytes);
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, "0")).join("");
}

/** JSON from the network, or from the cache when the server cannot be reached. */
export async function fetchJson(url) {
  const cache = await openStore(CACHE);
  try {
    const response = await fetch(url, { cache: "no-cache" });
    if (!response.ok) throw new ModelFileError(`${url}: HTTP ${response.status}`);
    await cache.put(url, response.clone());
    return await response.json();
  } catch (err) {
    const cached = await cache.match(url);
    if (cached) return cached.json();
    throw err instanceof ModelFileError ? err : new ModelFileError(`cannot reach the server for ${url}`);
  }
}

async function download(url, entry, onProgress) {
  let response;
  try {
    response = await fetch(url, { cache: "no-store" });
  } catch {
    throw new ModelFileError(`cannot download model file ${entry.path}: the server is not reachable`);
  }
  if (!response.ok) throw new ModelFileError(`cannot download model file ${entry.path}: HTTP ${response.status}`);
  const bytes = new Uint8Array(entry.bytes);
  const reader = response.body.getReader();
  let received = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    if (received + value.length > bytes.length) {
      throw new ModelFileError(`model file ${entry.path} is larger than its manifest says (corrupted?)`);
    }
    bytes.set(value, received);
    received += value.length;
    onProgress(received, entry.bytes, "network");
  }
  if (received !== entry.bytes) {
    throw new ModelFileError(`model file ${entry.path} is ${received} bytes, its manifest says ${entry.bytes}`);
  }
  return bytes;
}

/** The verified bytes of one manifest file entry {path, bytes, sha256}, relative to baseUrl. */
export async function openModelFile(baseUrl, entry, onProgress = () => {}) {
  const url = new URL(entry.path, baseUrl).href;
  const cache = await openStore(CACHE);
  const cached = await cache.match(url);
  if (cached) {
    const bytes = new Uint8Array(await cached.arrayBuffer());
    if (bytes.length === entry.bytes && (await sha256Hex(bytes)) === entry.sha256) {
      onProgress(entry.bytes, entry.bytes, "cache");
      return bytes;
    }
    await cache.delete(url);
  }
  const bytes = await download(url, entry, onProgress);
  if ((await sha256Hex(bytes)) !== entry.sha256) {
    throw new ModelFileError(
      `model file ${entry.path} failed its checksum (sha256 differs from manifest.json): it is corrupted; ` +
        "re-export or re-copy the model",
    );
  }
  await cache.put(url, new Response(bytes, { headers: { "Content-Type": "application/octet-stream" } }));
  return bytes;
}
