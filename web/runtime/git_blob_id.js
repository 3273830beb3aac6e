// The id git gives a file's contents: SHA-1 of "blob <size>\0" and the bytes. The Hub's listing
// gives it (not a sha256) for files too small for LFS (configs, the tokenizer's vocabulary), so
// that is what those files are checked against. SHA-1 in plain JavaScript (FIPS 180-4) serves
// pages without crypto.subtle (plain http); tests/test_hub_page.py proves it equal to hashlib.

const rotl = (x, n) => (x << n) | (x >>> (32 - n));

/** The SHA-1 of a Uint8Array, as 40 lowercase hex digits. */
export function sha1HexPortable(bytes) {
  const h = new Uint32Array([0x67452301, 0xefcdab89, 0x98badcfe, 0x10325476, 0xc3d2e1f0]);
  const w = new Uint32Array(80);
  // Padded as SHA-256 is (sha256.js): 0x80, zeros and the bit length, in whole 64-byte blocks.
  const padded = new Uint8Array(Math.ceil((bytes.length + 9) / 64) * 64);
  padded.set(bytes);
  padded[bytes.length] = 0x80;
  const view = new DataView(padded.buffer);
  const bits = bytes.length * 8;
  view.setUint32(padded.length - 8, Math.floor(bits / 2 ** 32));
  view.setUint32(padded.length - 4, bits >>> 0);
  for (let offset = 0; offset < padded.length; offset += 64) {
    for (let i = 0; i < 16; i++) w[i] = view.getUint32(offset + i * 4);
    for (let i = 16; i < 80; i++) w[i] = rotl(w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16], 1);
    let [a, b, c, d, e] = h;
    for (let i = 0; i < 80; i++) {
      const [f, k] = i < 20 ? [(b & c) | (~b & d), 0x5a827999] : i < 40 ? [b ^ c ^ d, 0x6ed9eba1]
        : i < 60 ? [(b & c) | (b & d) | (c & d), 0x8f1bbcdc] : [b ^ c ^ d, 0xca62c1d6];
      const t = (rotl(a, 5) + f + e + k + w[i]) | 0;
      e = d; d = c; c = rotl(b, 30); b = a; a = t;
    }
    h[0] += a; h[1] += b; h[2] += c; h[3] += d; h[4] += e;
  }
  return Array.from(h, (x) => x.toString(16).padStart(8, "0")).join("");
}

/** git's blob id of `bytes`. */
export async function gitBlobId(bytes) {
  const header = new TextEncoder().encode(`blob ${bytes.length}\0`);
  const blob = new Uint8Array(header.length + bytes.length);
  blob.set(header);
  blob.set(bytes, header.length);
  if (!crypto.subtle) return sha1HexPortable(blob);
  const digest = await crypto.subtle.digest("SHA-1", blob);
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, "0")).join("");
}
