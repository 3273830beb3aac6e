"""Per-step pictures: the model's current guess of the clean image, x̂₀, through a decoder.

Each step the scheduler also tells what the model thinks the finished latent is (x̂₀). Shown
through a decoder it is a real picture of where the run is heading, so the last step's picture
is (nearly) the final image. Which decoder, from the cheapest that is true to the model:

- the manifest's preview decoder (TAESD, diffusers' AutoencoderTiny), when the export made one:
  a few percent of a UNet step at 512²;
- else the VAE itself, when the image is small enough that a decode costs little (the 64² default
  model: a few milliseconds);
- else nothing here: the page draws x̂₀ through the manifest's linear latent→RGB map and says that
  it is only an approximation (at 512² a VAE decode per step would cost more than the step).

The final image comes from the real VAE, unless a run asks for the fast decoder (the same TAESD,
at full size: sdlens.fast_decoder); this class and the pipeline then share one session.
"""

from __future__ import annotations

import json

from ..fast_decoder import FastDecoder

#: Largest image (in pixels) for which every step is decoded by the full VAE.
VAE_PREVIEW_MAX_PIXELS = 128 * 128


def _variant_entry(component: dict, variant: str, ep: str) -> dict:
    """The preview decoder's own variant, the fastest its backend runs correctly. Measured on
    TAESD at 256² (onnxruntime-web's WASM build, 1 thread): int8 0.87 s, fp32 1.56 s, fp16 1.58 s,
    so WASM takes int8. WebGPU takes fp16 beside an f16 model (fp16, q4), else fp32 (int8 gives
    wrong numbers there)."""
    variants = component["variants"]
    if ep == "wasm":
        order = ("int8", "fp32")
    else:
        order = ("fp16", "fp32") if variant in ("fp16", "q4") else ("fp32",)
    for name in order:
        if name in variants:
            return variants[name]
    return next(iter(variants.values()))


def choose(manifest: dict, variant: str, ep: str = "wasm") -> dict:
    """{kind, label, entry, width, height}: which decoder draws x̂0 for this model on the
    backend `ep` ("wasm" or "webgpu") beside the model's `variant` (see the module doc)."""
    decoder = manifest["components"].get("preview_decoder")
    defaults = manifest["defaults"]
    width, height = defaults["width"], defaults["height"]
    if decoder:
        # TAESD decodes the UNet's latents as they are (its scaling factor is 1); the manifest
        # records the factor, so a decoder trained otherwise is still fed right. The latent is
        # averaged down first (preview_pool; older exports did it in the graph, input_pool): the
        # picture is then that much smaller.
        pool = int(decoder.get("preview_pool", 1)) * int(decoder.get("input_pool", 1))
        return {"kind": "preview_decoder", "label": "the preview decoder (TAESD)",
                "entry": _variant_entry(decoder, variant, ep),
                "width": width // pool, "height": height // pool}
    if width * height <= VAE_PREVIEW_MAX_PIXELS:
        return {"kind": "vae", "label": "the VAE", "entry": None, "width": width, "height": height}
    return {"kind": "linear", "entry": None, "width": None, "height": None,
            "label": "a linear latent→RGB map (an approximation: this model has no preview decoder)"}


class StepPreview:
    def __init__(self, pipeline, variant: str, ep: str = "wasm"):
        self.pipeline = pipeline
        self.runtime = pipeline.runtime
        plan = choose(pipeline.model.manifest, variant, ep)
        self.kind, self.label, self.entry = plan["kind"], plan["label"], plan["entry"]
        self.width, self.height = plan["width"], plan["height"]  # of each picture (None: the page draws it)
        self.decoder = None
        if self.kind == "preview_decoder":
            # one session for the previews and, when a run asks for it, the fast final picture
            self.decoder = FastDecoder(pipeline.model, self.runtime, self.entry)
            pipeline.fast = self.decoder

    @staticmethod
    def plan(manifest_json: str, variant: str, ep: str = "wasm") -> dict:
        """What the worker needs before any file is downloaded: the kind, its label, its files."""
        plan = choose(json.loads(manifest_json), variant, ep)
        return {"kind": plan["kind"], "label": plan["label"], "width": plan["width"], "height": plan["height"],
                "files": list(plan["entry"]["files"]) if plan["entry"] else []}

    @property
    def files(self) -> list[dict]:
        """The files this preview needs beyond the pipeline's."""
        return list(self.entry["files"]) if self.kind == "preview_decoder" else []

    def prepare(self) -> None:
        """Create the preview decoder's session now, so the first step does not wait for it."""
        if self.decoder is not None:
            self.decoder.prepare()

    def rgb(self, x0):
        """RGB bytes (height × width × 3) of x̂₀, or None where the page draws the linear map."""
        if self.kind == "vae":
            return self.runtime.to_rgb8(self.pipeline.decode(x0))
        if self.decoder is not None:
            return self.runtime.to_rgb8(self.decoder.decode(x0, self.decoder.preview_pool))
        return None
