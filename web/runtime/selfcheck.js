// The fp16 self-check: before a model's fp16 variant is trusted on WebGPU, one tiny fp16 graph
// (web/runtime/ops/f16_check.onnx: MatMul, Add, Softmax, Sigmoid, Mul in float16) runs there and its
// output is compared with the same arithmetic done here in float64. Some WebGPU stacks run fp16
// kernels and return wrong numbers without any error; this refuses them in a few milliseconds.

// The graph's fixed weights and its input, by formula (export/web_ops.py writes the same).
export const ROWS = 4;
export const WIDTH = 8;
const TOLERANCE = 5e-3; // float16 keeps ~3 decimal digits; outputs lie in (0, 1)

export const checkInput = () => Float32Array.from({ length: ROWS * WIDTH }, (_, k) => Math.sin(1 + k));
const weight = (i, j) => Math.cos(i * WIDTH + j) / 2;
const bias = (j) => j / WIDTH - 0.5;

/** What the graph computes: y = softmax(x·W + b) · sigmoid(x·W + b), row by row. */
export function referenceOutput(x = checkInput()) {
  const out = new Float64Array(ROWS * WIDTH);
  for (let r = 0; r < ROWS; r++) {
    const h = Array.from({ length: WIDTH }, (_, j) => {
      let v = bias(j);
      for (let i = 0; i < WIDTH; i++) v += x[r * WIDTH + i] * weight(i, j);
      return v;
    });
    const top = Math.max(...h);
    const e = h.map((v) => Math.exp(v - top));
    const sum = e.reduce((a, b) => a + b, 0);
    h.forEach((v, j) => (out[r * WIDTH + j] = (e[j] / sum) * (1 / (1 + Math.exp(-v)))));
  }
  return out;
}

/** {ok, reason, maxError} for the values a backend returned. */
export function judge(values) {
  const expected = referenceOutput();
  if (!values || values.length !== expected.length) return { ok: false, reason: `returned ${values?.length} values, not ${expected.length}` };
  let maxError = 0;
  for (let k = 0; k < expected.length; k++) {
    const err = Math.abs(values[k] - expected[k]);
    maxError = Number.isNaN(err) ? Infinity : Math.max(maxError, err);
  }
  if (maxError > TOLERANCE) return { ok: false, reason: `fp16 results off by ${maxError.toPrecision(3)}`, maxError };
  return { ok: true, reason: `fp16 results within ${maxError.toPrecision(2)}`, maxError };
}

/** Run the check graph with onnxruntime-web on `ep`; never throws. */
export async function runF16SelfCheck(ort, ep = "webgpu") {
  try {
    const bytes = new Uint8Array(await (await fetch(new URL("./ops/f16_check.onnx", import.meta.url))).arrayBuffer());
    const session = await ort.InferenceSession.create(bytes, { executionProviders: [ep], logSeverityLevel: 3 });
    try {
      const out = await session.run({ x: new ort.Tensor("float32", checkInput(), [ROWS, WIDTH]) });
      return judge(await out.y.getData());
    } finally {
      session.release?.();
    }
  } catch (err) {
    // onnxruntime's message ends with the cause ("… requires f16 but the device does not support it")
    const message = String(err?.message || err).replace(/\s+/g, " ");
    return { ok: false, reason: message.length > 300 ? `…${message.slice(-300)}` : message };
  }
}
