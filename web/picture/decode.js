// A picture the learner gives (a file, a drop, a paste, a data URL) made into what img2img
// starts from: RGBA bytes at the model's size. Another size or shape is centre-cropped to the
// model's aspect ratio, then resized; transparent parts are put on white. Anything that is not a
// decodable picture gets a message in the learner's words (PictureError), and nothing else changes.

export class PictureError extends Error {}

// Far above any photo, far below what would exhaust the tab: the picture is never held at full
// size (the browser decodes it straight into the crop at the model's size), but a decoder still
// needs its header to be sane.
const MAX_PIXELS = 20000 * 20000;

/** What the first bytes say the file is: "png", "jpeg", "gif", "webp", "bmp", or null. */
export function sniff(bytes) {
  const at = (i, ...values) => values.every((v, k) => bytes[i + k] === v);
  if (at(0, 0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a)) return "png";
  if (at(0, 0xff, 0xd8, 0xff)) return "jpeg";
  if (at(0, 0x47, 0x49, 0x46, 0x38)) return "gif";
  if (at(0, 0x52, 0x49, 0x46, 0x46) && at(8, 0x57, 0x45, 0x42, 0x50)) return "webp";
  if (at(0, 0x42, 0x4d)) return "bmp";
  return null;
}

/** The size (and, for a JPEG, the number of colour channels) the header declares, or null. */
export function headerSize(bytes, kind) {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  try {
    if (kind === "png") return { width: view.getUint32(16), height: view.getUint32(20) };
    if (kind === "gif") return { width: view.getUint16(6, true), height: view.getUint16(8, true) };
    if (kind === "bmp") return { width: view.getInt32(18, true), height: Math.abs(view.getInt32(22, true)) };
    if (kind === "jpeg") {
      // Walk the markers to the frame header (SOF0…SOF15, not DHT/JPG/DAC).
      let i = 2;
      while (i + 9 < bytes.length) {
        if (bytes[i] !== 0xff) return null;
        const marker = bytes[i + 1];
        const length = view.getUint16(i + 2);
        if (marker >= 0xc0 && marker <= 0xcf && ![0xc4, 0xc8, 0xcc].includes(marker)) {
          return { height: view.getUint16(i + 5), width: view.getUint16(i + 7), channels: bytes[i + 9] };
        }
        i += 2 + length;
      }
    }
  } catch {
    return null; // cut short
  }
  return null;
}

/** Python's round(): halves go to the even neighbour (the CLI computes the crop with it). */
const roundHalfEven = (x) => (Math.abs(x % 1) === 0.5 ? 2 * Math.round(x / 2) : Math.round(x));

/** Where to cut: the largest centred rectangle of the model's aspect ratio (the CLI's rule,
 * sdlens/cpython/images.py load_init_image). */
export function centreCrop(width, height, targetWidth, targetHeight) {
  if (width * targetHeight > height * targetWidth) {
    const w = roundHalfEven((height * targetWidth) / targetHeight);
    return { x: Math.floor((width - w) / 2), y: 0, width: w, height };
  }
  const h = roundHalfEven((width * targetHeight) / targetWidth);
  return { x: 0, y: Math.floor((height - h) / 2), width, height: h };
}

/** One line on what was done to the picture ("640×480 → centre-cropped and resized to 64×64"). */
export function describe(width, height, crop, target, transparent) {
  const size = `${width}×${height}`;
  const to = `${target.width}×${target.height}`;
  let line;
  if (width === target.width && height === target.height) line = `${size}, the model's size: used as it is.`;
  else if (crop.width === width && crop.height === height) line = `${size} → resized to ${to}.`;
  else line = `${size} → centre-cropped and resized to ${to}.`;
  return transparent ? `${line} Its transparent parts were put on white.` : line;
}

/**
 * A Blob or File → {width, height, rgba, note}, at target {width, height}. Throws PictureError
 * with a message for the learner.
 */
