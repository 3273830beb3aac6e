"""Stable Diffusion text-to-image, one readable step at a time.

    prompt ──tokenize──► ids ──text encoder──► embeddings ─┐
    seed ──randn──► noise x_T ──► [ UNet ε-prediction ─► guidance ─► scheduler step ] × N ─► x_0
    x_0 ──VAE decoder──► image

From a picture (img2img.py), x_T is the picture's latent noised to a middle step instead, and only
the last steps run.

The order of operations is diffusers' StableDiffusionPipeline (StableDiffusionImg2ImgPipeline from
a picture), so that the same checkpoint, prompt, seed, scheduler, steps and guidance give the same
image. All tensor math goes through the runtime (see runtime.py): this file only decides *what* to
compute.
"""

from __future__ import annotations

import difflib
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Optional

from .errors import SdlensError
from .fast_decoder import FAST, FastDecoder, check_decoder, draws_full_size
from .formula import FormulaOps
from .guidance import check_flag, check_guidance, guide, uses_guidance
from .img2img import (DEFAULT_STRENGTH, InitImage, Start, check_init_image, check_strength, first_step,
                      sample_latent)
from .model import Model
from .rng import Generator, check_seed
from .schedulers import check_karras, display_name, make_scheduler
from .schedulers.base import Call, check_steps
from .tokenizer import ClipTokenizer, Encoding

MAX_STEPS = 1000
# The UNet's optional second output (added by `python -m export attention`): per-word cross-attention
# maps, (batch, tokens, h, w), each layer's softmax averaged over heads, resized to the latent, averaged
# over layers.
ATTENTION_OUTPUT = "attention_maps"
#: What each graph gives the pipeline, by optimum's output names.
MAIN_OUTPUTS = {"text_encoder": "last_hidden_state", "unet": "out_sample", "vae_decoder": "sample",
                "vae_encoder": "latent_parameters"}


class Cancelled(Exception):
    """Raised inside `generate` when `should_stop()` turns true; the run is abandoned cleanly."""


@dataclass
class Settings:
    prompt: str = ""
    negative: str = ""
    seed: int = 0
    steps: int = 25
    guidance: float = 7.5
    scheduler: str = "ddim"
    #: Karras sigmas: True/False, or None for what the model's scheduler config says
    karras: Optional[bool] = None
    # Off (the default, as diffusers): g ≤ 1 turns guidance off. On: the formula at every g.
    formula_below_one: bool = False
    #: the picture to start from ({width, height, rgba} at the model's size, or an InitImage); None: from noise
    init_image: Any = None
    #: how much of the run a picture's run redoes, 0 < strength ≤ 1 (only with init_image; default 0.8)
    strength: Any = None
    #: which decoder draws the final picture: "vae" (the model's own) or "fast" (TAESD, see fast_decoder)
    decoder: str = "vae"

    #: what a request may name; "model" is the page's (it picks the model, not a setting of the run)
    KEYS = ("prompt", "negative", "seed", "steps", "guidance", "scheduler", "karras", "formula_below_one",
            "init_image", "strength", "decoder", "model")

    @classmethod
    def from_request(cls, request: dict, defaults: dict) -> "Settings":
        """What a user asked for (command line or page), with the model's defaults (manifest
        "defaults") for whatever they left out (missing, None or an empty scheduler). A key it does
        not know is an error (a typo must not silently run something else); values are unchecked."""
        unknown = [key for key in request if key not in cls.KEYS]
        if unknown:
            raise SdlensError("; ".join(_unknown_setting(str(key)) for key in unknown))

        def given(key, fallback):
            value = request.get(key)
            return fallback if value is None else value

        return cls(
            prompt=given("prompt", ""),
            negative=given("negative", defaults.get("negative", "")),
            seed=given("seed", 0),
            steps=given("steps", defaults["steps"]),
            guidance=given("guidance", defaults["guidance"]),
            scheduler=request.get("scheduler") or defaults["scheduler"],
            karras=given("karras", defaults.get("karras")),
            formula_below_one=given("formula_below_one", False),
            init_image=request.get("init_image"),
            strength=request.get("strength"),
            decoder=given("decoder", defaults.get("decoder", "vae")),
        )

    def checked(self, width: int | None = None, height: int | None = None) -> "Settings":
        """The same settings, validated; raises SdlensError naming the bad field. An init_image is
        checked against the model's size (width, height) when they are given."""
        if not isinstance(self.prompt, str) or not isinstance(self.negative, str):
            raise SdlensError("prompt and negative prompt must be text")
        steps = check_steps(self.steps, MAX_STEPS)
        init_image, strength = self.init_image, None
        if init_image is None:
            if self.strength not in (None, ""):
                raise SdlensError("strength needs a picture to start from (init_image); without one every step runs")
        else:
            if width is not None:
                init_image = check_init_image(init_image, width, height)
            strength = check_strength(DEFAULT_STRENGTH if self.strength in (None, "") else self.strength, steps)
        return Settings(self.prompt, self.negative, check_seed(self.seed), steps,
                        check_guidance(self.guidance), self.scheduler, karras=check_karras(self.karras),
                        formula_below_one=check_flag(self.formula_below_one, "formula_below_one"),
                        init_image=init_image, strength=strength, decoder=check_decoder(self.decoder))


