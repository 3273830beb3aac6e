"""`python -m sdlens site OUT`: the app as a folder any static file server serves as is.

It holds what the server hands out (app_files): the page, the vendored runtime, the Python
sources, the models, and the JSON documents the server makes per request, written as files.
A host that sends no COOP/COEP headers (GitHub Pages, a university web space, a bucket) still
runs it: WASM on one thread, and the page says so.

A model's weights may stay elsewhere (`--model-url NAME=URL`): its manifest then names each file
by absolute URL, fetched with CORS, and the browser still checks every file's sha256.
"""

from __future__ import annotations

import json
import os
import shutil
import urllib.parse
from pathlib import Path

from ..hub.known import endpoint_from
from . import app_files
from .app_files import Layout


class SiteError(Exception):
    pass


def write_site(out: Path, layout: Layout, model_dirs: list[Path] | None = None,
               linked: dict[str, str] | None = None, hub_endpoint: str | None = None) -> str:
    out = Path(out)
    linked = dict(linked or {})
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise SiteError(f"{out} exists and is not an empty folder; choose a new folder")
    missing = layout.missing_runtime_files()
    if missing:
        raise SiteError(f"the browser runtime files are missing ({', '.join(map(str, missing))}); {layout.setup_hint}")
    from .snapshot import ensure_boot_files

    boot_note = ensure_boot_files(layout)  # the snapshot and .pyc stdlib, made here if stale
    model_dirs = [Path(d) for d in (model_dirs or app_files.model_folders(layout.models))]
    manifests = {}
    for folder in model_dirs:
        manifest = app_files.read_manifest(folder)
        if manifest is None:
            raise SiteError(f"{folder} has no readable manifest.json (is it a model folder?)")
        manifests[folder] = manifest
    names = [folder.name for folder in model_dirs]
    if len(set(names)) != len(names):
        raise SiteError(f"two models share a folder name: {', '.join(names)}")
    unknown = set(linked) - set(names)
    if unknown:
        raise SiteError(f"--model-url names models that are not included: {', '.join(sorted(unknown))}")
    if not model_dirs:
        raise SiteError("no models to include; name one with --model DIR")

    written = 0
    total = 0

    def copy(source: Path, url: str):
        nonlocal written, total
        target = out / url
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, target)
        written += 1
        total += target.stat().st_size

    def write_json(url: str, value):
        nonlocal written, total
        target = out / url
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(json.dumps(value), encoding="utf-8")
        written += 1
        total += target.stat().st_size

    out.mkdir(parents=True, exist_ok=True)
    for url, source in layout.app_files().items():
        copy(source, url)
    for folder, manifest in manifests.items():
        base = f"models/{folder.name}/"
        entries = app_files.manifest_files(manifest)
        if folder.name in linked:
            remote = linked[folder.name].rstrip("/") + "/"
            for entry in entries:
                entry["path"] = urllib.parse.urljoin(remote, entry["path"])
        else:
            for entry in entries:
                source = folder / entry["path"]
                if not source.is_file() or source.stat().st_size != entry["bytes"]:
                    raise SiteError(f"{source} is missing or not the size its manifest says; re-export the model")
                copy(source, base + entry["path"])
        write_json(base + "manifest.json", manifest)
    for url, value in app_files.api_documents(layout, model_dirs, endpoint_from(hub_endpoint)).items():
        write_json(url, value)
    (out / ".nojekyll").write_text("")  # GitHub Pages: serve every file as it is

    where = os.path.relpath(out) if not os.path.relpath(out).startswith("..") else str(out)
    return (f"wrote {written} files ({total / 1e6:.1f} MB) to {where}; any static file server serves it as is, "
            f"e.g. python -m http.server -d {where}\n"
            "Hosts that send no COOP/COEP headers run it single-threaded on WASM (the page says so).\n"
            f"{boot_note}")
