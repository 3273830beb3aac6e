"""What the app is made of: the one description of every file a browser may fetch.

serve.py's server, the static site (`python -m sdlens site`) and the wheel all read this module,
so they serve, write and pack the same files under the same URLs with the same MIME types.

URLs here are relative to the page (no leading slash): the app works under any folder of a
static host (GitHub Pages serves a project at /NAME/, not at /).

Adding a vendored runtime file: one line in RUNTIME_FILES (a file of an npm package already
listed), or one entry (a new package folder).
"""

from __future__ import annotations

import json
import os
import urllib.parse
from dataclasses import dataclass
from pathlib import Path

from . import boot_files

PACKAGE_DIR = Path(__file__).resolve().parent.parent  # py/sdlens, or site-packages/sdlens
# Where a wheel keeps the app (setup.py copies it there): web/, vendor/, models/, built/.
INSTALLED_APP = PACKAGE_DIR / "_app"

# The runtime files the page loads, by URL folder: (folder inside node_modules, file names).
# Only these are served, written into a static site and packed into the wheel.
RUNTIME_FILES: dict[str, tuple[str, list[str]]] = {
    "vendor/pyodide/": ("pyodide", [
        "pyodide.mjs", "pyodide.asm.mjs", "pyodide.asm.wasm", "python_stdlib.zip", "pyodide-lock.json",
    ]),
    "vendor/ort/": ("onnxruntime-web/dist", [
        "ort.webgpu.min.mjs", "ort-wasm-simd-threaded.asyncify.mjs", "ort-wasm-simd-threaded.asyncify.wasm",
        "ort.wasm.min.mjs", "ort-wasm-simd-threaded.mjs", "ort-wasm-simd-threaded.wasm",
    ]),
    "vendor/d3/": ("d3/dist", ["d3.min.js"]),
    "vendor/umap/": ("umap-js/lib", ["umap-js.min.js"]),  # one UMD bundle, loaded like d3
}
# CodeMirror 6 (the code editor) as the ES modules npm ships: package → its entry file. The modules
# import each other by package name; index.html's import map resolves those names to these URLs
# (tests/test_code_editor.py checks that the two agree and that no import is left out).
CODEMIRROR = {
    "codemirror": "dist/index.js", "@codemirror/autocomplete": "dist/index.js",
    "@codemirror/commands": "dist/index.js", "@codemirror/lang-python": "dist/index.js",
    "@codemirror/language": "dist/index.js", "@codemirror/lint": "dist/index.js",
    "@codemirror/search": "dist/index.js", "@codemirror/state": "dist/index.js",
    "@codemirror/streamparser": "dist/index.js", "@codemirror/view": "dist/index.js",
    "@lezer/common": "dist/index.js", "@lezer/highlight": "dist/index.js", "@lezer/lr": "dist/index.js",
    "@lezer/python": "dist/index.js", "@marijn/find-cluster-break": "src/index.js", "crelt": "index.js",
    "style-mod": "src/style-mod.js", "w3c-keyname": "index.js",
}
RUNTIME_FILES.update({f"vendor/npm/{name}/": (name, [entry]) for name, entry in CODEMIRROR.items()})

MIME_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".mjs": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".json": "application/json",
    ".map": "application/json",
    ".wasm": "application/wasm",
    ".onnx": "application/octet-stream",
    ".onnx_data": "application/octet-stream",
    ".gz": "application/gzip",  # the tokenizer; no Content-Encoding, the worker unzips it itself
    ".py": "text/x-python; charset=utf-8",
    ".zip": "application/zip",
    ".bin": "application/octet-stream",
    ".png": "image/png",
    ".svg": "image/svg+xml",
    ".ico": "image/x-icon",
    ".txt": "text/plain; charset=utf-8",
    ".md": "text/plain; charset=utf-8",
}

# The JSON documents the page reads; the server makes them per request, a static site as files.
API_MODELS, API_PYTHON, API_SHELL = "api/models.json", "api/python.json", "api/shell.json"
API_HUB = "api/hub.json"  # where the page's "Open a model from the Hub" asks, and the repos it offers


def mime_type(name: str) -> str:
    suffix = ".onnx_data" if name.endswith(".onnx_data") else os.path.splitext(name)[1].lower()
    return MIME_TYPES.get(suffix, "application/octet-stream")


