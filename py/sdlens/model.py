"""A model folder as sdlens sees it: `manifest.json` plus the files it lists.

The manifest is written by `python -m export convert`. This module reads it, checks that the
files are the ones the manifest names (sha256), and tells the pipeline where each graph is.
In the browser the same manifest is read from its JSON text; the browser fetches and checks the
files itself, so only `from_json` is used there.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field

from .errors import SdlensError

MANIFEST_FORMAT = "sdlens-model/1"
COMPONENTS = ("text_encoder", "unet", "vae_decoder", "vae_encoder")
#: components a model may lack: without a VAE encoder it cannot start from a picture
OPTIONAL_COMPONENTS = ("vae_encoder",)


@dataclass
class Model:
    manifest: dict
    root: str = ""
    #: The precision variant used for each component, e.g. {"unet": "fp32", ...}.
    variants: dict = field(default_factory=dict)

    @classmethod
    def from_json(cls, text: str, root: str = "", variant: str = "fp32") -> "Model":
        try:
            manifest = json.loads(text)
        except ValueError as err:
            raise SdlensError(f"manifest.json is not valid JSON: {err}") from None
        if not isinstance(manifest, dict) or manifest.get("format") != MANIFEST_FORMAT:
            raise SdlensError(f"manifest.json is not an sdlens model manifest (format {MANIFEST_FORMAT})")
        model = cls(manifest=manifest, root=root)
        model.use_variant(variant)
        return model

    @classmethod
    def from_dir(cls, path: str, variant: str = "fp32", verify: bool = True) -> "Model":
        manifest_path = os.path.join(path, "manifest.json")
        if not os.path.isdir(path):
            raise SdlensError(f"model folder {path} does not exist")
        if not os.path.isfile(manifest_path):
            raise SdlensError(f"{path} has no manifest.json; make one with: python -m export convert SRC --out {path}")
        with open(manifest_path, encoding="utf-8") as f:
            model = cls.from_json(f.read(), root=path, variant=variant)
        if verify:
            model.verify()
        return model

    @property
    def name(self) -> str:
        return self.manifest["name"]

    def use_variant(self, variant: str) -> None:
        """Pick one precision variant for every component (each must have it)."""
        for component in COMPONENTS:
            have = self.manifest["components"].get(component, {}).get("variants", {})
            if not have and component in OPTIONAL_COMPONENTS:
                continue
            if variant not in have:
                raise SdlensError(
                    f"model {self.manifest.get('name')} has no {variant} variant of {component} "
                    f"(it has: {', '.join(have) or 'none'})"
                )
        self.variants = {c: variant for c in COMPONENTS if self.has(c)}

    def use_component_variants(self, chosen: dict) -> None:
        """Another variant for some components ({"vae_decoder": "fp32", …}): the browser picks each
        component's fastest variant on its backend (web/runtime/backend.js). Each must exist."""
        for component, variant in chosen.items():
            have = self.manifest["components"].get(component, {}).get("variants", {})
            if variant not in have:
                raise SdlensError(f"model {self.manifest.get('name')} has no {variant} variant of {component} "
                                  f"(it has: {', '.join(have) or 'none'})")
            self.variants[component] = variant

    def has(self, component: str) -> bool:
        """Whether the model ships this component (every model has all but the VAE encoder)."""
        return bool(self.manifest["components"].get(component, {}).get("variants"))

    def graph(self, component: str) -> dict:
        """The manifest entry of the chosen variant of a component: files, inputs, outputs."""
        return self.manifest["components"][component]["variants"][self.variants[component]]

    def path(self, relative: str) -> str:
        if "://" in relative:
            return relative  # an absolute URL (weights on another origin): only a browser fetches it
        return os.path.join(self.root, *relative.split("/"))

    def files(self) -> list[dict]:
        """Every file the chosen variants need, tokenizer first."""
        entries = tokenizer_entries(self.manifest)
        for component in self.variants:
            entries += self.graph(component)["files"]
        return entries

    def verify(self) -> None:
        """Check each needed file's size and sha256 against the manifest."""
        for entry in self.files():
            path = self.path(entry["path"])
            if not os.path.isfile(path):
                raise SdlensError(f"model file {entry['path']} is missing from {self.root}")
            if os.path.getsize(path) != entry["bytes"]:
                raise SdlensError(f"model file {entry['path']} has the wrong size (expected {entry['bytes']} bytes)")
            digest = hashlib.sha256()
            with open(path, "rb") as f:
                for chunk in iter(lambda: f.read(1 << 20), b""):
                    digest.update(chunk)
            if digest.hexdigest() != entry["sha256"]:
                raise SdlensError(f"model file {entry['path']} does not match its sha256 in manifest.json (corrupted?)")

    def load_tokenizer(self):
        """The model's CLIP tokenizer: one tokenizer.json(.gz) as sdlens exports ship it, or a Hub
        repo's vocab.json + merges.txt (+ tokenizer_config.json) as published."""
        from .tokenizer import ClipTokenizer

        files = self.manifest["tokenizer"].get("files")
        if not files:
            return ClipTokenizer.from_file(self.path(self.manifest["tokenizer"]["file"]["path"]))

        def text(key):
            with open(self.path(files[key]["path"]), encoding="utf-8") as f:
                return f.read()

        config = json.loads(text("config")) if "config" in files else {}
        return ClipTokenizer.from_vocab_merges(text("vocab"), text("merges"), config)

    @property
    def defaults(self) -> dict:
        return self.manifest["defaults"]

    def latent_shape(self, width: int, height: int) -> tuple[int, int, int, int]:
        f = self.manifest["vae_scale_factor"]
        return (1, self.manifest["latent_channels"], height // f, width // f)


def tokenizer_entries(manifest: dict) -> list[dict]:
    """The tokenizer's file entries: {"file": …} in an export, {"files": {"vocab": …, …}} from the Hub."""
    tokenizer = manifest["tokenizer"]
    return list(tokenizer["files"].values()) if "files" in tokenizer else [tokenizer["file"]]


def find_models_root() -> str:
    """The models/ folder: inside an installed wheel (sdlens/_app/models), else the repository's."""
    here = os.path.dirname(os.path.abspath(__file__))
    installed = os.path.join(here, "_app", "models")
    if os.path.isdir(installed):
        return installed
    return os.path.normpath(os.path.join(here, "..", "..", "models"))


def list_models(models_root: str) -> list[str]:
    """Model folders under models_root that have a manifest, sorted by name."""
    if not os.path.isdir(models_root):
        return []
    return sorted(
        os.path.join(models_root, name)
        for name in os.listdir(models_root)
        if os.path.isfile(os.path.join(models_root, name, "manifest.json"))
    )


def resolve_model_dir(path: str | None, models_root: str | None = None) -> str:
    """The folder the user named, or the default model: the one whose manifest says
    "default": true, or the only model there is."""
    if path:
        return path
    root = models_root or find_models_root()
    found = list_models(root)
    for folder in found:
        with open(os.path.join(folder, "manifest.json"), encoding="utf-8") as f:
            if json.load(f).get("default"):
                return folder
    if len(found) == 1:
        return found[0]
    names = ", ".join(os.path.basename(f) for f in found) or "none"
    raise SdlensError(f"no default model in {root} (found: {names}); name one with --model DIR")
