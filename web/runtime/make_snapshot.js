// The build of the boot files (py/sdlens/serving/snapshot.py runs it in headless Chromium, in a
// module worker as the app's own): Pyodide compiles its standard library to .pyc, then a second
// Pyodide boots exactly as python_boot.js's snapshot boot will (that zip, py/sdlens imported) and
// its heap is saved. Each result is POSTed back to the build server; the page never loads this.

import { browserFamily, fetchSources, importSdlens, sourcesSha256, writeSources } from "./python_boot.js";

const APP_ROOT = new URL("../", import.meta.url);
const appUrl = (path) => new URL(path, APP_ROOT).href;
const send = (name, body) => fetch(`/__build/${name}`, { method: "POST", body });

// Every .py of the zip as an unchecked hash-based .pyc (no timestamp to check, none to drift), its
// code named as when imported from the zip; anything else, and a file that does not compile, as is.
// Fixed dates make the zip depend on its contents only.
const COMPILE_STDLIB = `
import importlib._bootstrap_external as external, sys, zipfile
source = f"/lib/python{sys.version_info.major}{sys.version_info.minor}.zip"
with zipfile.ZipFile(source) as src, zipfile.ZipFile("/tmp/stdlib.pyc.zip", "w") as out:
    for info in src.infolist():
        name, data = info.filename, src.read(info)
        if name.endswith(".py"):
            try:
                code = compile(data, f"{source}/{name}", "exec", dont_inherit=True)
                name, data = name[:-3] + ".pyc", external._code_to_hash_pyc(code, b"\\0" * 8, checked=False)
            except SyntaxError:
                pass
        target = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
        target.compress_type = zipfile.ZIP_STORED if name.endswith("/") else zipfile.ZIP_DEFLATED
        out.writestr(target, data)
`;

try {
  const { loadPyodide, version } = await import(appUrl("vendor/pyodide/pyodide.mjs"));
  const indexURL = appUrl("vendor/pyodide/");
  const compiler = await loadPyodide({ indexURL });
  compiler.runPython(COMPILE_STDLIB);
  const stdlib = compiler.FS.readFile("/tmp/stdlib.pyc.zip");
  await send("stdlib", stdlib);
  const files = await fetchSources(appUrl, await (await fetch(appUrl("api/python.json"))).json());
  const pyodide = await loadPyodide({ indexURL, stdLibURL: URL.createObjectURL(new Blob([stdlib])), _makeSnapshot: true });
  writeSources(pyodide, files);
  importSdlens(pyodide);
  await send("snapshot", pyodide.makeMemorySnapshot());
  await send("done", JSON.stringify({ pyodide: version, family: browserFamily(), sources_sha256: await sourcesSha256(files) }));
} catch (err) {
  await send("error", String(err?.stack || err));
}
