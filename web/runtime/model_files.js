// Model files: streamed into Cache Storage, each checked against the manifest's sha256 as it lands.
//
// A full-size model is several GB, so no step may hold all of it: the export splits large weights
// into files of at most 512 MiB (the manifest lists each with its bytes and sha256), and here each
// file is downloaded, hashed (crypto.subtle takes one buffer, which it can at this size) and put in
// the cache before the next one starts. Sessions later read one graph's files back from the cache
// and drop them once onnxruntime has them.
//
// A verified file is stored with its sha256 in a header, so a later visit (or a retry after a
// broken download) knows it without hashing gigabytes again, and a stale copy (a file whose
// manifest entry changed) is never taken for the current one. A Hub repo's small files have no
// sha256 in the Hub's listing, only git's blob id, and are checked against that (git_blob_id.js).
// Only whole, verified files enter the cache: a download that breaks off, or a reload in the
// middle, resumes at the first file the cache does not hold.

import { gitBlobId } from "./git_blob_id.js";
import { sha256HexPortable } from "./sha256.js";
import { hasStorage, openStore } from "./storage.js";

const CACHE = "sdlens-models-v1";
// Without Cache Storage (plain http from another machine) verified files wait here instead, each
// only until its session has taken it (readCached), and are downloaded again on the next visit.
const held = new Map(); // url → bytes
const SHA_HEADER = "X-Sdlens-Sha256";
const BYTES_HEADER = "X-Sdlens-Bytes";

export class ModelFileError extends Error {}
/** The server or the network went away: a reload resumes. */
class NetworkError extends ModelFileError {}

export async function sha256Hex(bytes) {
  if (!crypto.subtle) return sha256HexPortable(bytes); // plain http: no crypto.subtle
  const digest = await crypto.subtle.digest("SHA-256", bytes);
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, "0")).join("");
}

export const formatBytes = (n) =>
  n >= 1 << 30 ? `${(n / (1 << 30)).toFixed(2)} GiB` : n >= 1 << 20 ? `${(n / (1 << 20)).toFixed(1)} MiB` : `${(n / 1024).toFixed(0)} KiB`;

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

/** Where an entry is: its own `url` (a file kept in another repo), else its path under baseUrl. */
const fileUrl = (baseUrl, entry) => entry.url || new URL(entry.path, baseUrl).href;
/** What a cached copy is known by: its sha256, or (a Hub repo's small file) its git blob id. */
const checksum = (entry) => entry.sha256 || (entry.git_oid ? `git-blob:${entry.git_oid}` : null);

const isCurrent = (response, entry) =>
  response && response.headers.get(SHA_HEADER) === checksum(entry) && Number(response.headers.get(BYTES_HEADER)) === entry.bytes;

/** Whether `bytes` are the file the entry lists. */
async function matches(bytes, entry) {
  if (entry.sha256) return (await sha256Hex(bytes)) === entry.sha256;
  if (entry.git_oid) return (await gitBlobId(bytes)) === entry.git_oid;
  throw new ModelFileError(`${entry.path} has no checksum in its listing, so it cannot be checked`);
}

/** What the words of a failed check name: the listing files are checked against, and the remedy. */
const LOCAL = { listing: "manifest.json", remedy: "re-export or re-copy the model" };

/** One file from the network into memory, checking its size as it streams. */
async function download(url, entry, onBytes, origin) {
  let response;
  try {
    response = await fetch(url, { cache: "no-store" });
  } catch {
    throw new NetworkError(`Cannot download model file ${entry.path}: the server is not reachable`);
  }
  if (!response.ok) throw new ModelFileError(`Cannot download model file ${entry.path}: HTTP ${response.status} from ${new URL(url).host}`);
  const bytes = new Uint8Array(entry.bytes);
  const reader = response.body.getReader();
  let received = 0;
  for (;;) {
    let chunk;
    try {
      chunk = await reader.read();
    } catch {
      throw new NetworkError(
        `The download of ${entry.path} broke off at ${formatBytes(received)} of ${formatBytes(entry.bytes)} ` +
          "(the server or the network went away)",
      );
    }
    if (chunk.done) break;
    if (received + chunk.value.length > bytes.length) {
      reader.cancel().catch(() => {});
      throw new ModelFileError(`Model file ${entry.path} is larger than ${origin.listing} says (${entry.bytes} bytes): ` +
        `corrupted; ${origin.remedy}`);
    }
    bytes.set(chunk.value, received);
    received += chunk.value.length;
    onBytes(received);
  }
  if (received !== entry.bytes) {
    throw new ModelFileError(
      `Model file ${entry.path} is ${received} bytes, ${origin.listing} says ${entry.bytes}: truncated or corrupted; ` +
        origin.remedy,
    );
  }
  return bytes;
}

async function freeStorage() {
  if (!navigator.storage?.estimate) return null;
  const { quota, usage } = await navigator.storage.estimate();
  return quota === undefined ? null : Math.max(0, quota - (usage || 0));
}