def _unknown_setting(key: str) -> str:
    """"unknown setting 'strenght' (did you mean 'strength'?)": the message for a key we do not know."""
    close = difflib.get_close_matches(key, Settings.KEYS, n=1)
    return f"unknown setting {key!r}" + (f" (did you mean {close[0]!r}?)" if close else
                                          f"; known settings: {', '.join(Settings.KEYS)}")


@dataclass
class StepTrace:
    """Everything one UNet call and the scheduler update after it computed, as runtime tensors.
    Reading values is up to the listener (`runtime.read(...)`), so a plain generation never
    copies anything back. Most schedulers make one call per step; Heun (and PNDM's first step)
    make two: `call` says which step this one belongs to and why it is made."""

    index: int  # the UNet call, 0 … len(scheduler.timesteps)-1
    timestep: float
    sigma: float
    latent: Any  # x_t, the input of this step
    eps_uncond: Any  # None when guidance is off
    eps_cond: Any
    eps_guided: Any
    pred_original: Any  # x̂_0, the model's current guess of the clean latent
    next_latent: Any  # x_{t-1}
    coefficients: dict
    seconds: float
    onnx_seconds: float
    attention: Any = None  # (1, tokens, h, w) of the conditional pass; only when asked for
    call: Call = None  # step, part, parts, role

    @property
    def step(self) -> int:
        return self.call.step


@dataclass
class Result:
    latents: Any
    image: Any  # VAE output tensor, values in [-1, 1]
    rgb: bytes
    width: int
    height: int
    encoding: Encoding
    negative_encoding: Optional[Encoding]
    backend: str
    text_embeddings: Any = None  # the prompt's text-encoder output, (1, tokens, hidden)
    timings: dict = field(default_factory=dict)
    scheduler_name: str = ""  # what users call the scheduler that ran ("DPM++ 2M Karras")
    karras: bool = False  # whether it ran with Karras sigmas
    unet_calls: int = 0
    #: a run from a picture: where it started (the skipped steps are those before start.start_step)
    start: Optional[Start] = None
    #: which decoder drew the picture: "vae" or "fast" (fast_decoder)
    decoder: str = "vae"


#: how many prompts' embeddings a pipeline keeps (77 × 1024 floats each at full size: 315 KB)
TEXT_CACHE_SIZE = 4


