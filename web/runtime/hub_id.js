// A Hub model's name as people write it (OWNER/REPO, maybe @REVISION) and as the page links it
// (?model=hub:OWNER/REPO@COMMIT). Used by the page (the field, the link) and the worker alike.

// The Hub's own rule for repo names: letters, digits, "-", "_", "."; no "--" or ".." and not
// starting or ending with "-" or ".". Checked here so a typo is told at once, not after a 404.
const PART = /^(?![.-])(?!.*(--|\.\.))[\w.-]{1,96}(?<![.-])$/;

export class HubIdError extends Error {}

/** "OWNER/REPO" or "OWNER/REPO@REVISION" (a "hub:" prefix and a huggingface.co URL are taken too)
 * → {repo, revision}, revision null for the default branch. */
export function parseHubId(text) {
  let value = String(text || "").trim().replace(/^hub:/, "");
  value = value.replace(/^https?:\/\/(www\.)?huggingface\.co\//, "").replace(/\/tree\/([^/]+)\/?$/, "@$1").replace(/\/$/, "");
  const [name, revision = null, ...rest] = value.split("@");
  const parts = name.split("/");
  if (!value) throw new HubIdError("Type a Hub repo id, such as schmuell/sd-turbo-ort-web.");
  if (rest.length || parts.length !== 2 || !parts.every((p) => PART.test(p)) || revision === "") {
    throw new HubIdError(`"${text}" is not a Hub repo id: write OWNER/REPO (for example schmuell/sd-turbo-ort-web), ` +
      "and @REVISION after it for a branch, tag or commit.");
  }
  return { repo: name, revision };
}

/** The page's model id (and link) of a repo at a revision. */
export const hubModelId = (repo, revision) => `hub:${repo}${revision ? `@${revision}` : ""}`;

export const isHubModelId = (id) => String(id || "").startsWith("hub:");

/** Whether model `id` (a link's) is the open model `open`: the same id, or a Hub id without a
 * revision whose open model is pinned to a commit. */
export const isOpenModel = (id, open) => id === open || (isHubModelId(id) && !id.includes("@") && String(open).startsWith(`${id}@`));
