"""The wheel carries the whole app (`pip wheel . --no-deps`): besides the sdlens package, the
files app_files describes (web/, the vendored runtime from node_modules) and the embedded
models (app_files.EMBEDDED_MODELS), under sdlens/_app/. Installed with `pip install --no-index sdlens-*.whl`, then
`sdlens serve` runs the app with no network, npm or compiler. Metadata is in pyproject.toml."""

import json
import shutil
import sys
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent


class build_py_with_app(build_py):
    def run(self):
        super().run()
        if getattr(self, "editable_mode", False):
            return  # an editable install serves the checkout itself
        sys.path.insert(0, str(ROOT / "py"))
        from sdlens.serving import app_files

        layout = app_files.Layout.find()
        missing = layout.missing_runtime_files()
        if missing:
            raise SystemExit(f"the wheel needs the browser runtime files; run npm ci first (missing: {missing[0]})")
        from sdlens.serving.snapshot import ensure_boot_files

        # The Python snapshot and .pyc stdlib (build/boot/, made in headless Chromium where stale):
        # packed under _app/built/, so the installed app starts as fast as the checkout.
        print(f"sdlens wheel: {ensure_boot_files(layout)}")
        app = Path(self.build_lib) / "sdlens" / "_app"
        if app.exists():
            shutil.rmtree(app)
        for url, source in {**layout.web_files(), **layout.runtime_files(), **layout.built_files()}.items():
            self.copy_into(source, app / ("web" if not url.startswith(("vendor/", "built/")) else "") / url)
        embedded = {layout.models / name: app_files.read_manifest(layout.models / name) for name in app_files.EMBEDDED_MODELS}
        missing = [f.name for f, manifest in embedded.items() if manifest is None]
        if missing:
            raise SystemExit(f"the wheel embeds models/{', models/'.join(app_files.EMBEDDED_MODELS)}; missing: {missing}")
        defaults = [f.name for f, manifest in embedded.items() if manifest.get("default")]
        if len(defaults) != 1:
            raise SystemExit(f"one embedded model is the default; found {len(defaults)}: {defaults}")
        for model, manifest in embedded.items():
            for entry in app_files.manifest_files(manifest):
                self.copy_into(model / entry["path"], app / "models" / model.name / entry["path"])
            (app / "models" / model.name / "manifest.json").write_text(json.dumps(manifest, indent=1))

    @staticmethod
    def copy_into(source: Path, target: Path):
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, target)


setup(cmdclass={"build_py": build_py_with_app})
