// Where downloaded files are kept: Cache Storage when the page has it, else nowhere.
//
// Cache Storage exists only in a secure context (https, or localhost). Opened over plain http
// from another machine the app still runs: files are then fetched again on each visit.

const NO_STORAGE = {
  match: async () => undefined,
  put: async () => {},
  delete: async () => false,
};

export const hasStorage = () => typeof caches !== "undefined";

/** A Cache by name, or a stand-in that keeps nothing when Cache Storage is missing. */
export async function openStore(name) {
  return hasStorage() ? caches.open(name) : NO_STORAGE;
}