class Pipeline:
    def __init__(self, model: Model, runtime, tokenizer: ClipTokenizer | None = None):
        self.model = model
        self.runtime = runtime
        self.tokenizer = tokenizer or model.load_tokenizer()
        self._graphs: dict[str, Any] = {}
        #: TAESD, made on first use (the browser's step previews share theirs: browser/preview.py)
        self.fast: FastDecoder | None = None
        #: the last few prompts' embeddings, by token ids (encode_text)
        self._text_cache: dict[tuple, Any] = {}

    # -- graphs -------------------------------------------------------------------------------
    def graph(self, component: str):
        if component not in self._graphs:
            files = [self.model.path(f["path"]) for f in self.model.graph(component)["files"]]
            self._graphs[component] = self.runtime.load(files[0], files[1:])
        return self._graphs[component]

    def _run(self, component: str, feeds: dict) -> Any:
        return self._main_output(component, self.runtime.run(self.graph(component), feeds))

    def _main_output(self, component: str, outputs: dict) -> Any:
        """The output the pipeline reads, by its name where the graph has it (a Hub graph may list
        pooler_output first), else the graph's first (its only one, where the manifest lists none)."""
        wanted = MAIN_OUTPUTS[component]
        if wanted in outputs:
            return outputs[wanted]
        declared = self.model.graph(component)["outputs"]
        return outputs[declared[0]["name"]] if declared else next(iter(outputs.values()))

    # -- stages -------------------------------------------------------------------------------
    def encode_text(self, encoding: Encoding):
        """Token ids → one embedding vector per position (batch 1). The same ids always give the
        same embeddings, so the last few are kept: a class often runs one prompt again with another
        seed, and at full size on WASM the text encoder is most of a second."""
        key = tuple(encoding.ids)
        if key in self._text_cache:
            self._text_cache[key] = self._text_cache.pop(key)  # (the most recently used goes last)
            return self._text_cache[key]
        ids = self.runtime.ints(encoding.ids, (1, len(encoding.ids)))
        embeddings = self._run("text_encoder", {"input_ids": ids})
        self._text_cache[key] = embeddings
        while len(self._text_cache) > TEXT_CACHE_SIZE:
            self._text_cache.pop(next(iter(self._text_cache)))
        return embeddings

    def prompt_encodings(self, s: Settings) -> list[Encoding]:
        """The token ids a run with these settings encodes: the prompt, and the negative prompt
        too when guidance is on."""
        guided = uses_guidance(s.guidance, s.formula_below_one)
        return [self.tokenizer.encode(s.prompt)] + ([self.tokenizer.encode(s.negative)] if guided else [])

    def text_is_ready(self, encodings: list[Encoding]) -> bool:
        """Whether the embeddings of all these encodings are already kept."""
        return all(tuple(e.ids) in self._text_cache for e in encodings)

    def prepare_text(self, settings: Settings) -> bool:
        """Encode a run's prompts ahead of the run (the page does it while the learner types), so
        the run finds them kept. Returns whether the text encoder ran."""
        encodings = self.prompt_encodings(self.checked(settings))
        ready = self.text_is_ready(encodings)
        for encoding in encodings:
            self.encode_text(encoding)
        return not ready

    def has_attention(self) -> bool:
        """Whether this model's UNet also returns per-word attention maps."""
        return any(o["name"] == ATTENTION_OUTPUT for o in self.model.graph("unet")["outputs"])

    def predict_noise(self, sample, timestep: float, context):
        return self.predict_noise_and_attention(sample, timestep, context)[0]

    def predict_noise_and_attention(self, sample, timestep: float, context):
        """ε for each batch item, and the attention maps (None when the graph has none)."""
        spec = {i["name"]: i for i in self.model.graph("unet")["inputs"]}
        # A graph exported for one batch size (the WebNN UNet takes exactly 2: the prompt and the
        # negative prompt) gets a run without guidance twice, and the first answer is kept.
        fixed, batch = spec["sample"]["shape"][0], sample.shape[0]
        doubled = isinstance(fixed, int) and fixed == 2 and batch == 1
        if isinstance(fixed, int) and fixed != batch and not doubled:
            raise SdlensError(f"model {self.model.name}: its UNet takes a batch of exactly {fixed}, and this run has {batch}")
        if doubled:
            sample, context = self.runtime.concat([sample, sample]), self.runtime.concat([context, context])
        t_shape = tuple(d for d in spec["timestep"]["shape"] if isinstance(d, int))
        count = 1
        for d in t_shape:
            count *= d
        t = (self.runtime.ints if spec["timestep"]["dtype"].startswith("int") else self.runtime.floats)(
            [timestep] * count, t_shape or ())
        outputs = self.runtime.run(self.graph("unet"), {"sample": sample, "timestep": t, "encoder_hidden_states": context})
        noise, maps = self._main_output("unet", outputs), outputs.get(ATTENTION_OUTPUT)
        if doubled:
            noise = self.runtime.split(noise)[0]
            maps = self.runtime.split(maps)[0] if maps is not None else None
        return noise, maps

    def has_encoder(self) -> bool:
        """Whether this model can start from a picture (it ships a VAE encoder)."""
        return self.model.has("vae_encoder")

    def encode_image(self, image: InitImage, generator: Optional[Generator]):
        """A picture → its latent x_0, as diffusers' img2img prepare_latents: the encoder gives a
        distribution (mean ‖ log-variance) and x_0 is a sample of it, drawn from the run's generator,
        times the scaling factor the VAE was trained with. Without a generator: the mean."""
        if not self.has_encoder():
            raise SdlensError(f"model {self.model.name} has no VAE encoder, so it cannot start from a picture")
        pixels = self.runtime.from_rgb8(image.rgb, image.width, image.height)
        parameters = self._run("vae_encoder", {"sample": pixels})
        batch, channels, h, w = parameters.shape
        shape = (batch, channels // 2, h, w)
        noise = generator.randn(shape) if generator is not None else [0.0] * (batch * channels // 2 * h * w)
        sample = sample_latent(self.runtime.read(parameters), noise,
                               self.model.manifest["vae_scaling_factor"])
        return self.runtime.floats(sample, shape)

    def decode(self, latents, decoder: str = "vae"):
        """Latents → image tensor in [-1, 1], by the VAE (trained on latents times scaling_factor)
        or, with decoder="fast", by TAESD at full size."""
        if decoder == FAST:
            if self.fast is None:
                self.fast = FastDecoder.for_variant(self.model, self.runtime, self.model.variants["unet"])
            return self.fast.decode(latents)
        scaled = self.runtime.combine([(1.0 / self.model.manifest["vae_scaling_factor"], latents)])
        return self._run("vae_decoder", {"latent_sample": scaled})

    # -- the whole thing ----------------------------------------------------------------------
    def generate(
        self,
        settings: Settings,
        on_step: Callable[[StepTrace], None] | None = None,
        should_stop: Callable[[], bool] | None = None,
        attention: bool = False,
        code=None,
        on_phase: Callable[..., None] | None = None,
    ) -> Result:
        """With `attention`, each StepTrace carries the step's attention maps (the model must have them).
        `code` (an `edited.EditedCode`) replaces the guidance function and/or the scheduler's step.
        `on_phase(name, call=None)` is told when each long part begins: "text" (the text encoder),
        "encode" (a picture through the VAE encoder), "unet" (each UNet call, with its `Call`: at full
        size on WASM one is ~11 s) and "decode" (the final picture); on_step follows each step."""
        phase = on_phase or (lambda name, call=None: None)
        s = self.checked(settings)
        if attention and not self.has_attention():
            raise SdlensError(f"model {self.model.name} has no attention output; add it with "
                              f"`python -m export attention MODEL_DIR`")
        ops = self.runtime
        started = time.perf_counter()
        defaults = self.model.defaults
        width, height = defaults["width"], defaults["height"]

        scheduler = self.scheduler(s)
        if code is not None:
            code.install(scheduler)  # this run's scheduler object only
        guide_noise = code.guide if code is not None and code.guide else guide

        guided = uses_guidance(s.guidance, s.formula_below_one)
        encodings = self.prompt_encodings(s)
        encoding, negative_encoding = encodings[0], encodings[1] if guided else None
        # kept from an earlier run, or from prepare_text, where the token ids are the same
        text_reused = self.text_is_ready(encodings)
        if not text_reused:
            phase("text")
        cond = self.encode_text(encoding)
        context = ops.concat([self.encode_text(negative_encoding), cond]) if guided else cond
        text_seconds = time.perf_counter() - started

        generator = Generator(s.seed)
        shape = self.model.latent_shape(width, height)
        start = None
        if s.init_image is None:
            latents = ops.combine([(scheduler.init_noise_sigma, ops.floats(generator.randn(shape), shape))])
        else:
            # diffusers' get_timesteps: skip the first steps, then noise the picture's latent to the
            # first timestep that runs (the forward process, in one jump)
            start_step = first_step(s.steps, s.strength)
            scheduler.set_begin_index(start_step * scheduler.order)
            phase("encode")
            init_latent = self.encode_image(s.init_image, generator)  # draws its sample first
            noise = ops.floats(generator.randn(shape), shape)
            signal_coef, noise_coef = scheduler.add_noise_coefficients()
            latents = ops.combine([(signal_coef, init_latent), (noise_coef, noise)])
            start = Start(scheduler.begin_index, start_step, s.steps - start_step,
                          float(scheduler.timesteps[scheduler.begin_index]), signal_coef, noise_coef, init_latent)
        encode_seconds = time.perf_counter() - started - text_seconds

        step_seconds = []
        onnx_seconds = []
        for index in range(scheduler.begin_index, len(scheduler.timesteps)):
            timestep = scheduler.timesteps[index]
            if should_stop is not None and should_stop():
                raise Cancelled()
            step_started = time.perf_counter()
            model_input = scheduler.scale_model_input(latents, index, ops)
            if guided:
                model_input = ops.concat([model_input, model_input])
            phase("unet", scheduler.call(index))
            unet_started = time.perf_counter()
            noise, maps = self.predict_noise_and_attention(model_input, timestep, context)
            unet_seconds = time.perf_counter() - unet_started
            if attention and guided:
                maps = ops.split(maps)[1]  # the batch is [unconditional, conditional], as in diffusers
            if guided:
                eps_uncond, eps_cond = ops.split(noise)
                # guidance is written as a formula on tensors: computed here, by one ops.combine
                formula_ops = FormulaOps(ops)
                eps = formula_ops.value(guide_noise(formula_ops, formula_ops.tensor(eps_uncond),
                                                    formula_ops.tensor(eps_cond), s.guidance))
            else:
                eps_uncond, eps_cond, eps = None, noise, noise
            out = scheduler.step(eps, index, latents, ops, generator=generator)
            step_seconds.append(time.perf_counter() - step_started)
            onnx_seconds.append(unet_seconds)
            if on_step is not None:
                on_step(StepTrace(index, float(timestep), scheduler.sigma(index), latents, eps_uncond, eps_cond,
                                  eps, out.pred_original_sample, out.prev_sample, out.coefficients,
                                  step_seconds[-1], unet_seconds, attention=maps if attention else None,
                                  call=scheduler.call(index)))
            latents = out.prev_sample

        phase("decode")
        decode_started = time.perf_counter()
        image = self.decode(latents, s.decoder)
        rgb = ops.to_rgb8(image)
        finished = time.perf_counter()
        timings = {
            "text_seconds": text_seconds,
            "text_reused": text_reused,
            "encode_seconds": encode_seconds,  # the picture through the VAE encoder (≈0 from noise)
            "step_seconds": step_seconds,
            "step_onnx_seconds": onnx_seconds,
            "decode_seconds": finished - decode_started,
            "total_seconds": finished - started,
        }
        return Result(latents, image, rgb, width, height, encoding, negative_encoding, ops.backend,
                      text_embeddings=cond, timings=timings, scheduler_name=display_name(s.scheduler, scheduler.karras),
                      karras=scheduler.karras, unet_calls=len(scheduler.timesteps) - scheduler.begin_index,
                      start=start, decoder=s.decoder)

    def checked(self, settings: Settings) -> Settings:
        """The settings, validated for this model (an init_image at its size, and a model that can
        encode it); SdlensError otherwise."""
        s = settings.checked(self.model.defaults["width"], self.model.defaults["height"])
        if s.init_image is not None and not self.has_encoder():
            raise SdlensError(f"model {self.model.name} has no VAE encoder, so it cannot start from a picture; "
                              "choose a model that has one, or remove the picture")
        if s.decoder == FAST and not draws_full_size(self.model.manifest):
            raise SdlensError(f"decoder: model {self.model.name} has no fast decoder (TAESD) for full-size pictures; "
                              "use the VAE (decoder vae), or export the model again with --preview-decoder")
        return s

    def scheduler(self, settings: Settings):
        """The run's scheduler, its timesteps set (SdlensError for a bad name, Karras setting or step count)."""
        scheduler = make_scheduler(settings.scheduler, self.model.manifest["scheduler_config"], karras=settings.karras)
        scheduler.set_timesteps(settings.steps)
        return scheduler