function quotaError(need, free) {
  // `free` comes from navigator.storage.estimate(); when the browser refuses a write anyway, the
  // estimate was wrong, so only the refusal is reported.
  const room = free === null ? "the browser refused to store more for this site (its storage quota is full)"
    : `only ${formatBytes(free)} is free for this site`;
  return new ModelFileError(
    `This model needs ${formatBytes(need)} more of browser storage, but ${room}. ` +
      "Free some (site settings → storage, or a browser profile with more disk) or pick a smaller model, then reload: " +
      "what is downloaded already is kept.",
  );
}

/** The entries the cache does not hold verified yet. */
async function notCached(cache, baseUrl, entries) {
  const missing = [];
  for (const entry of entries) if (!isCurrent(await cache.match(fileUrl(baseUrl, entry)), entry)) missing.push(entry);
  return missing;
}

/** How many bytes of `entries` are not in the cache yet (what opening them would download). */
export async function bytesToFetch(baseUrl, entries) {
  return (await notCached(await openStore(CACHE), baseUrl, entries)).reduce((sum, e) => sum + e.bytes, 0);
}

/**
 * Make sure every manifest entry {path, bytes, sha256} (relative to baseUrl) is in the cache,
 * verified. Files already there are kept; the rest are downloaded one at a time. onProgress gets
 * {file, received, size, source: "cache" | "network", totalReceived, total, resumed}, where
 * `resumed` counts the files a previous, unfinished download left verified in the cache.
 * Returns {downloaded, fromCache, notKept}: `notKept` lists the files the browser refused to store
 * for a reason other than its quota (they are used from memory this once, and downloaded again on
 * the next visit). `origin` names the listing the files are checked against in messages, and the
 * remedy: {listing: "manifest.json", remedy: "re-export or re-copy the model"} unless told.
 */
export async function ensureCached(baseUrl, entries, onProgress = () => {}, origin = LOCAL) {
  const cache = await openStore(CACHE);
  const total = entries.reduce((sum, e) => sum + e.bytes, 0);
  const missing = await notCached(cache, baseUrl, entries);
  const have = total - missing.reduce((sum, e) => sum + e.bytes, 0);
  const resumed = missing.length && missing.length < entries.length ? entries.length - missing.length : 0;
  onProgress({ file: null, received: 0, size: 0, source: "cache", totalReceived: have, total, resumed, missing: missing.length });
  if (!missing.length) return { downloaded: 0, fromCache: entries.length, notKept: [] };
  const need = missing.reduce((sum, e) => sum + e.bytes, 0);
  const free = hasStorage() ? await freeStorage() : null;
  if (free !== null && need > free) throw quotaError(need, free);
  navigator.storage?.persist?.().catch(() => {}); // a multi-GB cache should not be evicted silently
  let done = have;
  let saved = entries.length - missing.length;
  const notKept = []; // files the browser would not store: {path, bytes, reason}
  for (const entry of missing) {
    const url = fileUrl(baseUrl, entry);
    let bytes;
    try {
      bytes = await download(url, entry, (received) =>
        onProgress({ file: entry.path, received, size: entry.bytes, source: "network", totalReceived: done + received, total, resumed }),
      origin);
    } catch (err) {
      if (err instanceof NetworkError) {
        err.message += `. ${saved} of ${entries.length} files are saved; reload the page to resume from there.`;
      }
      throw err;
    }
    if (!(await matches(bytes, entry))) {
      const which = entry.sha256 ? "sha256" : "git blob id";
      throw new ModelFileError(`Model file ${entry.path} failed its checksum (its ${which} differs from ${origin.listing}): ` +
        `it is corrupted; ${origin.remedy}`);
    }
    const headers = { "Content-Type": "application/octet-stream", [BYTES_HEADER]: String(entry.bytes), [SHA_HEADER]: checksum(entry) };
    if (!hasStorage()) held.set(url, bytes);
    try {
      await cache.put(url, new Response(bytes, { headers }));
      saved += 1;
    } catch (err) {
      if (err?.name === "QuotaExceededError") throw quotaError(need - (done - have), null);
      // Any other refusal (Chromium's private windows keep Cache Storage in a small in-memory
      // store and fail a big put with "Unexpected internal error"): the verified bytes wait in
      // memory for their session, as without Cache Storage, and the page says they are not kept.
      held.set(url, bytes);
      notKept.push({ path: entry.path, bytes: entry.bytes, reason: err?.message || String(err) });
    }
    done += entry.bytes;
  }
  return { downloaded: missing.length, fromCache: entries.length - missing.length, notKept };
}

/** The bytes of one entry that ensureCached stored. The caller should drop them once used. */
export async function readCached(baseUrl, entry) {
  const url = fileUrl(baseUrl, entry);
  if (held.has(url)) {
    const bytes = held.get(url);
    held.delete(url);
    return bytes;
  }
  const cache = await openStore(CACHE);
  const response = await cache.match(url);
  if (!isCurrent(response, entry)) {
    throw new ModelFileError(`Model file ${entry.path} is no longer in the browser's cache; reload the page`);
  }
  const bytes = new Uint8Array(await response.arrayBuffer());
  if (bytes.length !== entry.bytes) throw new ModelFileError(`Model file ${entry.path} in the browser's cache is damaged; reload the page`);
  return bytes;
}
