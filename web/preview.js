// A quick picture of a latent, for the per-step strip: a linear map from the latent channels to
// RGB (fitted at export and stored in the manifest as latent_rgb), no VAE decode needed.

export function previewImage(latent, manifest, width) {
  const channels = manifest.latent_channels;
  const size = latent.length / channels;
  const height = size / width;
  const map = manifest.latent_rgb; // {weights: [[r,g,b] per channel], bias: [r,g,b]}
  const rgba = new Uint8ClampedArray(size * 4);
  for (let p = 0; p < size; p++) {
    for (let k = 0; k < 3; k++) {
      let v;
      if (map) {
        v = map.bias[k];
        for (let c = 0; c < channels; c++) v += map.weights[c][k] * latent[c * size + p];
      } else {
        v = 0.5 + 0.25 * latent[Math.min(k, channels - 1) * size + p]; // no fitted map: channels as colours
      }
      rgba[p * 4 + k] = v * 255;
    }
    rgba[p * 4 + 3] = 255;
  }
  return { width, height, rgba };
}
