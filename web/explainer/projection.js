// PCA to two dimensions, by hand: no maintained PCA ships as a plain ES module we could vendor
// without a bundler, and the job is small. The points are few (n ≤ ~200 steps) but long (a latent
// has d = 4·64·64 numbers), so we work with the n×n Gram matrix of the centred points instead of
// the d×d covariance: if X = U S Vᵀ (X centred), then X Xᵀ = U S² Uᵀ and the projections X V = U S.
// The Gram matrix is diagonalised by the cyclic Jacobi method: slower than power iteration, but
// exact to machine precision even when the top eigenvalues are close.

/**
 * Project vectors (arrays or Float32Arrays of equal length) onto their first two principal axes.
 * Returns {points: [[x, y], …] in input order, variance: [λ1, λ2] (sums of squares along each axis),
 * total: the total sum of squares}. Signs are fixed so that each axis's largest-magnitude
 * projection is positive, which keeps a drawing from flipping as points are added.
 */
export function pca2(vectors) {
  return pca2FromGram(gramMatrix(vectors));
}

/**
 * The same from the Gram matrix of the raw (uncentred) points. A live view adds one point per
 * step: caching the dot products (gramMatrix's `dot`) makes each redraw cost n dot products
 * instead of n²/2.
 */
export function pca2FromGram(gram) {
  const n = gram.length;
  if (n === 0) return { points: [], variance: [0, 0], total: 0 };
  const centred = doubleCentre(gram);
  const total = centred.reduce((sum, row, i) => sum + row[i], 0);
  const { values, vectors: eig } = jacobiEigen(centred);
  const order = values.map((v, i) => i).sort((a, b) => values[b] - values[a]);
  const axes = [0, 1].map((k) => {
    if (k >= n) return { scale: 0, u: new Float64Array(n), lambda: 0 };
    const j = order[k];
    const lambda = Math.max(0, values[j]); // rounding can make a zero eigenvalue slightly negative
    const u = Float64Array.from({ length: n }, (_, i) => eig[i][j]);
    return { scale: Math.sqrt(lambda), u: fixSign(u), lambda };
  });
  const points = Array.from({ length: n }, (_, i) => axes.map((a) => a.u[i] * a.scale));
  return { points, variance: axes.map((a) => a.lambda), total };
}

export function dot(a, b) {
  if (a.length !== b.length) throw new Error(`pca2: vectors of different lengths (${a.length} vs ${b.length})`);
  let sum = 0;
  for (let k = 0; k < a.length; k++) sum += a[k] * b[k];
  return sum;
}

/** G[i][j] = xᵢ·xⱼ (symmetric, so each pair is computed once). */
export function gramMatrix(vectors, dotProduct = dot) {
  const n = vectors.length;
  const g = Array.from({ length: n }, () => new Float64Array(n));
  for (let i = 0; i < n; i++) {
    for (let j = i; j < n; j++) g[i][j] = g[j][i] = dotProduct(vectors[i], vectors[j]);
  }
  return g;
}

/**
 * The Gram matrix of the centred points, from the raw one: (xᵢ−m)·(xⱼ−m) = Gᵢⱼ − rᵢ/n − rⱼ/n + s/n²
 * with r the row sums and s their sum. Centring this way needs no second pass over the vectors.
 */
function doubleCentre(g) {
  const n = g.length;
  const rows = g.map((row) => row.reduce((a, b) => a + b, 0) / n);
  const all = rows.reduce((a, b) => a + b, 0) / n;
  return g.map((row, i) => Float64Array.from(row, (x, j) => x - rows[i] - rows[j] + all));
}

/**
 * Eigen-decomposition of a symmetric matrix by cyclic Jacobi rotations: each rotation zeroes one
 * off-diagonal pair; sweeps repeat until the off-diagonal part is negligible. Returns the
 * eigenvalues and the eigenvectors as the columns of `vectors`.
 */
export function jacobiEigen(matrix, maxSweeps = 100) {
  const n = matrix.length;
  const a = matrix.map((row) => Float64Array.from(row));
  const v = Array.from({ length: n }, (_, i) => Float64Array.from({ length: n }, (_, j) => (i === j ? 1 : 0)));
  const scale = a.reduce((s, row) => s + row.reduce((t, x) => t + x * x, 0), 0);
  for (let sweep = 0; sweep < maxSweeps; sweep++) {
    let off = 0;
    for (let p = 0; p < n; p++) for (let q = p + 1; q < n; q++) off += a[p][q] * a[p][q];
    if (off <= 1e-30 * scale || off === 0) break;
    for (let p = 0; p < n - 1; p++) {
      for (let q = p + 1; q < n; q++) {
        if (a[p][q] !== 0) rotate(a, v, p, q);
      }
    }
  }
  return { values: a.map((row, i) => row[i]), vectors: v };
}

/** One Jacobi rotation in the (p, q) plane that makes a[p][q] zero (Golub & Van Loan, 8.5.2). */
function rotate(a, v, p, q) {
  const n = a.length;
  const theta = (a[q][q] - a[p][p]) / (2 * a[p][q]);
  // The smaller of the two roots keeps the rotation angle ≤ π/4, which is what makes it stable.
  const t = Math.sign(theta || 1) / (Math.abs(theta) + Math.sqrt(theta * theta + 1));
  const c = 1 / Math.sqrt(t * t + 1);
  const s = t * c;
  for (let k = 0; k < n; k++) {
    // A ← A J (columns p and q) …
    const akp = a[k][p];
    const akq = a[k][q];
    a[k][p] = c * akp - s * akq;
    a[k][q] = s * akp + c * akq;
  }
  for (let k = 0; k < n; k++) {
    // … then A ← Jᵀ A (rows p and q).
    const apk = a[p][k];
    const aqk = a[q][k];
    a[p][k] = c * apk - s * aqk;
    a[q][k] = s * apk + c * aqk;
  }
  a[p][q] = a[q][p] = 0;
  for (let k = 0; k < n; k++) {
    const vkp = v[k][p];
    const vkq = v[k][q];
    v[k][p] = c * vkp - s * vkq;
    v[k][q] = s * vkp + c * vkq;
  }
}

function fixSign(u) {
  let big = 0;
  for (let i = 0; i < u.length; i++) if (Math.abs(u[i]) > Math.abs(u[big])) big = i;
  return u[big] < 0 ? u.map((x) => -x) : u;
}
