// The settings form as plain values, shared by every view that reads or runs it (compare, sweep,
// links, the detail panel, the code editor). No view owns these, so none imports them from another.

const $ = (id) => document.getElementById(id);


/** A yes/no setting as forms, links and the API give it: true, "1", "true", "on". */
export const isOn = (value) => value === true || ["1", "true", "yes", "on"].includes(String(value ?? "").toLowerCase());

/** The settings form as `sdlens.generate` takes them (as app.js reads it). */
export function formSettings() {
  const value = (id) => ($(id) ? $(id).value : "");
  const guidance = value("guidance").trim();
  return {
    prompt: value("prompt"),
    negative: value("negative"),
    seed: value("seed").trim(),
    steps: value("steps").trim(),
    guidance,
    scheduler: value("scheduler"),
    karras: Boolean($("karras")?.checked && !$("karras")?.disabled),
    formula_below_one: $("formula_below_one")?.checked ? "1" : "",
    decoder: $("decoder") && !$("decoder").disabled ? $("decoder").value : "vae",
    model: value("model"),
  };
}

/** D3 is vendored as a UMD file: load it with a classic script (once) and use window.d3. */
let d3Loading = null;
export function loadD3() {
  if (window.d3) return Promise.resolve(window.d3);
  d3Loading ||= new Promise((resolve, reject) => {
    const script = document.querySelector('script[src$="vendor/d3/d3.min.js"]') || document.createElement("script");
    script.addEventListener("load", () => resolve(window.d3));
    script.addEventListener("error", () => reject(new Error("could not load /vendor/d3/d3.min.js")));
    if (!script.src) {
      script.src = "vendor/d3/d3.min.js";
      document.head.append(script);
    }
  });
  return d3Loading;
}
