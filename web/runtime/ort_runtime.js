// sdlens' tensor runtime on onnxruntime-web: the JavaScript half of py/sdlens/browser/runtime.py.
//
// Every tensor operation is an onnxruntime session, so on WebGPU latents and noise predictions
// stay in GPU buffers from one UNet call to the next; only what the page shows is read back.
// The small graphs for tensor math (web/runtime/ops/*.onnx) compute exactly what the CPython runtime's
// numpy code computes, in the same order.

const OPS_URL = new URL("./ops/", import.meta.url);

/** name → element type of a session's inputs (onnxruntime-web's inputMetadata). */
const declaredTypes = new WeakMap();
function inputTypes(session) {
  if (!declaredTypes.has(session)) {
    declaredTypes.set(session, new Map((session.inputMetadata || []).filter((m) => m.isTensor).map((m) => [m.name, m.type])));
  }
  return declaredTypes.get(session);
}

export class OrtRuntime {
  /**
   * @param ort        the onnxruntime-web module
   * @param backend    {ep: "webgpu" | "wasm", label: "WebGPU fp32" …}
   * @param openFile   async (path) => Uint8Array: a verified model file, by manifest path
   */
  constructor(ort, backend, openFile) {
    this.ort = ort;
    this.ep = backend.ep;
    this.backend = backend.label;
    this.openFile = openFile;
    this.ops = new Map();
    this.live = new Set(); // GPU tensors handed to Python, freed when Python drops them
    this.preloaded = new Map(); // path → session created before Python asked for it
  }

  /** Create a graph's session ahead of time (while Pyodide boots); load() hands it over once.
   * Returns it (a Hub model's manifest is read from its inputs and outputs). */
  async preload(path, externalData = []) {
    const session = await this.create(path, externalData);
    this.preloaded.set(path, session);
    return session;
  }

  sessionOptions() {
    // logSeverityLevel 3: onnxruntime reports warnings (e.g. shape ops placed on the CPU) via console.error.
    const options = { executionProviders: [this.ep], graphOptimizationLevel: "all", logSeverityLevel: 3 };
    // Keep outputs on the GPU: the next graph reads them there.
    if (this.ep === "webgpu") options.preferredOutputLocation = "gpu-buffer";
    return options;
  }

  async load(path, externalData = []) {
    const session = this.preloaded.get(path);
    this.preloaded.delete(path);
    return session || this.create(path, externalData);
  }

  async create(path, externalData = []) {
    const options = this.sessionOptions();
    const bytes = await this.openFile(path);
    if (externalData.length) {
      options.externalData = [];
      for (const extra of externalData) {
        options.externalData.push({ path: extra.split("/").pop(), data: await this.openFile(extra) });
      }
    }
    return this.ort.InferenceSession.create(bytes, options);
  }

  async op(name) {
    if (!this.ops.has(name)) {
      const bytes = new Uint8Array(await (await fetch(new URL(`${name}.onnx`, OPS_URL))).arrayBuffer());
      this.ops.set(name, await this.ort.InferenceSession.create(bytes, this.sessionOptions()));
    }
    return this.ops.get(name);
  }

  async run(session, names, tensors) {
    const feeds = {};
    const declared = inputTypes(session);
    for (const [i, name] of names.entries()) feeds[name] = await this.asType(tensors[i], declared.get(name));
    const outputs = await session.run(feeds);
    for (const [name, tensor] of Object.entries(outputs)) {
      // The pipeline's floats are float32: a float16 output (the WebNN repos) is cast on the device.
      outputs[name] = tensor.type === "float16" ? await this.castOp("cast_f32", tensor) : tensor;
      this.live.add(outputs[name]);
      if (outputs[name] !== tensor) tensor.dispose?.();
    }
    return outputs;
  }

  /** A tensor as the type its graph input declares: Hub graphs take int32 ids or float16 tensors,
   * while the pipeline makes int64 and float32 ones (as the CPython runtime casts at the door). */
  async asType(tensor, type) {
    if (!type || type === tensor.type) return tensor;
    if (type === "int32" && tensor.type === "int64") {
      return new this.ort.Tensor("int32", Int32Array.from(tensor.data, (v) => Number(v)), tensor.dims);
    }
    if (type === "float16" && tensor.type === "float32") return this.castOp("cast_f16", tensor);
    throw new Error(`a graph input takes ${type}, and sdlens has a ${tensor.type} tensor for it`);
  }

  async castOp(name, tensor) {
    return (await (await this.op(name)).run({ x: tensor })).y;
  }

  floats(values, dims) {
    return new this.ort.Tensor("float32", values, dims);
  }

  ints(values, dims) {
    return new this.ort.Tensor("int64", BigInt64Array.from(values, (v) => BigInt(v)), dims);
  }

  async combine(coefficients, tensors) {
    const session = await this.op(`combine_${tensors.length}`);
    const feeds = { coefficients: new this.ort.Tensor("float32", coefficients, [coefficients.length]) };
    tensors.forEach((t, i) => (feeds[`x${i}`] = t));
    return this.track((await session.run(feeds)).y);
  }

  async concat(tensors) {
    if (tensors.length !== 2) throw new Error("concat takes two tensors");
    const session = await this.op("concat_2");
    return this.track((await session.run({ a: tensors[0], b: tensors[1] })).y);
  }

  async split(tensor) {
    if (tensor.dims[0] !== 2) throw new Error("split takes a batch of two");
    const session = await this.op("split_2");
    const out = await session.run({ x: tensor });
    return [this.track(out.a), this.track(out.b)];
  }

  async pool(tensor, factor) {
    const session = await this.op(`pool_${factor}`);
    return this.track((await session.run({ x: tensor })).y);
  }

  async read(tensor) {
    // getData() downloads GPU buffers; CPU tensors answer at once with their own array, so copy:
    // the page may take (transfer) what it reads while the tensor is still in use.
    return Float32Array.from(await tensor.getData());
  }

  /**
   * H·W·3 RGB bytes → a (1, 3, H, W) float32 tensor in [-1, 1]: x / 255 · 2 − 1, as diffusers' image
   * processor (and the CPython runtime) computes it in float32. Each operation is done in double and
   * rounded once to float32, which gives the float32 result exactly.
   */
  fromRgb8(rgb, width, height) {
    const plane = width * height;
    const values = new Float32Array(3 * plane);
    for (let i = 0; i < plane; i++) {
      for (let c = 0; c < 3; c++) values[c * plane + i] = Math.fround(2 * Math.fround(rgb[3 * i + c] / 255) - 1);
    }
    return new this.ort.Tensor("float32", values, [1, 3, height, width]);
  }

  async toRgb8(image) {
    const session = await this.op("to_rgb");
    const pixels = (await session.run({ image })).pixels;
    const values = await pixels.getData();
    pixels.dispose?.();
    return Uint8Array.from(values);
  }

  track(tensor) {
    this.live.add(tensor);
    return tensor;
  }

  release(tensor) {
    if (this.live.delete(tensor) && tensor.location === "gpu-buffer") tensor.dispose();
  }
}