export async function decodePicture(blob, target, name = "") {
  const called = name ? `"${name}"` : "This file";
  if (!blob || blob.size === 0) throw new PictureError(`${called} is empty (0 bytes): there is no picture in it.`);
  const bytes = new Uint8Array(await blob.slice(0, 65536).arrayBuffer());
  const kind = sniff(bytes);
  if (!kind) {
    throw new PictureError(`${called} is not a picture this page can read (a PNG, JPEG, GIF, WebP or BMP file).`);
  }
  const header = headerSize(bytes, kind);
  if (header && (header.width < 1 || header.height < 1)) {
    throw new PictureError(`${called} says it is ${header.width}×${header.height} pixels: it has no picture in it.`);
  }
  if (header && header.width * header.height > MAX_PIXELS) {
    throw new PictureError(`${called} is ${header.width}×${header.height} pixels, too large to open here; ` +
      "scale it below 20000×20000 first.");
  }
  // The browser reads the size (after any EXIF rotation) without decoding the pixels.
  const size = await naturalSize(blob, called, kind, header);
  const crop = centreCrop(size.width, size.height, target.width, target.height);
  let bitmap;
  try {
    // Cropped and resized while decoding: an 8000×8000 picture never exists at full size here.
    bitmap = await createImageBitmap(blob, crop.x, crop.y, crop.width, crop.height, {
      resizeWidth: target.width, resizeHeight: target.height, resizeQuality: "high",
      premultiplyAlpha: "none", colorSpaceConversion: "none",
    });
  } catch {
    throw new PictureError(unreadable(called, kind, header));
  }
  const { rgba, transparent } = onWhite(bitmapPixels(bitmap));
  bitmap.close();
  return { width: target.width, height: target.height, rgba, note: describe(size.width, size.height, crop, target, transparent) };
}

function unreadable(called, kind, header) {
  if (kind === "jpeg" && header?.channels === 4) {
    return `${called} is a CMYK JPEG, which this browser cannot decode; save it as an RGB JPEG or a PNG and try again.`;
  }
  return `${called} looks like a ${kind.toUpperCase()} file but could not be decoded: it may be damaged or cut short.`;
}

/** The size as the decoder sees it (a JPEG's EXIF rotation can swap the header's width and height).
 * An <img>'s load event comes once the file is read; Chrome decodes the pixels only when drawn. */
function naturalSize(blob, called, kind, header) {
  const url = URL.createObjectURL(blob);
  const image = new Image();
  return new Promise((resolve, reject) => {
    image.onload = () => resolve({ width: image.naturalWidth, height: image.naturalHeight });
    image.onerror = () => reject(new PictureError(unreadable(called, kind, header)));
    image.src = url;
  }).finally(() => URL.revokeObjectURL(url));
}

function bitmapPixels(bitmap) {
  const canvas = document.createElement("canvas");
  canvas.width = bitmap.width;
  canvas.height = bitmap.height;
  const context = canvas.getContext("2d", { willReadFrequently: true });
  context.drawImage(bitmap, 0, 0);
  return context.getImageData(0, 0, bitmap.width, bitmap.height).data;
}

/** Transparent pixels over white (the model only knows opaque pictures). */
export function onWhite(data) {
  const rgba = new Uint8ClampedArray(data.length);
  let transparent = false;
  for (let i = 0; i < data.length; i += 4) {
    const a = data[i + 3];
    if (a < 255) transparent = true;
    for (let c = 0; c < 3; c++) rgba[i + c] = Math.round((data[i + c] * a + 255 * (255 - a)) / 255);
    rgba[i + 3] = 255;
  }
  return { rgba, transparent };
}

/**
 * What `window.sdlens.generate({init_image})` accepts, made into {width, height, rgba} at the
 * model's size: a data URL (PNG or JPEG), or {width, height, rgba} (any size; RGBA8 bytes).
 */
export async function toInitImage(value, target) {
  if (typeof value === "string") {
    if (!/^data:image\/[a-z+.-]+(;[^,]*)?,/i.test(value)) {
      throw new PictureError("init_image must be a data URL of a picture (data:image/png;base64,… or data:image/jpeg;…) or {width, height, rgba}");
    }
    const blob = await (await fetch(value)).blob();
    const { width, height, rgba } = await decodePicture(blob, target, "init_image");
    return { width, height, rgba };
  }
  const { width, height, rgba } = value || {};
  if (!Number.isInteger(width) || !Number.isInteger(height) || width < 1 || height < 1 || !rgba || rgba.length !== width * height * 4) {
    throw new PictureError("init_image as an object needs integer width and height and rgba with width × height × 4 bytes");
  }
  const bytes = Uint8ClampedArray.from(rgba);
  // At the model's size the bytes go as they are: the Python composites any transparency on white
  // (and reports it), as it does for the CLI.
  if (width === target.width && height === target.height) return { width, height, rgba: bytes };
  const bitmap = await createImageBitmap(new ImageData(bytes, width, height));
  const canvas = document.createElement("canvas");
  [canvas.width, canvas.height] = [width, height];
  canvas.getContext("2d").drawImage(bitmap, 0, 0);
  const blob = await new Promise((resolve) => canvas.toBlob(resolve, "image/png"));
  const picture = await decodePicture(blob, target, "init_image");
  return { width: picture.width, height: picture.height, rgba: picture.rgba };
}
