"""What the browser worker calls: load a model, tokenize, generate with per-step reports.

The worker hands us the manifest and tokenizer JSON it fetched and verified, and its
onnxruntime-web runtime; everything else is the same sdlens code that CPython runs.
"""

from __future__ import annotations

import json
import time

import js
from pyodide.ffi import run_sync, to_js

from ..edited import CodeError, EditedCode, original_source
from ..errors import SdlensError
from ..fast_decoder import LABELS as DECODERS, draws_full_size
from ..guidance import uses_guidance
from ..img2img import first_step
from ..model import Model
from ..pipeline import Cancelled, Pipeline, Settings
from ..rng import Generator, check_seed
from ..schedulers import SCHEDULERS, catalogue
from ..tokenizer import ClipTokenizer
from .preview import StepPreview
from .runtime import BrowserRuntime


class BrowserSession:
    def __init__(self, manifest_json: str, tokenizer_texts_json: str, js_runtime, variant: str, ep: str = "wasm",
                 component_variants_json: str = "{}"):
        """`tokenizer_texts_json`: the tokenizer files' texts by the manifest's keys: {"file": the
        tokenizer.json} for an export, {"vocab", "merges", "config"} for a Hub repo."""
        self.model = Model.from_json(manifest_json, root="", variant=variant)
        # where the backend runs some component faster in another variant (web/runtime/backend.js)
        self.model.use_component_variants(json.loads(component_variants_json))
        self.runtime = BrowserRuntime(js_runtime)
        texts = json.loads(tokenizer_texts_json)
        tokenizer = (ClipTokenizer.from_json(texts["file"]) if "file" in texts else
                     ClipTokenizer.from_vocab_merges(texts["vocab"], texts["merges"], json.loads(texts.get("config") or "{}")))
        self.pipeline = Pipeline(self.model, self.runtime, tokenizer)
        self.preview = StepPreview(self.pipeline, variant, ep)

    def preview_info(self) -> dict:
        """Which decoder draws the per-step pictures, for the worker (files) and the page (label),
        and whether that decoder can also draw the final picture (the `decoder` setting "fast")."""
        return {"kind": self.preview.kind, "label": self.preview.label, "files": self.preview.files,
                "width": self.preview.width, "height": self.preview.height,
                "fast_final": self.preview.kind == "preview_decoder" and draws_full_size(self.model.manifest)}

    def tokenize(self, prompt: str) -> dict:
        return _encoding_dict(self.pipeline.tokenizer.encode(prompt))

    def check(self, settings: dict) -> dict:
        """Validate settings without running; returns {"ok": True, "warning": …} or the field and message."""
        try:
            checked = self._settings(settings)
        except SdlensError as err:
            return {"ok": False, "message": str(err), "field": _field_of(str(err))}
        return {"ok": True, "warning": self._scheduler_warning(checked)}

    def prepare_text(self, settings) -> dict:
        """Encode a run's prompts ahead of it (the page asks while the learner types): {ran, ms}.
        Settings that do not check out prepare nothing: Generate will say what is wrong."""
        started = time.perf_counter()
        try:
            ran = self.pipeline.prepare_text(self._settings(settings))
        except SdlensError:
            ran = False
        return {"ran": ran, "ms": (time.perf_counter() - started) * 1000}

    def _settings(self, settings) -> Settings:
        """The page's settings, checked: a key we do not know, a bad value, an init_image that is not
        the model's size or a model without a VAE encoder → SdlensError."""
        if hasattr(settings, "to_py"):
            settings = settings.to_py(depth=1)
        checked = self.pipeline.checked(Settings.from_request(dict(settings), self.model.defaults))
        self.pipeline.scheduler(checked)  # a bad name, Karras setting or step count → SdlensError
        return checked

    def encode(self, image, seed=0) -> dict:
        """A picture ({width, height, rgba} at the model's size) → its latent x_0, drawn exactly as a
        run from it with this seed draws it (the generator's first numbers), and the mean it is drawn
        around: {latent, mean (Float32Arrays, scaled like latents), shape, transparent_pixels}."""
        if hasattr(image, "to_py"):
            image = image.to_py(depth=1)
        checked = self.pipeline.checked(Settings(prompt="", init_image=image, strength=1.0))
        picture = checked.init_image
        latent = self.pipeline.encode_image(picture, Generator(check_seed(seed)))
        mean = self.pipeline.encode_image(picture, None)
        return {"latent": self.runtime.read_f32(latent), "mean": self.runtime.read_f32(mean),
                "shape": list(latent.shape), "transparent_pixels": picture.transparent_pixels}

    def source(self, part: str, scheduler: str = "ddim") -> str:
        """The real source of the guidance function or a scheduler's step, for the code editor."""
        return original_source(part, scheduler)

    def _scheduler_warning(self, settings: Settings) -> str:
        """LCM runs on any model (as in diffusers) but only a latent-consistency model makes good
        images with it: say so, unless the model is one."""
        if SCHEDULERS.get(str(settings.scheduler).strip().lower()) is not SCHEDULERS["lcm"]:
            return ""
        manifest = self.model.manifest
        if manifest.get("scheduler_config", {}).get("_class_name") == "LCMScheduler" or \
                "lcm" in f"{manifest.get('name', '')} {manifest.get('source', '')}".lower():
            return ""
        return ("LCM is meant for latent-consistency (LCM-distilled) models; this model is not one, "
                "so expect a blurry or noisy image.")

    def decode(self, latent_f32, shape) -> dict:
        """A latent the page kept (a step's x̂0) as a picture: {rgb, width, height}, through the
        same decoder as the per-step strip (the preview decoder where there is one: at 512² the
        VAE would take ~30 s a picture on WASM), else the VAE."""
        latent = self.runtime.floats(latent_f32, tuple(shape))
        rgb = self.preview.rgb(latent) if self.preview.kind == "preview_decoder" else None
        if rgb is not None:
            return {"rgb": rgb, "width": self.preview.width, "height": self.preview.height, "by": self.preview.kind}
        width, height = self._picture_size(shape)
        return {"rgb": self.runtime.to_rgb8(self.pipeline.decode(latent)), "width": width, "height": height, "by": "vae"}

    def redraw(self, latent_f32, shape, decoder: str = "vae") -> dict:
        """A run's final latent drawn again, by the VAE or the fast decoder: {rgb, width, height,
        decoder, ms}. No denoising: the same latent the run ended with, so the picture is the one a
        run with that decoder from the start draws."""
        started = time.perf_counter()
        latent = self.runtime.floats(latent_f32, tuple(shape))
        rgb = self.runtime.to_rgb8(self.pipeline.decode(latent, decoder))
        width, height = self._picture_size(shape)
        return {"rgb": rgb, "width": width, "height": height, "decoder": decoder,
                "label": DECODERS[decoder], "ms": (time.perf_counter() - started) * 1000}

    def _picture_size(self, shape) -> tuple[int, int]:
        """(width, height) of the full-size picture of a latent of `shape` (batch, channels, h, w)."""
        scale = self.model.manifest["vae_scale_factor"]
        return shape[3] * scale, shape[2] * scale

    def generate(self, settings: dict, on_step, should_stop, explain: bool = False, code=None,
                 pictures: bool = True, on_phase=None, stop_flag=None) -> dict:
        """Run; after each step call on_step(info, tensors, picture). `tensors` holds x̂0 only, or
        with `explain` every tensor of the step (x_t, ε parts, x̂0, and the per-token attention maps
        when the model has them), as JavaScript Float32Arrays; `picture` is x̂0 decoded to RGB bytes
        (a Uint8Array), or None where the page draws it. `pictures=False` decodes no step's x̂0
        (the page decodes them after the final image, with decode(): a first visit's run). With
        the fast final decoder the last call's picture is left to the page the same way (its info
        says picture_later). `stop_flag`: the page's shared Int32Array, 2 once Stop is pressed,
        which edited code reads at each of its lines (a loop in it never lets the stop message in)."""
        s = self._settings(settings)
        # Reading the maps back costs a copy per step, so only an explained run asks for them.
        attention = explain and self.pipeline.has_attention()
        # A learner's edited guidance / step ({"guidance": text, "step": text}); errors come back
        # with the part and line, for the editor, and leave nothing behind for the next run.
        edited = None
        if code is not None:
            code = code.to_py() if hasattr(code, "to_py") else dict(code)
            try:
                edited = EditedCode(guidance=code.get("guidance"), step=code.get("step"), scheduler=s.scheduler,
                                    time_limit_s=float(code.get("time_limit_s") or 5.0),
                                    stopped=(lambda: stop_flag[0] == 2) if stop_flag is not None else None)
            except CodeError as err:
                return _code_error(err)
        runtime = self.runtime
        start_step = first_step(s.steps, s.strength) if s.init_image is not None else 0
        step_python_seconds = []
        waited = [runtime.waited_seconds]

        report_seconds = [0.0]
        preview_seconds = [0.0]

        def report(trace):
            report_started = time.perf_counter()
            # Python's share of the step: its time less the time spent waiting for onnxruntime-web.
            step_python_seconds.append(max(trace.seconds - (runtime.waited_seconds - waited[0]), 0.0))
            preview_started = time.perf_counter()
            # When the fast decoder draws the final picture, the last call's x̂0 picture waits until
            # after it (the page decodes it then): the final picture is what the learner waits for,
            # and on WASM at full size this preview costs half a second of that wait.
            later = pictures and s.decoder == "fast" and is_last_call(trace.call, s.steps)
            drawn = pictures and not later  # this step's picture is decoded here, now
            rgb = self.preview.rgb(trace.pred_original) if drawn else None
            picture = None
            if rgb is not None:
                picture = js.Uint8Array.new(len(rgb))
                picture.assign(rgb)
            # (0 where no picture was decoded here: the timing line then has no part for it)
            preview_ms = (time.perf_counter() - preview_started) * 1000 if drawn else 0.0
            preview_seconds[0] += preview_ms / 1000
            tensors = {}
            if explain or rgb is None:
                tensors["x0"] = runtime.read_f32(trace.pred_original)
            if explain:
                tensors["latent"] = runtime.read_f32(trace.latent)
                tensors["eps_cond"] = runtime.read_f32(trace.eps_cond)
                tensors["eps_guided"] = runtime.read_f32(trace.eps_guided)
                if trace.eps_uncond is not None:
                    tensors["eps_uncond"] = runtime.read_f32(trace.eps_uncond)
                if trace.attention is not None:
                    tensors["attention"] = runtime.read_f32(trace.attention)
            call = trace.call
            # index: the call's place in this run (the page's list of steps); schedule_index and step
            # count from the full schedule, which a run from a picture enters at start_step
            info = {"index": len(step_python_seconds) - 1, "schedule_index": trace.index, "start_step": start_step,
                    "steps": s.steps, "step": call.step, "call": call.part,
                    "calls": call.parts, "role": call.role, "timestep": trace.timestep, "sigma": trace.sigma,
                    "ms": trace.seconds * 1000, "onnx_ms": trace.onnx_seconds * 1000, "preview_ms": preview_ms,
                    "coefficients": dict(trace.coefficients), "shape": list(trace.latent.shape)}
            if trace.attention is not None:
                info["attention_shape"] = list(trace.attention.shape[1:])  # (tokens, h, w)
            if later:
                info["picture_later"] = True
            on_step(to_js(info, dict_converter=js.Object.fromEntries),
                    to_js(tensors, dict_converter=js.Object.fromEntries), picture)
            waited[0] = runtime.waited_seconds
            # Reading the step back (on WebGPU this waits for the GPU to finish the step) and
            # handing it to the page: part of the run's time that no stage above measures. The
            # step's picture is a decode of its own, counted apart.
            report_seconds[0] += time.perf_counter() - report_started - preview_ms / 1000

        try:
            # should_stop is asynchronous: it lets the worker read its messages (a Stop click) first.
            # Each long part is announced before it starts, so the page can say what it waits for.
            # (a UNet call says which step it is, and the batch: two with guidance)
            batch = 2 if uses_guidance(s.guidance, s.formula_below_one) else 1

            def phase(name, call=None):
                where = (call.step, s.steps, call.part, call.parts, batch) if call is not None else ()
                on_phase(name, DECODERS[s.decoder], *where)
            result = self.pipeline.generate(s, on_step=report, should_stop=lambda: bool(run_sync(should_stop())),
                                            attention=attention, code=edited,
                                            on_phase=phase if on_phase is not None else None)
        except Cancelled:
            return {"cancelled": True}
        except KeyboardInterrupt:  # Stop during edited code (its lines read the page's stop flag)
            return {"cancelled": True}
        except CodeError as err:
            return _code_error(err)
        t = result.timings
        return {
            "cancelled": False,
            "width": result.width,
            "height": result.height,
            "rgb": result.rgb,
            "backend": result.backend,
            "timings": {
                "text_ms": t["text_seconds"] * 1000,
                "text_reused": t["text_reused"],  # the embeddings were kept (Pipeline.encode_text)
                "encode_ms": t["encode_seconds"] * 1000,  # the picture through the VAE encoder
                "step_ms": [x * 1000 for x in t["step_seconds"]],
                "step_onnx_ms": [x * 1000 for x in t["step_onnx_seconds"]],
                "step_python_ms": [x * 1000 for x in step_python_seconds],
                "report_ms": report_seconds[0] * 1000,
                "preview_ms": preview_seconds[0] * 1000,
                "preview_kind": self.preview.kind,
                "decode_ms": t["decode_seconds"] * 1000,
                "decoder": result.decoder,
                "total_ms": t["total_seconds"] * 1000,
            },
            "settings": {"prompt": s.prompt, "negative": s.negative, "seed": str(s.seed), "steps": s.steps,
                         "guidance": s.guidance, "scheduler": SCHEDULERS[s.scheduler.strip().lower()].name,
                         "karras": result.karras, "formula_below_one": s.formula_below_one,
                         "decoder": result.decoder},
            "scheduler_name": result.scheduler_name,
            "unet_calls": result.unet_calls,
            "dropped_words": result.encoding.dropped_words,
            "tokens": _encoding_dict(result.encoding),
            "text_embeddings": runtime.read_f32(result.text_embeddings) if explain else None,
            "text_shape": list(result.text_embeddings.shape),
            # the final latent: the explainer's, and what "redraw with the VAE" draws again (64 KB at 512²)
            "latents": runtime.read_f32(result.latents),
            "latent_shape": list(result.latents.shape),
            "decoder": result.decoder,
            "decoder_label": DECODERS[result.decoder],
            "has_attention": self.pipeline.has_attention(),
            "start": _start_dict(result.start, s, runtime),
            "modified_code": sorted(k for k in ("guidance", "step") if edited and code.get(k) is not None),
        }


