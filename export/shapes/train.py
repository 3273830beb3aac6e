"""`python -m export train-tiny OUT [--minutes N]`: train the default model from scratch, on CPU.

The model (see `model`) is a real Stable Diffusion pipeline, trained on the captioned
scenes of `scenes` in the two stages SD itself was trained in:

1. the VAE learns to compress 64x64 pictures to 8x8x8 latents (MSE + L1, a tiny KL term; the
   `sharp-vae` config adds an L1 term on image gradients, which keeps small stars pointed);
2. the picture latents are encoded ONCE and kept in memory, then the text encoder and the UNet
   learn together to predict the noise added to them (epsilon prediction, SD's scaled-linear
   1000-step schedule, min-SNR loss weighting), with 10 % of captions dropped to "" so that
   classifier-free guidance works. The noisiest timesteps, where the layout is decided, get a
   share of each batch and a floor on their weight: without them the model ignores position.

Budgeting is by iterations, not by wall time: a few timed steps of each stage measure this
machine's speed, and the iteration counts that fit `--minutes` are fixed up front (and written
to OUT/checkpoint/plan.json) so that the learning-rate schedules are planned and a resumed run
continues the same plan. Every batch is drawn from a generator seeded by (seed, stage, step),
so a run with the same plan is reproducible and resuming gives the same model as not stopping.
If the machine turns out slower than measured, a stage stops at its deadline instead of
overrunning the budget (the report says so).

The result is a diffusers folder (StableDiffusionPipeline.save_pretrained, real CLIP tokenizer)
plus `sdlens_extras.json` (starter prompts, prompt pairs, defaults) for `export convert`, and
`sdlens_train.json` with what was measured.
"""

from __future__ import annotations

import copy
import json
import math
import os
import random
import shutil
import sys
import time
from pathlib import Path

from sdlens.errors import SdlensError

from . import scenes
from .model import CONFIGS, ModelConfig, build_text_encoder, build_unet, build_vae
from .world import SHAPES, World, world as world_named
from ..tiny import SD_SCHEDULER_CONFIG

CHECKPOINT_EVERY_S = 120
VAE_SHARE = 0.2  # of the budget; the rest goes to the UNet and text encoder
CROP_SHARE = 0.8  # of the VAE steps, on crops; the last fifth on whole pictures
SPEED_MARGIN = 0.8  # plan for 80 % of the measured speed: the CPU is shared
CFG_DROPOUT = 0.1
MIN_SNR_GAMMA = 5.0
EMA_DECAY = 0.999
MIN_STEPS = 4  # a stage never stops at its deadline before this (so a starved test run still trains)
CURVE_EVERY = 50  # steps per learning-curve line (when a curve file is given)


def _lr(step: int, total: int, peak: float, warmup: int) -> float:
    """Linear warm-up, then cosine decay to 5 % of the peak."""
    if step < warmup:
        return peak * (step + 1) / warmup
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    return peak * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * progress)))


def _generator(seed: int, stage: str, step: int):
    import torch

    g = torch.Generator().manual_seed((seed * 1_000_003 + hash_stage(stage)) * 10_000_019 + step)
    return g


def hash_stage(stage: str) -> int:
    return sum((i + 1) * ord(c) for i, c in enumerate(stage))  # stable across runs (unlike hash())


def _unet_optimizers(unet, text_encoder, lr: float):
    """AdamW for the UNet and text encoder; SparseAdam for the 49,408-row token embedding, whose
    gradient is made sparse: captions use a few dozen tokens, and a dense Adam update of all 3.2M
    embedding weights took a fifth of each step."""
    import torch

    embedding = text_encoder.text_model.embeddings.token_embedding
    embedding.sparse = True
    dense = [p for p in list(unet.parameters()) + list(text_encoder.parameters()) if p is not embedding.weight]
    return [torch.optim.AdamW(dense, lr=lr, weight_decay=0.0), torch.optim.SparseAdam([embedding.weight], lr=lr)]


