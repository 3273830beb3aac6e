"""The fast decoder: TAESD, a tiny stand-in for the VAE decoder, drawing pictures from latents.

SD's VAE decoder takes ~22 s for one 512² picture on WASM. TAESD (diffusers' AutoencoderTiny,
1.2 M parameters, shipped as the manifest's "preview_decoder") draws a close picture from the same
latent in a small fraction of that. sdlens uses it twice:

- every step's x̂₀ picture (browser/preview.py), smaller than the image: above 256 px the latent
  is first averaged over `preview_pool`² cells, a quarter of the cost;
- the final picture, when a run asks for `decoder="fast"`: the whole latent, a full-size picture.
  Whatever it draws says so, and the same run can be redrawn by the VAE from its final latent.

How to feed it (recorded in the manifest): divide SD's latents by its scaling_factor (1.0 for
TAESD: it takes SD's scaled latents as they are), run the graph; its output is in [-1, 1], like
the VAE's, so the same pixel conversion follows.
"""

from __future__ import annotations

from .errors import SdlensError

#: the manifest's component that holds TAESD
COMPONENT = "preview_decoder"
#: the `decoder` setting: the model's own VAE (the default) or TAESD
VAE, FAST = "vae", "fast"
LABELS = {VAE: "the VAE", FAST: "the fast decoder (TAESD)"}


def check_decoder(value) -> str:
    """The `decoder` setting: "vae" (also when empty) or "fast" ("taesd" is taken as "fast")."""
    text = "" if value is None else str(value).strip().lower()
    if text in ("", VAE):
        return VAE
    if text in (FAST, "taesd"):
        return FAST
    raise SdlensError(f"decoder must be vae (the model's own decoder) or fast (TAESD, quicker and close); got {value!r}")


def draws_full_size(manifest: dict) -> bool:
    """Whether this model's TAESD can draw a full-size picture. Models exported before the preview's
    averaging moved out of the graph (manifest key `input_pool`) only draw small previews."""
    component = manifest["components"].get(COMPONENT)
    return bool(component and component.get("variants")) and int(component.get("input_pool", 1)) == 1


class FastDecoder:
    """TAESD on a runtime: `decode(latents, pool)` → an image tensor in [-1, 1]."""

    def __init__(self, model, runtime, entry: dict):
        component = model.manifest["components"][COMPONENT]
        self.model, self.runtime, self.entry = model, runtime, entry
        self.scale = 1.0 / float(component.get("scaling_factor", 1.0))
        #: the averaging previews ask of the runtime (older exports did it in the graph: draws_full_size)
        self.preview_pool = int(component.get("preview_pool", 1))
        self._graph = None

    @classmethod
    def for_variant(cls, model, runtime, variant: str) -> "FastDecoder":
        """The variant the rest of the model runs, where TAESD has it; else fp32."""
        variants = model.manifest["components"][COMPONENT]["variants"]
        return cls(model, runtime, variants.get(variant) or variants.get("fp32") or next(iter(variants.values())))

    def prepare(self) -> None:
        """Create the session now, so that the first picture does not wait for it."""
        if self._graph is None:
            paths = [self.model.path(f["path"]) for f in self.entry["files"]]
            self._graph = self.runtime.load(paths[0], paths[1:])

    def decode(self, latents, pool: int = 1):
        """The picture of `latents`, drawn after averaging them over pool² cells (1: full size)."""
        self.prepare()
        feed = self.runtime.combine([(self.scale, latents)]) if self.scale != 1.0 else latents
        if pool > 1:
            feed = self.runtime.pool(feed, pool)
        outputs = self.runtime.run(self._graph, {self.entry["inputs"][0]["name"]: feed})
        return outputs[self.entry["outputs"][0]["name"]]
