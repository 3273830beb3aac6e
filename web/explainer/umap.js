// UMAP (McInnes et al. 2018), as the original Diffusion Explainer used for its trajectories, from
// umap-js (npm, vendored as its UMD bundle like d3). Seeded, so the same run gives the same picture.
//
// PCA (projection.js) is a rotation: distances along its two axes are true distances, but it
// shows only the two directions of largest spread. UMAP keeps which points are near neighbours in
// the full space and lets go of the distances between far-apart groups, so clusters and the
// order along a path show, while lengths and gaps between them mean little.

export const DESCRIPTIONS = {
  pca: "PCA: the two directions in which all the latents vary most; distances along them are real distances.",
  umap: "UMAP: keeps each point's nearest neighbours close; clusters and the order along a path are meaningful, lengths and far gaps are not.",
};

let loading = null;
/** The UMAP class, loading vendor/umap/umap-js.min.js with a classic script once. */
export function loadUmap() {
  if (window.UMAP?.UMAP) return Promise.resolve(window.UMAP.UMAP);
  loading ||= new Promise((resolve, reject) => {
    const script = document.createElement("script");
    script.src = "vendor/umap/umap-js.min.js";
    script.addEventListener("load", () => resolve(window.UMAP.UMAP));
    script.addEventListener("error", () => reject(new Error("could not load vendor/umap/umap-js.min.js")));
    document.head.append(script);
  });
  return loading;
}

/** A small seeded generator of uniform numbers in [0, 1) (mulberry32). */
export function seededRandom(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** 2-D UMAP of `vectors` (Float32Arrays of one length): {points: [[x, y], …]}, one per vector. */
export async function umap2(vectors, seed = 42) {
  const UMAP = await loadUmap();
  const n = vectors.length;
  if (n < 3) return { points: vectors.map((_, i) => [i, 0]), method: "umap" };
  const umap = new UMAP({ nComponents: 2, nNeighbors: Math.min(15, n - 1), minDist: 0.1, random: seededRandom(seed) });
  const points = umap.fit(vectors.map((v) => Array.from(v)));
  return { points, method: "umap" };
}