def _to_tensor(images):
    """uint8 (n, h, w, 3) -> float (n, 3, h, w) in [-1, 1], as SD's VAE expects."""
    import torch

    return torch.from_numpy(images).permute(0, 3, 1, 2).float().div(127.5).sub(1.0)


def vae_loss(y, x, edge_weight: float = 0.0):
    """The VAE's reconstruction loss of pictures y against x (both in [-1, 1])."""
    import torch.nn.functional as F

    error = y - x
    # Plus the error of each 8x8 patch's mean colour: pixel losses are dominated by edges, and
    # without this term a VAE learns the shapes long before it learns their colours.
    loss = error.pow(2).mean() + 0.5 * error.abs().mean() + 4.0 * F.avg_pool2d(error, 8).pow(2).mean()
    if edge_weight:
        # The error of the picture's gradients: zero for an even colour shift, large where an
        # outline is misplaced or rounded off.
        loss = loss + edge_weight * (error.diff(dim=2).abs().mean() + error.diff(dim=3).abs().mean()) / 2
    return loss


class Trainer:
    def __init__(self, out: Path, cfg: ModelConfig, minutes: float, seed: int = 0, threads: int | None = None,
                 vae_steps: int | None = None, unet_steps: int | None = None, vae_crop_steps: int | None = None,
                 quiet: bool = False, world: World = SHAPES, curve: Path | None = None):
        import torch

        self.out, self.cfg, self.seed, self.quiet = Path(out), cfg, seed, quiet
        self.world, self.curve = world, (Path(curve) if curve else None)
        self.budget_s = minutes * 60
        self.fixed_steps = (vae_steps, unet_steps, vae_crop_steps)
        self.ckpt_dir = self.out / "checkpoint"
        self.started = time.perf_counter()
        self.elapsed_before = 0.0
        if threads:
            torch.set_num_threads(threads)
        self.threads = torch.get_num_threads()

    # -- bookkeeping ------------------------------------------------------------------------------
    def elapsed(self) -> float:
        return self.elapsed_before + time.perf_counter() - self.started

    def log(self, text: str) -> None:
        if not self.quiet:
            print(text, file=sys.stderr, flush=True)

    def _autocast(self):
        import torch

        return torch.autocast("cpu", dtype=torch.bfloat16, enabled=self.world.bf16_autocast)

    def _log_curve(self, stage: str, step: int, losses: list[float]) -> None:
        """Append the mean loss of the last CURVE_EVERY steps to the curve file (one JSON line), so
        whoever resumes a long run can see whether it is still learning."""
        if self.curve is None or not losses:
            return
        recent = losses[-CURVE_EVERY:]
        line = {"stage": stage, "step": step, "loss": round(sum(recent) / len(recent), 5),
                "elapsed_s": round(self.elapsed(), 1), "config": self.cfg.name, "seed": self.seed}
        self.curve.parent.mkdir(parents=True, exist_ok=True)
        with self.curve.open("a", encoding="utf-8") as f:
            f.write(json.dumps(line) + "\n")

    def _save_state(self, state: dict) -> None:
        import torch

        state = {**state, "elapsed": self.elapsed()}
        tmp = self.ckpt_dir / "state.pt.tmp"
        torch.save(state, tmp)
        os.replace(tmp, self.ckpt_dir / "state.pt")

    def _load_state(self) -> dict | None:
        import torch

        path = self.ckpt_dir / "state.pt"
        if not path.is_file():
            return None
        state = torch.load(path, weights_only=False)
        self.elapsed_before = state["elapsed"]
        return state

    # -- the run ----------------------------------------------------------------------------------
    def run(self) -> dict:
        import torch

        from ..clip_vocab import write_clip_tokenizer
        from transformers import CLIPTokenizerFast

        self.ckpt_dir.mkdir(parents=True, exist_ok=True)
        plan_path = self.ckpt_dir / "plan.json"
        config_path = self.ckpt_dir / "config.json"
        if config_path.is_file() and json.loads(config_path.read_text()) != self._run_identity():
            raise SdlensError(f"{self.out} holds a checkpoint of a different run (config or seed); pass --force to start over")
        config_path.write_text(json.dumps(self._run_identity(), indent=2) + "\n")

        write_clip_tokenizer(self.ckpt_dir / "tokenizer")
        self.tokenizer = CLIPTokenizerFast.from_pretrained(self.ckpt_dir / "tokenizer")
        state = self._load_state()
        if state is not None:
            self.log(f"resuming from {self.ckpt_dir} (stage {state['stage']}, step {state['step']}, "
                     f"{state['elapsed'] / 60:.1f} min spent)")

        torch.manual_seed(self.seed)
        self.vae = build_vae(self.cfg)
        with torch.no_grad():
            # Start the posterior narrow (std ~0.05, not 1): with SD's tiny KL weight the encoder
            # otherwise spends thousands of steps shouting over unit noise, and the first thing
            # the noise drowns is colour (a 3000-step run decoded purple, red and green as blue
            # and orange at 23.9 dB PSNR).
            self.vae.quant_conv.bias[self.cfg.latent_channels:].fill_(-6.0)
        torch.manual_seed(self.seed + 1)
        self.unet = build_unet(self.cfg)
        torch.manual_seed(self.seed + 2)
        self.text_encoder = build_text_encoder(self.cfg)

        if plan_path.is_file():
            plan = json.loads(plan_path.read_text())
        else:
            plan = self._plan()
            plan_path.write_text(json.dumps(plan, indent=2) + "\n")
        self.plan = plan
        self.log(f"plan: VAE {plan['vae_steps']} steps, UNet {plan['unet_steps']} steps "
                 f"(measured {plan['rates']}); {self.threads} threads")

        report = {"plan": plan, "config": self.cfg.as_dict(), "seed": self.seed, "threads": self.threads}
        if state is None or state["stage"] == "vae":
            report["vae"] = self._train_vae(state)
            state = None
        else:
            self.vae.load_state_dict(state["vae"])
            report["vae"] = state["vae_report"]
        self.vae.eval().requires_grad_(False)

        latents, train_scenes, scaling = self._latents(report["vae"])
        report["vae"]["scaling_factor"] = scaling
        report["unet"] = self._train_unet(state, latents, train_scenes, scaling, report["vae"])
        report["wall_seconds"] = self.elapsed()
        self._write_pipeline(scaling, report)
        shutil.rmtree(self.ckpt_dir, ignore_errors=True)
        return report

    def _run_identity(self) -> dict:
        return json.loads(json.dumps({"config": self.cfg.as_dict(), "seed": self.seed}))  # tuples as lists

    # -- planning ---------------------------------------------------------------------------------
    def _plan(self) -> dict:
        """Time a few steps of each stage on throw-away copies; fix the iteration counts."""
        import torch

        vae, unet, te = copy.deepcopy(self.vae), copy.deepcopy(self.unet), copy.deepcopy(self.text_encoder)
        opt_v = torch.optim.AdamW(vae.parameters(), 1e-4)
        opt_u = _unet_optimizers(unet, te, 1e-4)

        def timed(fn, n=3):
            fn(0)
            t0 = time.perf_counter()
            for i in range(n):
                fn(i + 1)
            return n / (time.perf_counter() - t0)

        rates = {
            "vae_crop_steps_per_s": timed(lambda i: self._vae_step(vae, opt_v, i, crop=True, lr=1e-4)),
            "vae_full_steps_per_s": timed(lambda i: self._vae_step(vae, opt_v, i, crop=False, lr=1e-4)),
        }
        n = min(256, self.cfg.scenes)
        t0 = time.perf_counter()
        with torch.no_grad():
            vae.encode(_to_tensor(self.world.scenes.render_many([s for s, _ in self.world.scenes.dataset(n, seed=self.seed)])))
        rates["encode_images_per_s"] = n / (time.perf_counter() - t0)
        fake = torch.randn(min(64, self.cfg.scenes), self.cfg.latent_channels, self.cfg.latent_size, self.cfg.latent_size)
        fake_scenes = [s for s, _ in self.world.scenes.dataset(len(fake), seed=self.seed)]
        rates["unet_steps_per_s"] = timed(lambda i: self._unet_step(unet, te, opt_u, fake, fake_scenes, i, lr=1e-4))

        spent = self.elapsed()
        left = max(0.0, self.budget_s - spent)
        encode_s = self.cfg.scenes / rates["encode_images_per_s"] + 5
        save_s = 5 + 0.01 * self.budget_s
        vae_s = VAE_SHARE * left
        unet_s = max(0.0, left - vae_s - encode_s - save_s)
        seconds_per_vae_step = (CROP_SHARE / rates["vae_crop_steps_per_s"]
                                + (1 - CROP_SHARE) / rates["vae_full_steps_per_s"])
        vae_steps = self.fixed_steps[0] or max(MIN_STEPS, int(SPEED_MARGIN * vae_s / seconds_per_vae_step))
        unet_steps = self.fixed_steps[1] or max(MIN_STEPS, int(SPEED_MARGIN * unet_s * rates["unet_steps_per_s"]))
        # The crop/whole split depends on the step count only, so fixed steps give the same model.
        crop_steps = self.fixed_steps[2] if self.fixed_steps[2] is not None else round(CROP_SHARE * vae_steps)
        return {
            "budget_s": self.budget_s, "vae_steps": vae_steps, "vae_crop_steps": crop_steps,
            "unet_steps": unet_steps, "vae_deadline_s": spent + vae_s,
            "unet_deadline_s": self.budget_s - save_s,
            "rates": {k: round(v, 2) for k, v in rates.items()},
        }

    # -- stage 1: the VAE -------------------------------------------------------------------------
    def _vae_batch(self, step: int, crop: bool):
        rng = random.Random(f"{self.seed}/vae/{step}")
        n = self.cfg.vae_batch if crop else max(1, self.cfg.vae_batch // 2)
        batch = [self.world.scenes.sample_scene(rng, "train") for _ in range(n)]
        images = _to_tensor(self.world.scenes.render_many(batch))
        if crop:
            c, size, f = self.cfg.vae_crop, self.cfg.image_size, 8
            crops = []
            for img in images:
                # Aligned to the latent grid, so a crop's latents are the picture's latents.
                x, y = rng.randrange(0, size - c + 1, f), rng.randrange(0, size - c + 1, f)
                crops.append(img[:, y:y + c, x:x + c])
            images = __import__("torch").stack(crops)
        return images

    def _vae_step(self, vae, opt, step: int, crop: bool, lr: float) -> float:
        x = self._vae_batch(step, crop)
        g = _generator(self.seed, "vae-noise", step)
        import torch

        with self._autocast():
            posterior = vae.encode(x).latent_dist
        if self.world.bf16_autocast:  # sample z and take the KL in fp32
            from diffusers.models.autoencoders.vae import DiagonalGaussianDistribution

            posterior = DiagonalGaussianDistribution(posterior.parameters.float())
        z = posterior.mean + posterior.std * torch.randn(posterior.mean.shape, generator=g)
        with self._autocast():
            y = vae.decode(z).sample.float()
        loss = vae_loss(y, x, self.cfg.vae_edge_weight) + 1e-5 * posterior.kl().mean() / z[0].numel()
        for group in opt.param_groups:
            group["lr"] = lr
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(vae.parameters(), 1.0)
        opt.step()
        return loss.item()

    def _train_vae(self, state: dict | None) -> dict:
        import torch
        from tqdm.auto import tqdm

        plan = self.plan
        opt = torch.optim.AdamW(self.vae.parameters(), lr=1e-3, weight_decay=0.0)
        start = 0
        if state is not None:
            self.vae.load_state_dict(state["vae"])
            opt.load_state_dict(state["opt"])
            start = state["step"]
        self.vae.train()
        total, stopped_at, losses = plan["vae_steps"], None, []
        last_save = time.perf_counter()
        with tqdm(total=total, initial=start, desc="VAE", unit="it", disable=self.quiet, file=sys.stderr,
                  dynamic_ncols=True) as bar:
            for step in range(start, total):
                if step >= MIN_STEPS and self.elapsed() > plan["vae_deadline_s"] + 30:
                    stopped_at = step
                    self.log(f"VAE: deadline reached, stopping at step {step} of {total}")
                    break
                crop = step < plan["vae_crop_steps"]
                loss = self._vae_step(self.vae, opt, step, crop, _lr(step, total, 1e-3, min(200, total // 10 + 1)))
                losses.append(loss)
                if (step + 1) % CURVE_EVERY == 0:
                    self._log_curve("vae", step + 1, losses)
                bar.update(1)
                if step % 10 == 0:
                    bar.set_postfix(loss=f"{loss:.4f}", crop=crop)
                if time.perf_counter() - last_save > CHECKPOINT_EVERY_S:
                    self._save_state({"stage": "vae", "step": step + 1, "vae": self.vae.state_dict(),
                                      "opt": opt.state_dict()})
                    last_save = time.perf_counter()
        self.vae.eval()
        psnr = self._psnr()
        self.log(f"VAE: PSNR {psnr:.2f} dB on 256 held-back pictures")
        if self.curve is not None:
            with self.curve.open("a", encoding="utf-8") as f:
                f.write(json.dumps({"stage": "vae", "step": stopped_at or total, "psnr_db": round(psnr, 2),
                                    "elapsed_s": round(self.elapsed(), 1), "config": self.cfg.name}) + "\n")
        report = {"steps": stopped_at or total, "planned_steps": total, "psnr_db": round(psnr, 2),
                  "finished_at_s": round(self.elapsed(), 1)}
        self._save_state({"stage": "unet", "step": 0, "vae": self.vae.state_dict(), "vae_report": report})
        return report

    def _psnr(self) -> float:
        import torch

        val = [s for s, _ in self.world.scenes.dataset(256, seed=self.seed + 999)]
        x = _to_tensor(self.world.scenes.render_many(val))
        with torch.no_grad():
            y = torch.cat([self.vae.decode(self.vae.encode(x[i:i + 64]).latent_dist.mean).sample
                           for i in range(0, len(x), 64)]).clamp(-1, 1)
        mse = ((y - x) / 2).pow(2).mean().item()
        return 10 * math.log10(1.0 / max(mse, 1e-12))

    # -- the latents, once -------------------------------------------------------------------------
    def _latents(self, vae_report: dict):
        """Encode the UNet's training pictures once (posterior means); scale them to unit variance,
        the way SD's 0.18215 does. Cached in the checkpoint folder."""
        import torch
        from tqdm.auto import tqdm

        train = [s for s, _ in self.world.scenes.dataset(self.cfg.scenes, seed=self.seed)]
        path = self.ckpt_dir / "latents.pt"
        if path.is_file():
            latents = torch.load(path)
        else:
            chunks = []
            with torch.no_grad(), tqdm(total=len(train), desc="encode", unit="img", disable=self.quiet,
                                       file=sys.stderr, dynamic_ncols=True) as bar:
                for i in range(0, len(train), 256):
                    x = _to_tensor(self.world.scenes.render_many(train[i:i + 256]))
                    chunks.append(self.vae.encode(x).latent_dist.mean)
                    bar.update(len(x))
            latents = torch.cat(chunks)
            torch.save(latents, path)
        scaling = float(1.0 / latents.std())
        return latents * scaling, train, scaling

    # -- stage 2: text encoder + UNet -------------------------------------------------------------
    def _captions(self, batch_scenes, step: int) -> list[str]:
        rng = random.Random(f"{self.seed}/caption/{step}")
        return ["" if rng.random() < CFG_DROPOUT else self.world.scenes.caption(s, rng) for s in batch_scenes]

    def _unet_step(self, unet, te, opt, latents, train_scenes, step: int, lr: float) -> float:
        import torch
        import torch.nn.functional as F

        g = _generator(self.seed, "unet", step)
        n = self.cfg.unet_batch
        index = torch.randint(0, len(latents), (n,), generator=g)
        z0 = latents[index]
        ids = self.tokenizer(self._captions([train_scenes[i] for i in index.tolist()], step), padding="max_length",
                             max_length=77, truncation=True, return_tensors="pt").input_ids
        with self._autocast():
            context = te(ids)[0]
        t = torch.randint(0, 1000, (n,), generator=g)
        high = int(round(self.cfg.high_noise_share * n))
        if high:
            t[:high] = torch.randint(self.cfg.high_noise_from, 1000, (high,), generator=g)
        noise = torch.randn(z0.shape, generator=g)
        ab = self.alphas_cumprod[t].view(-1, 1, 1, 1)
        noisy = ab.sqrt() * z0 + (1 - ab).sqrt() * noise
        with self._autocast():
            pred = unet(noisy, t, context).sample.float()
        snr = ab.view(-1) / (1 - ab.view(-1))
        # min-SNR-gamma (faster, steadier training), in epsilon terms; the floor keeps the
        # noisiest steps, where layout is decided, from being weighted almost to nothing.
        weight = torch.clamp(snr, min=self.cfg.x0_weight_floor, max=MIN_SNR_GAMMA) / snr
        loss = (weight * F.mse_loss(pred, noise, reduction="none").mean(dim=(1, 2, 3))).mean()
        for o in opt:
            for group in o.param_groups:
                group["lr"] = lr
            o.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_([p for group in opt[0].param_groups for p in group["params"]], 1.0)
        for o in opt:
            o.step()
        return loss.item()

    @property
    def alphas_cumprod(self):
        import torch

        if not hasattr(self, "_alphas_cumprod"):
            c = SD_SCHEDULER_CONFIG
            betas = torch.linspace(c["beta_start"] ** 0.5, c["beta_end"] ** 0.5, c["num_train_timesteps"],
                                   dtype=torch.float64) ** 2
            self._alphas_cumprod = torch.cumprod(1 - betas, 0).float()
        return self._alphas_cumprod

    def _train_unet(self, state, latents, train_scenes, scaling, vae_report) -> dict:
        import torch
        from tqdm.auto import tqdm

        plan = self.plan
        opt = _unet_optimizers(self.unet, self.text_encoder, 5e-4)
        ema_unet, ema_te = copy.deepcopy(self.unet).requires_grad_(False), copy.deepcopy(self.text_encoder).requires_grad_(False)
        start = 0
        if state is not None and state["stage"] == "unet" and "unet" in state:
            self.unet.load_state_dict(state["unet"])
            self.text_encoder.load_state_dict(state["text_encoder"])
            ema_unet.load_state_dict(state["ema_unet"])
            ema_te.load_state_dict(state["ema_text_encoder"])
            for o, saved in zip(opt, state["opt"]):
                o.load_state_dict(saved)
            start = state["step"]
        pairs = [(e, p) for ema, live in ((ema_unet, self.unet), (ema_te, self.text_encoder))
                 for e, p in zip(ema.parameters(), live.parameters())]
        self.unet.train()
        self.text_encoder.train()
        total, stopped_at, losses = plan["unet_steps"], None, []
        last_save = time.perf_counter()
        steps_started, t0 = start, time.perf_counter()

        def save(step):
            self._save_state({"stage": "unet", "step": step, "vae": self.vae.state_dict(), "vae_report": vae_report,
                              "unet": self.unet.state_dict(), "text_encoder": self.text_encoder.state_dict(),
                              "ema_unet": ema_unet.state_dict(), "ema_text_encoder": ema_te.state_dict(),
                              "opt": [o.state_dict() for o in opt]})

        with tqdm(total=total, initial=start, desc="UNet+text", unit="it", disable=self.quiet, file=sys.stderr,
                  dynamic_ncols=True) as bar:
            for step in range(start, total):
                if step >= MIN_STEPS and self.elapsed() > plan["unet_deadline_s"]:
                    stopped_at = step
                    self.log(f"UNet: deadline reached, stopping at step {step} of {total}")
                    break
                loss = self._unet_step(self.unet, self.text_encoder, opt, latents, train_scenes, step,
                                       _lr(step, total, 5e-4, min(500, total // 10 + 1)))
                decay = min(EMA_DECAY, (1 + step) / (10 + step))
                with torch.no_grad():
                    for e, p in pairs:
                        e.lerp_(p, 1 - decay)
                losses.append(loss)
                if (step + 1) % CURVE_EVERY == 0:
                    self._log_curve("unet", step + 1, losses)
                bar.update(1)
                if step % 10 == 0:
                    bar.set_postfix(loss=f"{sum(losses[-100:]) / len(losses[-100:]):.4f}")
                if time.perf_counter() - last_save > CHECKPOINT_EVERY_S:
                    save(step + 1)
                    last_save = time.perf_counter()
        done = stopped_at if stopped_at is not None else total
        rate = (done - steps_started) / max(1e-9, time.perf_counter() - t0)
        self.unet, self.text_encoder = ema_unet.eval(), ema_te.eval()
        self.text_encoder.text_model.embeddings.token_embedding.sparse = False
        return {"steps": done, "planned_steps": total, "steps_per_s": round(rate, 2),
                "final_loss_mean_last_500": round(sum(losses[-500:]) / max(1, len(losses[-500:])), 4),
                "batch": self.cfg.unet_batch, "finished_at_s": round(self.elapsed(), 1)}

    # -- output -----------------------------------------------------------------------------------
    def _write_pipeline(self, scaling: float, report: dict) -> None:
        from diffusers import DDIMScheduler, StableDiffusionPipeline
        from transformers import CLIPTokenizer

        self.vae.register_to_config(scaling_factor=scaling)
        pipe = StableDiffusionPipeline(
            unet=self.unet, vae=self.vae, text_encoder=self.text_encoder,
            tokenizer=CLIPTokenizer.from_pretrained(self.ckpt_dir / "tokenizer"),
            scheduler=DDIMScheduler.from_config(SD_SCHEDULER_CONFIG),
            safety_checker=None, feature_extractor=None, requires_safety_checker=False,
        )
        pipe.save_pretrained(self.out, safe_serialization=True)
        (self.out / "sdlens_extras.json").write_text(json.dumps(self.world.extras(self.cfg.scenes), indent=2) + "\n")
        (self.out / "sdlens_train.json").write_text(json.dumps(report, indent=2) + "\n")


def extras(scene_count: int = CONFIGS["sharp-vae"].scenes) -> dict:
    """What the app shows next to the model: a description, its model card (what it was trained on,
    every word it has read, the held-out pairs), prompts to start from, and pairs of prompts that
    differ in one attribute (to compare side by side)."""
    return {
        "model_card": model_card(scene_count),
        "description": ("A small Stable Diffusion (real SD architecture: CLIP text encoder, UNet, VAE) "
                        "trained from scratch on one CPU core (an hour or two), on rendered pictures of simple "
                        "shapes: circle, square, triangle, star, heart; nine colours; small or big; nine "
                        "positions; five backgrounds. Some colour+shape pairs (e.g. a red star) were never "
                        "shown in training."),
        "starter_prompts": [
            "a big red circle in the center, white background",
            "a small blue square on the left, beige background",
            "a yellow star at the top right, black background",
            "a big pink heart at the bottom, light blue background",
            "a green circle on the left and an orange square on the right, gray background",
            "a red star in the center, white background",
        ],
        "prompt_pairs": [
            ["a big red circle in the center, white background", "a big blue circle in the center, white background"],
            ["a small green square on the left, beige background", "a small green square on the right, beige background"],
            ["a big purple triangle in the center, black background", "a big purple heart in the center, black background"],
            ["a small orange circle at the top, white background", "a big orange circle at the top, white background"],
            ["a yellow heart in the center, gray background", "a yellow heart in the center, light blue background"],
            ["a red circle on the left and a blue square on the right, white background",
             "a blue circle on the left and a red square on the right, white background"],
        ],
        # The colour+shape pairs training never showed: the page teaches generalisation with them.
        "held_out_pairs": sorted([colour, shape] for colour, shape in scenes.HELD_OUT),
        # What the page's CLIP lesson says about this text encoder (it is not CLIP's contrastive one).
        "text_encoder_training": "its text encoder has CLIP's design and CLIP's 49,408-token vocabulary, but it was not trained this way: it learned from scratch together with the UNet, from the denoising task alone (there was no picture network to contrast with), so its numbers mean whatever helped the UNet draw the training shapes.",
        "defaults": {"steps": 25, "guidance": 7.5, "scheduler": "ddim"},
    }


def model_card(scene_count: int) -> dict:
    """The default model's limits, from its world (scenes.py): the page shows them by the model
    picker and checks a prompt's words against `vocabulary` before a run."""
    held_out = sorted([colour, shape] for colour, shape in scenes.HELD_OUT)
    return {
        "trained_on": (f"{scene_count:,} computer-drawn {scenes.IMAGE_SIZE}×{scenes.IMAGE_SIZE} pictures of one or "
                       f"two flat shapes on a plain background, each with a caption that names what is drawn. "
                       f"Shapes: {', '.join(scenes.SHAPES)}. Colours: {', '.join(scenes.COLOURS)}. "
                       f"Backgrounds: {', '.join(scenes.BACKGROUNDS)}. Sizes: small or big. Nine positions."),
        "limits": ("It has never seen anything else: no animals, people, photos or textures. Words outside its "
                   "vocabulary still become tokens, but the model never learnt what they mean, so they change "
                   "the picture unpredictably or not at all."),
        "vocabulary": scenes.vocabulary(),
        "held_out": held_out,
        "held_out_why": ("These colour+shape pairs never appeared in a training picture or caption, although each "
                         "colour and each shape did, with other partners. If the model draws a red star anyway, it "
                         "has combined the meaning of “red” and “star”, not recalled a picture it has seen."),
    }


def train_tiny(out: Path, minutes: float = 60.0, config: str | None = None, seed: int = 0, threads: int | None = None,
               force: bool = False, vae_steps: int | None = None, unet_steps: int | None = None,
               vae_crop_steps: int | None = None, quiet: bool = False, world: str = "shapes",
               curve: Path | None = None) -> dict:
    """Train a world's model (config: one of the world's; default its first, "full")."""
    out = Path(out)
    the_world = world_named(world)
    config = config or next(iter(the_world.configs))
    if config not in the_world.configs:
        raise SdlensError(f"unknown config {config!r} for the {world} world; choose from {', '.join(the_world.configs)}")
    if out.exists() and force:
        shutil.rmtree(out)
    if (out / "model_index.json").is_file():
        raise SdlensError(f"{out} already holds a trained pipeline; pass --force to train again")
    out.mkdir(parents=True, exist_ok=True)
    return Trainer(out, the_world.configs[config], minutes, seed=seed, threads=threads, vae_steps=vae_steps,
                   unet_steps=unet_steps, vae_crop_steps=vae_crop_steps, quiet=quiet, world=the_world,
                   curve=curve).run()