@dataclass(frozen=True)
class Layout:
    """Where the app's files are on this machine: a repository checkout (after `npm ci`) or an
    installed wheel (everything under sdlens/_app)."""

    web: Path
    python: Path  # the folder holding the sdlens package
    vendor: dict[str, Path]  # URL folder → folder on disk
    models: Path
    setup_hint: str  # what to run when runtime files are missing
    built: Path  # the built boot files (boot_files.py): the .pyc stdlib and the Python snapshot

    @classmethod
    def find(cls) -> "Layout":
        if (INSTALLED_APP / "web" / "index.html").is_file():
            return cls(INSTALLED_APP / "web", PACKAGE_DIR.parent,
                       {prefix: INSTALLED_APP / prefix for prefix in RUNTIME_FILES},
                       INSTALLED_APP / "models", "reinstall the sdlens wheel", INSTALLED_APP / "built")
        root = PACKAGE_DIR.parent.parent
        node_modules = root / "node_modules"
        return cls(root / "web", root / "py",
                   {prefix: node_modules / folder for prefix, (folder, _) in RUNTIME_FILES.items()},
                   root / "models", "in the sdlens folder, run: npm ci", root / "build" / "boot")

    def runtime_files(self) -> dict[str, Path]:
        """URL → file for every vendored runtime file."""
        return {prefix + name: self.vendor[prefix] / name
                for prefix, (_, names) in RUNTIME_FILES.items() for name in names}

    def missing_runtime_files(self) -> list[Path]:
        return [path for path in self.runtime_files().values() if not path.is_file()]

    def web_files(self) -> dict[str, Path]:
        """URL → file for the page, its scripts, styles and tensor-op graphs."""
        return {p.relative_to(self.web).as_posix(): p for p in sorted(self.web.rglob("*"))
                if p.is_file() and "__pycache__" not in p.parts}

    def python_files(self) -> dict[str, Path]:
        """URL → file for the sdlens modules Pyodide runs."""
        return {"py/" + name: self.python / name for name in python_sources(self.python)}

    def built_files(self) -> dict[str, Path]:
        """URL → file for the built boot files, where they were built (`python -m sdlens snapshot`)."""
        return boot_files.served(self.built)

    def built_staleness(self) -> str | None:
        """Why the built boot files do not fit this checkout's sources and Pyodide (None: they do)."""
        return boot_files.staleness(self.built, self.python, python_sources(self.python), self.vendor["vendor/pyodide/"])

    def app_files(self) -> dict[str, Path]:
        """URL → file for everything of the app but the models and the JSON documents."""
        return {**self.web_files(), **self.python_files(), **self.runtime_files(), **self.built_files()}


def python_sources(python_dir: Path) -> list[str]:
    """The sdlens modules the browser imports: the pure-Python core. Not the CPython runtime,
    the command line or this serving code, which Pyodide never runs."""
    package = python_dir / "sdlens"
    skipped = ("sdlens/cpython/", "sdlens/serving/")
    files = []
    for path in sorted(package.rglob("*.py")):
        relative = path.relative_to(python_dir).as_posix()
        if relative.startswith(skipped) or relative.endswith("__main__.py"):
            continue
        files.append(relative)
    return files


def shell_urls(layout: Layout) -> list[str]:
    """Every app file a visit may need offline (the service worker caches them), page-relative."""
    return ["./", API_PYTHON, API_MODELS, API_HUB, *layout.web_files(), *layout.python_files(), *layout.runtime_files(),
            *layout.built_files()]


#: The models committed in models/ and packed into the wheel: the objects model (a first visit's,
#: its manifest says "default") and the shapes model (the composition lab). Others in models/ are
#: the user's own exports, served by serve.py but never packed.
EMBEDDED_MODELS = ("objects", "shapes")


def model_folders(models_dir: Path) -> list[Path]:
    return sorted(p.parent for p in Path(models_dir).glob("*/manifest.json"))


def read_manifest(folder: Path) -> dict | None:
    try:
        return json.loads((Path(folder) / "manifest.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def models_list(folders: list[Path]) -> list[dict]:
    """api/models.json: id, name, default and the manifest's page-relative URL of each model."""
    models = []
    for folder in folders:
        manifest = read_manifest(folder)
        if manifest is None:
            continue
        models.append({
            "id": folder.name,
            "name": manifest.get("name", folder.name),
            "default": bool(manifest.get("default")),
            "manifest": f"models/{urllib.parse.quote(folder.name)}/manifest.json",
        })
    if models and not any(m["default"] for m in models):
        models[0]["default"] = True
    return models


def manifest_files(manifest: dict) -> list[dict]:
    """Every file entry {path, bytes, sha256} a manifest lists (tokenizer and all variants)."""
    tokenizer = manifest["tokenizer"]
    entries = list(tokenizer["files"].values()) if "files" in tokenizer else [tokenizer["file"]]
    for component in manifest.get("components", {}).values():
        for variant in component.get("variants", {}).values():
            entries += variant.get("files", [])
    return entries


def hub_document(endpoint: str) -> dict:
    """api/hub.json: the Hub's address (a mirror or a test server may stand in) and the known repos."""
    from ..hub.known import offered

    return {"endpoint": endpoint.rstrip("/"), "known": offered()}


def api_documents(layout: Layout, model_dirs: list[Path], hub_endpoint: str) -> dict[str, object]:
    """URL → JSON value for the documents the page reads."""
    return {
        API_MODELS: models_list(model_dirs),
        API_HUB: hub_document(hub_endpoint),
        API_PYTHON: python_sources(layout.python),
        API_SHELL: shell_urls(layout),
    }