def is_last_call(call, steps: int) -> bool:
    """The run's last UNet call: the last part of the last step (a run from a picture ends there too)."""
    return call.step == steps - 1 and call.part == call.parts - 1


def _start_dict(start, s: Settings, runtime) -> dict | None:
    """Where a run from a picture started, for the timeline (steps before start_step are skipped)
    and the forward-process view; None for a run from noise."""
    if start is None:
        return None
    return {"strength": s.strength, "start_step": start.start_step, "start_index": start.start_index,
            "steps_run": start.steps_run, "t_start": start.t_start, "signal": start.signal, "noise": start.noise,
            "init_latent": runtime.read_f32(start.init_latent), "shape": list(start.init_latent.shape),
            "width": s.init_image.width, "height": s.init_image.height,
            "transparent_pixels": s.init_image.transparent_pixels}


def _code_error(err: CodeError) -> dict:
    return {"cancelled": False, "code_error": {"part": err.part, "line": err.line, "message": str(err)}}


def _encoding_dict(enc) -> dict:
    return {"ids": enc.ids, "tokens": enc.tokens, "length": enc.length,
            "max_length": enc.max_length, "dropped_words": enc.dropped_words, "dropped_note": enc.dropped_note(),
            "words": enc.words, "word_ids": enc.word_ids}


def schedulers() -> dict:
    """The scheduler menu (ids, names users know, one sentence each): the page's one source."""
    return catalogue()


def _field_of(message: str) -> str:
    if message.startswith("karras"):
        return "karras"
    if message.startswith("LCM allows") or "needs at least" in message:
        return "steps"
    if message.startswith("strength"):
        return "strength"
    if message.startswith("init_image") or "VAE encoder" in message:
        return "init_image"
    for field in ("seed", "steps", "guidance", "scheduler", "prompt"):
        if message.startswith(field) or f" {field} " in message[:40]:
            return field
    return ""
