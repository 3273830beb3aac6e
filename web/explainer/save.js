// Save the main run: the final image as PNG, and the denoising as a short WebM (each step's
// predicted clean image, then the result), both made in the browser from what the store holds.

const FPS = 6;
const MIN_VIDEO_SIZE = 256; // small models make tiny images; scale them up (pixelated) to be watchable

/** A file name from the prompt: "a red circle!" → "a-red-circle"; a picture the fast decoder
 * (TAESD) drew says so in its name, as it does on the page. */
export function fileStem(settings, decoder = "vae") {
  const words = String(settings?.prompt || "").toLowerCase().replace(/[^a-z0-9]+/g, "-").replace(/^-+|-+$/g, "");
  const stem = words.slice(0, 60).replace(/-+$/, "") || "sdlens";
  const seeded = settings?.seed !== undefined && settings.seed !== "" ? `${stem}-seed${settings.seed}` : stem;
  return decoder === "fast" ? `${seeded}-fast-decoder` : seeded;
}

export function mountSave(container, store) {
  if (!container || container.dataset.mounted) return;
  container.dataset.mounted = "save";
  container.classList.add("save-controls");
  const png = button("save-png", "Save image (PNG)");
  const webm = button("save-webm", "Save animation (WebM)");
  const message = document.createElement("span");
  message.className = "field-message";
  message.setAttribute("role", "status");
  container.append(png, webm, message);

  const update = () => {
    const run = store.main;
    png.disabled = !run?.final;
    webm.disabled = !run?.final || !run.steps.length || typeof MediaRecorder === "undefined";
  };
  for (const type of ["run", "finish"]) store.addEventListener(type, update);
  update();

  png.addEventListener("click", async () => {
    const run = store.main;
    const blob = await canvasBlob(imageCanvas(run.final, 1), "image/png");
    download(blob, `${fileStem(run.settings, run.decoder)}.png`);
  });
  webm.addEventListener("click", async () => {
    const run = store.main;
    webm.disabled = true;
    message.textContent = "Recording…";
    try {
      download(await recordAnimation(run), `${fileStem(run.settings, run.decoder)}.webm`);
      message.textContent = "";
    } catch (err) {
      message.textContent = `Could not record: ${err.message}`;
    } finally {
      update();
    }
  });
}

function button(id, text) {
  const b = document.createElement("button");
  b.type = "button";
  b.id = id;
  b.textContent = text;
  b.disabled = true;
  return b;
}

/** An image on a canvas `scale` times its size, without smoothing (crisp pixels). */
function imageCanvas({ width, height, rgba }, scale) {
  const source = document.createElement("canvas");
  source.width = width;
  source.height = height;
  source.getContext("2d").putImageData(new ImageData(new Uint8ClampedArray(rgba), width, height), 0, 0);
  if (scale === 1) return source;
  const canvas = document.createElement("canvas");
  canvas.width = width * scale;
  canvas.height = height * scale;
  const context = canvas.getContext("2d");
  context.imageSmoothingEnabled = false;
  context.drawImage(source, 0, 0, canvas.width, canvas.height);
  return canvas;
}

const canvasBlob = (canvas, type) =>
  new Promise((resolve, reject) => canvas.toBlob((blob) => (blob ? resolve(blob) : reject(new Error("empty image"))), type));

function download(blob, name) {
  const url = URL.createObjectURL(blob);
  const link = document.createElement("a");
  link.href = url;
  link.download = name;
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 60_000); // the download needs the URL a little longer
}

/** Draw each step's preview, then the final image, onto a recorded canvas at FPS frames a second. */
export async function recordAnimation(run) {
  const final = run.final;
  const size = Math.max(final.width, final.height);
  const scale = Math.max(1, Math.ceil(MIN_VIDEO_SIZE / size));
  const canvas = document.createElement("canvas");
  canvas.width = final.width * scale;
  canvas.height = final.height * scale;
  const context = canvas.getContext("2d");
  context.imageSmoothingEnabled = false;
  const stream = canvas.captureStream(0); // frames only when we ask: exact timing per step
  const [track] = stream.getVideoTracks();
  const type = ["video/webm;codecs=vp9", "video/webm;codecs=vp8", "video/webm"].find((t) => MediaRecorder.isTypeSupported(t));
  if (!type) throw new Error("this browser cannot record WebM");
  const recorder = new MediaRecorder(stream, { mimeType: type });
  const chunks = [];
  recorder.ondataavailable = (event) => event.data.size && chunks.push(event.data);
  const stopped = new Promise((resolve) => (recorder.onstop = resolve));
  const frames = [...run.steps.map((s) => s.preview), final, final, final]; // hold the result a moment
  recorder.start();
  for (const image of frames) {
    // Previews may be smaller than the final image (latent size): stretch them to fill the frame.
    context.drawImage(imageCanvas(image, 1), 0, 0, canvas.width, canvas.height);
    track.requestFrame();
    await new Promise((resolve) => setTimeout(resolve, 1000 / FPS));
  }
  recorder.stop();
  await stopped;
  track.stop();
  return new Blob(chunks, { type: "video/webm" });
}
