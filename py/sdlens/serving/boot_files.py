"""The built boot files: what makes Python start fast in the browser (web/runtime/python_boot.js).

- python_stdlib.pyc.zip: Pyodide's standard library compiled to .pyc by that same Pyodide, so no
  boot compiles it again (the npm zip holds only .py files);
- snapshot-<family>.bin.gz: a memory snapshot of a Pyodide that booted with that zip and imported
  py/sdlens, made in a browser of that family (it records the engine's JSPI support), gzipped;
- boot.json: what each was made from, so a page uses only what matches what it runs.

They are build products (`python -m sdlens snapshot`, snapshot.py), kept out of git: in a checkout
under build/boot/, in a wheel under sdlens/_app/built/. Pages work without them, only slower.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

URL_PREFIX = "built/"
BOOT_JSON = "boot.json"
STDLIB_ZIP = "python_stdlib.pyc.zip"
PYODIDE_WASM = "pyodide.asm.wasm"  # the build a snapshot belongs to (its heap layout)


def snapshot_name(family: str) -> str:
    return f"snapshot-{family}.bin.gz"


def sources_sha256(python_dir: Path, files: list[str]) -> str:
    """The key of a snapshot to py/sdlens, computed as python_boot.js's sourcesSha256: each file's
    name, size and bytes, in api/python.json's order."""
    digest = hashlib.sha256()
    for name in files:
        data = (Path(python_dir) / name).read_bytes()
        digest.update(f"{name}\n{len(data)}\n".encode())
        digest.update(data)
    return digest.hexdigest()


def file_sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def entry(folder: Path, name: str) -> dict:
    """A boot.json entry: page-relative path, size and sha256 (python_boot.js checks both)."""
    data = (Path(folder) / name).read_bytes()
    return {"path": URL_PREFIX + name, "bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}


def read_boot_json(folder: Path) -> dict | None:
    try:
        return json.loads((Path(folder) / BOOT_JSON).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def served(folder: Path) -> dict[str, Path]:
    """URL → file for the built boot files that exist in `folder` (none where nothing was built)."""
    boot = read_boot_json(folder)
    if boot is None:
        return {}
    names = [BOOT_JSON, STDLIB_ZIP, *(snapshot_name(family) for family in boot.get("snapshots", {}))]
    return {URL_PREFIX + name: Path(folder) / name for name in names if (Path(folder) / name).is_file()}


def staleness(folder: Path, python_dir: Path, files: list[str], pyodide_dir: Path) -> str | None:
    """Why the built files in `folder` do not fit these sources and this Pyodide, or None if they do."""
    boot = read_boot_json(folder)
    if boot is None:
        return f"no {BOOT_JSON} in {folder}"
    if boot.get("pyodide_wasm_sha256") != file_sha256(Path(pyodide_dir) / PYODIDE_WASM):
        return "they were made with another Pyodide build"
    wanted = sources_sha256(python_dir, files)
    for family, snapshot in boot.get("snapshots", {}).items():
        if snapshot.get("sources_sha256") != wanted:
            return f"the {family} snapshot was made from other py/sdlens sources"
    missing = [url for url in (STDLIB_ZIP, *map(snapshot_name, boot.get("snapshots", {})))
               if not (Path(folder) / url).is_file()]
    return f"{missing[0]} is missing" if missing else None
