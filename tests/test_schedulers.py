"""The pure-Python schedulers against diffusers' own classes, step by step.

Each comparison runs the same sampling loop on both sides: the same initial latent (drawn from
sdlens.rng.Generator and from torch.Generator with the same seed), and at every step a fake
"UNet" output that depends on the scaled latent (0.3·input + 0.1·fixed noise), so that any
error in scale_model_input, the update or the multistep history shows up in the next step.
"""

from __future__ import annotations

import ast
import math
import sys
from pathlib import Path

import pytest

from sdlens.errors import SdlensError
from sdlens.rng import Generator
from sdlens.schedulers import (
    DIFFUSERS_CLASSES,
    KARRAS_SCHEDULERS,
    SCHEDULERS,
    StepResult,
    catalogue,
    display_name,
    make_scheduler,
)
from sdlens.schedulers.lms import lms_coefficient

np = pytest.importorskip("numpy")
from sdlens.cpython.runtime import OnnxRuntime  # noqa: E402  (needs numpy + onnxruntime)

try:
    import torch
    import diffusers

    REFERENCE = {
        "ddim": diffusers.DDIMScheduler,
        "euler": diffusers.EulerDiscreteScheduler,
        "euler_a": diffusers.EulerAncestralDiscreteScheduler,
        "dpmpp_2m": diffusers.DPMSolverMultistepScheduler,
        "lms": diffusers.LMSDiscreteScheduler,
        "pndm": diffusers.PNDMScheduler,
        "heun": diffusers.HeunDiscreteScheduler,
        "unipc": diffusers.UniPCMultistepScheduler,
        "lcm": diffusers.LCMScheduler,
        "ddpm": diffusers.DDPMScheduler,
    }
except ImportError:  # the comparisons need the `export` extra (torch + diffusers)
    torch = diffusers = None
    REFERENCE = {}

# diffusers' np.array(torch tensor) calls warn under numpy 2
pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")

needs_diffusers = pytest.mark.skipif(not REFERENCE, reason="torch and diffusers are not installed")

SHAPE = (1, 4, 8, 8)
STEPS = [1, 2, 3, 7, 13, 25, 50]
SPACINGS = ["leading", "trailing", "linspace"]
NAMES = ["ddim", "euler", "euler_a", "dpmpp_2m", "lms", "pndm", "heun", "unipc", "lcm", "ddpm"]
#: schedulers that draw fresh noise from the run's generator
NOISY = ("euler_a", "ddpm", "lcm")
#: where diffusers' use_karras_sigmas exists
KARRAS = ["euler", "lms", "heun", "dpmpp_2m", "unipc"]

# Stable Diffusion 1.x/2.x (scaled_linear, steps_offset 1) and the DDPM default (linear).
BETAS = {
    "scaled_linear": {
        "beta_start": 0.00085,
        "beta_end": 0.012,
        "beta_schedule": "scaled_linear",
        "num_train_timesteps": 1000,
        "steps_offset": 1,
        "clip_sample": False,
        "set_alpha_to_one": False,
        "skip_prk_steps": True,  # a PNDM key: ignored
        "trained_betas": None,
    },
    "linear": {
        "beta_start": 0.0001,
        "beta_end": 0.02,
        "beta_schedule": "linear",
        "num_train_timesteps": 1000,
        "steps_offset": 0,
        "clip_sample": False,
        "set_alpha_to_one": True,
    },
}

SD_TURBO = {
    "beta_end": 0.012,
    "beta_schedule": "scaled_linear",
    "beta_start": 0.00085,
    "clip_sample": False,
    "interpolation_type": "linear",
    "num_train_timesteps": 1000,
    "prediction_type": "epsilon",
    "set_alpha_to_one": False,
    "sample_max_value": 1.0,
    "skip_prk_steps": True,
    "steps_offset": 1,
    "timestep_spacing": "trailing",
    "trained_betas": None,
    "use_karras_sigmas": False,
}

OPS = OnnxRuntime()
RTOL = 1e-5


def close(ours, ref, what: str) -> None:
    """max |ours - ref| <= RTOL · max(1, max |ref|)."""
    ours = np.asarray(ours, dtype=np.float64)
    ref = np.asarray(ref.detach().numpy() if hasattr(ref, "detach") else ref, dtype=np.float64)
    assert ours.shape == ref.shape, what
    scale = max(1.0, float(np.abs(ref).max()))
    err = float(np.abs(ours - ref).max())
    assert err <= RTOL * scale, f"{what}: max abs error {err:.3g} > {RTOL} x {scale:.3g}"


def max_ulps(ours, ref) -> float:
    """The largest difference between two float32 sequences, in float32 ulps of the reference."""
    ours = np.asarray(ours, dtype=np.float64)
    ref32 = np.asarray(ref, dtype=np.float32)
    return float((np.abs(ours - ref32.astype(np.float64)) / np.spacing(np.abs(ref32)).astype(np.float64)).max())


def reference(name: str, config: dict):
    import logging

    logging.getLogger("diffusers").setLevel(logging.ERROR)
    return REFERENCE[name].from_config(config)


def reference_x0(name, ref, res_r):
    """diffusers' x̂_0 of the step just taken (None where the class does not expose one)."""
    if name in ("dpmpp_2m", "unipc"):
        return ref.model_outputs[-1]
    if name == "lcm":
        return res_r.denoised
    if name == "pndm":
        return None
    return res_r.pred_original_sample


def run_both(name: str, config: dict, steps: int, seed: int = 7):
    """Run our scheduler and diffusers' side by side, comparing every intermediate result."""
    ours = make_scheduler(name, config)
    ours.set_timesteps(steps)
    ref = reference(name, config)
    ref.set_timesteps(steps)

    if ours.karras and name in ("euler", "lms", "heun"):
        # fractional timesteps from log(sigma): numpy's float32 log and torch's float32 sqrt of
        # the training sigmas can each be one ulp off, which moves a timestep by up to ~1e-3
        np.testing.assert_allclose(ours.timesteps, ref.timesteps.numpy(), rtol=0, atol=2e-3, err_msg="timesteps")
    else:
        assert ours.timesteps == [float(t) for t in ref.timesteps], "timesteps"
    assert math.isclose(ours.init_noise_sigma, float(ref.init_noise_sigma), rel_tol=3e-7), "init_noise_sigma"

    # Heun's second call divides (x - x̂_0) by a small sigma: in float32 tensors diffusers loses up
    # to ~1e-5 of the latent's size to cancellation there, ours (which combines the two slopes
    # exactly) does not. So Heun is checked against diffusers' same code on float64 tensors (its
    # tables stay float32), where both agree to ~1e-7.
    dtype = torch.float64 if name == "heun" else torch.float32
    gen, tgen = Generator(seed), torch.Generator().manual_seed(seed)
    x = OPS.combine([(ours.init_noise_sigma, OPS.floats(gen.randn(SHAPE), SHAPE))])
    xr = (torch.randn(SHAPE, generator=tgen) * ref.init_noise_sigma).to(dtype)
    close(x, xr, "initial latent")
    fixed = Generator(1234).randn(SHAPE)
    fixed_np, fixed_t = OPS.floats(fixed, SHAPE), torch.tensor(fixed, dtype=dtype).reshape(SHAPE)

    results = []
    assert len(ours.timesteps) == len(ref.timesteps)
    for i, t in enumerate(ref.timesteps):
        inp = ours.scale_model_input(x, i, OPS)
        inp_r = ref.scale_model_input(xr, t)
        close(inp, inp_r, f"scale_model_input at step {i}")
        out_model = OPS.combine([(0.3, inp), (0.1, fixed_np)])
        out_model_r = 0.3 * inp_r + 0.1 * fixed_t

        extra = {"generator": tgen} if name in NOISY else {}
        res = ours.step(out_model, i, x, OPS, generator=gen)
        res_r = ref.step(out_model_r, t, xr, **extra)
        assert isinstance(res, StepResult)
        x0_r = reference_x0(name, ref, res_r)
        if x0_r is not None:
            close(res.pred_original_sample, x0_r, f"pred_original_sample at step {i}")
        close(res.prev_sample, res_r.prev_sample, f"prev_sample at step {i}")
        results.append((x, out_model, res))
        x, xr = res.prev_sample, res_r.prev_sample
    return ours, ref, results


# --------------------------------------------------------------------------------------------
# against diffusers
# --------------------------------------------------------------------------------------------


@needs_diffusers
@pytest.mark.parametrize("steps", STEPS)
@pytest.mark.parametrize("spacing", SPACINGS)
@pytest.mark.parametrize("betas", list(BETAS))
@pytest.mark.parametrize("name", NAMES)
def test_matches_diffusers(name, betas, spacing, steps):
    config = {**BETAS[betas], "timestep_spacing": spacing}
    if name == "pndm" and betas == "linear" and steps < 4:
        # PNDM's Runge-Kutta warm-up (skip_prk_steps false) needs 4 steps; diffusers fails too
        with pytest.raises(SdlensError, match="at least 4 steps"):
            make_scheduler(name, config).set_timesteps(steps)
        with pytest.raises(ValueError):
            reference(name, config).set_timesteps(steps)
        return
    run_both(name, config, steps)


@needs_diffusers
@pytest.mark.parametrize("steps", [1, 2, 3, 13, 25])
@pytest.mark.parametrize("spacing", SPACINGS)
@pytest.mark.parametrize("name", NAMES)
def test_v_prediction(name, spacing, steps):
    run_both(name, {**BETAS["scaled_linear"], "prediction_type": "v_prediction", "timestep_spacing": spacing}, steps)


@needs_diffusers
@pytest.mark.parametrize("steps", [1, 3, 20])
@pytest.mark.parametrize("name", ["ddim", "euler", "dpmpp_2m", "lms", "heun", "unipc", "lcm", "ddpm"])
def test_sample_prediction(name, steps):
    run_both(name, {**BETAS["scaled_linear"], "prediction_type": "sample"}, steps)


@needs_diffusers
@pytest.mark.parametrize("name", NAMES)
def test_defaults_of_an_empty_config(name):
    # Missing keys take diffusers' defaults for that class (e.g. "linspace" for Euler, "leading" for
    # DDIM) -- except DDIM's and DDPM's clip_sample, off here (see test_unsupported_options_are_refused).
    run_both(name, {"clip_sample": False} if name in ("ddim", "ddpm") else {}, 10)


@needs_diffusers
@pytest.mark.parametrize("steps", [1, 2, 4])
def test_sd_turbo_euler(steps):
    ours, ref, results = run_both("euler", SD_TURBO, steps)
    if steps == 1:
        assert ours.timesteps == [999.0]
        assert ours.sigmas[1] == 0.0
        assert math.isclose(ours.init_noise_sigma, 14.614641, rel_tol=1e-6)
        # one step straight to the prediction: x_0 = x - sigma·ε
        res = results[0][2]
        assert res.coefficients["dt"] == -ours.sigmas[0]
        np.testing.assert_allclose(res.prev_sample, res.pred_original_sample, rtol=0, atol=1e-5)


@needs_diffusers
@pytest.mark.parametrize("prediction", ["epsilon", "v_prediction"])
@pytest.mark.parametrize("steps", [1, 2, 3, 13, 25])
@pytest.mark.parametrize("spacing", SPACINGS)
@pytest.mark.parametrize("name", KARRAS)
def test_karras_sigmas(name, spacing, steps, prediction):
    config = {**BETAS["scaled_linear"], "timestep_spacing": spacing, "prediction_type": prediction}
    ours, _, _ = run_both(name, {**config, "use_karras_sigmas": True}, steps)
    assert ours.karras
    # the setting gives the same schedule as the config flag
    s = make_scheduler(name, config, karras=True)
    s.set_timesteps(steps)
    assert s.timesteps == ours.timesteps and s.sigmas == ours.sigmas


@needs_diffusers
@pytest.mark.parametrize("steps", [4, 13])
@pytest.mark.parametrize("name", KARRAS)
def test_karras_sigmas_linear_betas(name, steps):
    run_both(name, {**BETAS["linear"], "use_karras_sigmas": True}, steps)


@needs_diffusers
def test_karras_sigma_range_from_the_config():
    run_both("euler", {**BETAS["scaled_linear"], "use_karras_sigmas": True, "sigma_min": 0.1, "sigma_max": 10.0}, 8)
    run_both("unipc", {**BETAS["scaled_linear"], "use_karras_sigmas": True, "sigma_min": 0.1, "sigma_max": 10.0,
                       "final_sigmas_type": "sigma_min"}, 8)
    # the cosine schedule's timesteps are truncated, not rounded (its sigma_max of ~2e4 makes
    # diffusers' float32 latents meaningless, so only the schedule is compared)
    cosine = {"beta_schedule": "squaredcos_cap_v2", "use_karras_sigmas": True}
    ours, ref = make_scheduler("dpmpp_2m", cosine), reference("dpmpp_2m", cosine)
    ours.set_timesteps(8)
    ref.set_timesteps(8)
    assert ours.timesteps == [float(t) for t in ref.timesteps] and ours.sigmas == ref.sigmas.tolist()


@needs_diffusers
@pytest.mark.parametrize("variant", ["order1", "order3", "bh1", "sigma_min", "no_corrector_at_2", "no_lower_order_final"])
@pytest.mark.parametrize("steps", [1, 3, 13])
def test_unipc_options(variant, steps):
    extra = {
        "order1": {"solver_order": 1},
        "order3": {"solver_order": 3},
        "bh1": {"solver_type": "bh1", "final_sigmas_type": "sigma_min"},
        "sigma_min": {"final_sigmas_type": "sigma_min"},
        "no_corrector_at_2": {"disable_corrector": [0, 2]},
        "no_lower_order_final": {"lower_order_final": False, "final_sigmas_type": "sigma_min"},
    }[variant]
    run_both("unipc", {**BETAS["scaled_linear"], **extra}, steps)


@needs_diffusers
@pytest.mark.parametrize("variant", ["fixed_small_log", "fixed_large"])
@pytest.mark.parametrize("spacing", SPACINGS)
def test_ddpm_variance_types(variant, spacing):
    run_both("ddpm", {**BETAS["linear"], "variance_type": variant, "timestep_spacing": spacing}, 13)


@needs_diffusers
@pytest.mark.parametrize("steps", [1, 4, 8, 13])
@pytest.mark.parametrize("extra", [{}, {"original_inference_steps": 20, "timestep_scaling": 5.0},
                                   {"set_alpha_to_one": False}])
def test_lcm_options(steps, extra):
    run_both("lcm", {**BETAS["scaled_linear"], **extra}, steps)


@needs_diffusers
@pytest.mark.parametrize("steps", [4, 5, 13])
@pytest.mark.parametrize("spacing", SPACINGS)
def test_pndm_runge_kutta_warm_up(steps, spacing):
    # diffusers' default (skip_prk_steps false): three Runge-Kutta steps of four UNet calls each
    config = {**BETAS["scaled_linear"], "skip_prk_steps": False, "timestep_spacing": spacing}
    ours, _, _ = run_both("pndm", config, steps)
    assert len(ours.timesteps) == steps + 9
    assert [ours.call(i).parts for i in range(12)] == [4] * 12
    assert [ours.call(i).step for i in range(len(ours.timesteps))][-1] == steps - 1


@needs_diffusers
@pytest.mark.parametrize("steps", [1, 2, 3, 13])
def test_pndm_set_alpha_to_one(steps):
    run_both("pndm", {**BETAS["scaled_linear"], "set_alpha_to_one": True}, steps)


@pytest.mark.parametrize("name", NAMES)
def test_calls_cover_every_step_once(name):
    # Heun and PNDM call the UNet more than once in some steps: every step appears, in order,
    # with its calls numbered 0 … parts-1, and a reason wherever a step has more than one call.
    for steps in (1, 2, 3, 13):
        s = make_scheduler(name, BETAS["scaled_linear"])
        s.set_timesteps(steps)
        calls = [s.call(i) for i in range(len(s.timesteps))]
        assert [c.step for c in calls] == sorted(c.step for c in calls)
        assert sorted({c.step for c in calls}) == list(range(steps))
        for step in range(steps):
            parts = [c for c in calls if c.step == step]
            assert [c.part for c in parts] == list(range(parts[0].parts))
            assert all(c.parts == len(parts) for c in parts)
            assert all(c.role for c in parts) or len(parts) == 1
        extra = {"heun": steps - 1, "pndm": 1 if steps > 1 else 0}.get(name, 0)
        assert len(calls) == steps + extra


@needs_diffusers
@pytest.mark.parametrize("variant", ["sigma_min", "heun", "order3", "order1", "euler_at_final", "no_lower_order_final"])
@pytest.mark.parametrize("steps", [3, 10, 20])
def test_dpm_solver_options(variant, steps):
    extra = {
        "sigma_min": {"final_sigmas_type": "sigma_min"},
        "heun": {"solver_type": "heun"},
        "order3": {"solver_order": 3},
        "order1": {"solver_order": 1},
        "euler_at_final": {"euler_at_final": True, "final_sigmas_type": "sigma_min"},
        "no_lower_order_final": {"lower_order_final": False, "final_sigmas_type": "sigma_min"},
    }[variant]
    run_both("dpmpp_2m", {**BETAS["scaled_linear"], **extra}, steps)


@needs_diffusers
def test_dpm_solver_lambda_min_clipped():
    run_both("dpmpp_2m", {**BETAS["scaled_linear"], "lambda_min_clipped": -3.0, "final_sigmas_type": "sigma_min"}, 10)


@needs_diffusers
def test_euler_final_sigma_min_and_trained_betas():
    run_both("euler", {**BETAS["scaled_linear"], "final_sigmas_type": "sigma_min"}, 10)
    betas = torch.linspace(0.0002, 0.03, 1000).tolist()
    run_both("lms", {"trained_betas": betas, "steps_offset": 1, "timestep_spacing": "leading"}, 10)
    run_both("ddim", {"beta_schedule": "squaredcos_cap_v2", "clip_sample": False}, 10)


@needs_diffusers
@pytest.mark.parametrize("betas", list(BETAS))
def test_noise_tables_match_torch(betas):
    ours = make_scheduler("euler", BETAS[betas])
    ref = reference("euler", BETAS[betas])
    if torch.backends.cpu.get_cpu_capability() != "DEFAULT":
        # torch's linspace fuses its multiply-add on AVX2/AVX-512 CPUs; so do we
        assert ours.betas == ref.betas.tolist()
        assert ours.alphas_cumprod == ref.alphas_cumprod.tolist()
    else:
        np.testing.assert_allclose(ours.betas, ref.betas.numpy(), rtol=2e-7, atol=0)
        np.testing.assert_allclose(ours.alphas_cumprod, ref.alphas_cumprod.numpy(), rtol=2e-6, atol=0)
    # The sigma table differs by at most one float32 ulp: torch's float32 sqrt on the CPU is
    # not always correctly rounded (about 1 value in 5 is one ulp off); ours is.
    train_sigmas = ((1 - ref.alphas_cumprod) / ref.alphas_cumprod) ** 0.5
    assert max_ulps(ours.train_sigmas, train_sigmas.numpy()) <= 1.0


@needs_diffusers
@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("spacing", SPACINGS)
def test_timesteps_for_many_step_counts(name, spacing):
    config = {**BETAS["scaled_linear"], "timestep_spacing": spacing}
    ours, ref = make_scheduler(name, config), reference(name, config)
    for steps in list(range(1, 61)) + [75, 99, 100, 150, 250, 333, 500, 999]:
        if name == "lcm" and steps > 50:  # more than its original_inference_steps: both refuse
            with pytest.raises(ValueError):
                ref.set_timesteps(steps)
            with pytest.raises(SdlensError, match="LCM allows at most 50 steps"):
                ours.set_timesteps(steps)
            continue
        ref.set_timesteps(steps)
        expected = [float(t) for t in ref.timesteps]
        if name in ("dpmpp_2m", "lms", "unipc") and len(set(ref.sigmas.tolist())) < len(ref.sigmas):
            # e.g. DPM-Solver, leading, 999 steps: timesteps 1000 and 999 share sigma[999];
            # diffusers would divide by zero (h = 0) -- we refuse the step count instead.
            with pytest.raises(SdlensError, match="share a noise level"):
                ours.set_timesteps(steps)
            continue
        ours.set_timesteps(steps)
        assert ours.timesteps == expected, f"{steps} steps"
        assert math.isclose(ours.init_noise_sigma, float(ref.init_noise_sigma), rel_tol=3e-7)
        if hasattr(ours, "sigmas"):  # the sigma-based schedulers
            # identical up to torch's float32 sqrt in the training sigma table (see above);
            # interpolating between two entries can add the two 1-ulp differences
            assert max_ulps(ours.sigmas, ref.sigmas.numpy()) <= 2.0, f"{steps} steps"


@needs_diffusers
@pytest.mark.parametrize("name", ["ddim", "euler", "dpmpp_2m"])
def test_trailing_step_count_is_exact(name):
    # numpy.arange(1000, 0, -1000/61) has 62 elements (float rounding), so diffusers' "trailing"
    # schedule for 61 steps gets an extra timestep -1. We give exactly the 61 steps asked for,
    # which are diffusers' first 61.
    config = {**BETAS["scaled_linear"], "timestep_spacing": "trailing"}
    ours, ref = make_scheduler(name, config), reference(name, config)
    ours.set_timesteps(61)
    ref.set_timesteps(61)
    assert len(ref.timesteps) == 62 and int(ref.timesteps[-1]) == -1
    assert ours.timesteps == [float(t) for t in ref.timesteps[:61]]
    assert ours.timesteps[-1] == 15.0


@needs_diffusers
def test_lms_coefficients_equal_scipy_quad():
    from scipy import integrate

    ours = make_scheduler("lms", BETAS["scaled_linear"])
    for steps in (4, 9, 30):
        ours.set_timesteps(steps)
        ref = reference("lms", BETAS["scaled_linear"])
        ref.set_timesteps(steps)
        for t in range(steps):
            order = min(t + 1, 4)
            for j in range(order):
                expected = ref.get_lms_coefficient(order, t, j)

                def basis(tau):  # the same polynomial, in double precision
                    prod = 1.0
                    for k in range(order):
                        if k != j:
                            prod *= (tau - ours.sigmas[t - k]) / (ours.sigmas[t - j] - ours.sigmas[t - k])
                    return prod

                exact = integrate.quad(basis, ours.sigmas[t], ours.sigmas[t + 1], epsabs=0, epsrel=1e-13)[0]
                ours_c = lms_coefficient(ours.sigmas, order, t, j)
                assert math.isclose(ours_c, exact, rel_tol=1e-12, abs_tol=1e-14)
                # diffusers evaluates the integrand in float32, so it agrees to float32 precision
                assert math.isclose(ours_c, expected, rel_tol=1e-5, abs_tol=1e-6)


# --------------------------------------------------------------------------------------------
# the API and the numbers a UI shows
# --------------------------------------------------------------------------------------------


def _rerun(name, config, steps, seed=3):
    s = make_scheduler(name, config)
    s.set_timesteps(steps)
    gen = Generator(seed)
    x = OPS.combine([(s.init_noise_sigma, OPS.floats(gen.randn(SHAPE), SHAPE))])
    fixed = OPS.floats(Generator(99).randn(SHAPE), SHAPE)
    trace = []
    for i in range(len(s.timesteps)):
        eps = OPS.combine([(0.3, s.scale_model_input(x, i, OPS)), (0.1, fixed)])
        res = s.step(eps, i, x, OPS, generator=gen)
        trace.append((x, eps, res))
        x = res.prev_sample
    return s, trace


@pytest.mark.parametrize("name", NAMES)
def test_coefficients_describe_the_update(name):
    s, trace = _rerun(name, BETAS["scaled_linear"], 10)
    x0_history = []
    for i, (x, eps, res) in enumerate(trace):
        c = res.coefficients
        assert all(isinstance(v, (int, float)) for v in c.values()), c
        assert c["timestep"] == s.timesteps[i]
        assert math.isclose(c["sigma"], s.sigma(i), rel_tol=1e-6)
        x0 = c["x0_sample_coef"] * x + c["x0_model_coef"] * eps
        np.testing.assert_allclose(res.pred_original_sample, x0, rtol=0, atol=1e-5)
        x0_history.append(res.pred_original_sample)
        prev = None
        if name in ("ddim", "euler") or (name == "heun" and c["order"] == 1) or (name == "ddpm" and not c["noise_coef"]):
            prev = c["sample_coef"] * x + c["model_coef"] * eps
        if name == "heun" and c["order"] == 2:
            start, start_eps = trace[i - 1][0], trace[i - 1][1]
            prev = (c["start_sample_coef"] * start + c["start_model_coef"] * start_eps
                    + c["sample_coef"] * x + c["model_coef"] * eps)
        if name == "dpmpp_2m" or (name == "unipc" and not c["corrector_order"]):
            prev = c["sample_coef"] * x + c["x0_coef"] * x0_history[-1]
            if c["order"] >= 2:
                prev = prev + c["x0_prev_coef"] * x0_history[-2]
        if name == "pndm" and i >= 2:  # the multistep phase: x_t and the last eps_count predictions
            blended = [k for k in range(i + 1) if k != 1][::-1]  # the warm-up's second call is not kept
            prev = c["sample_coef"] * x
            for j in range(int(c["eps_count"])):
                prev = prev + c["model_coef"] * c[f"eps_coef_{j}"] * trace[blended[j]][1]
        if prev is not None:
            np.testing.assert_allclose(res.prev_sample, prev, rtol=0, atol=1e-4)
    # the last step lands on the clean end of the chain
    last = trace[-1][2].coefficients
    if name in ("ddim", "pndm"):
        assert last["prev_timestep"] < 0 and last["alpha_prod_t_prev"] == s.alphas_cumprod[0]
    elif name == "ddpm":
        assert last["prev_timestep"] == -1 and last["alpha_prod_t_prev"] == 1.0
    elif name == "lcm":
        assert last["noise_coef"] == 0.0
        np.testing.assert_array_equal(trace[-1][2].prev_sample, trace[-1][2].pred_original_sample)
    else:
        assert last["sigma_next"] == 0.0


@pytest.mark.parametrize("name", NAMES)
def test_set_timesteps_resets_history(name):
    s, first = _rerun(name, BETAS["scaled_linear"], 6)
    s.set_timesteps(6)
    gen = Generator(3)
    x = OPS.combine([(s.init_noise_sigma, OPS.floats(gen.randn(SHAPE), SHAPE))])
    fixed = OPS.floats(Generator(99).randn(SHAPE), SHAPE)
    for i in range(len(s.timesteps)):
        eps = OPS.combine([(0.3, s.scale_model_input(x, i, OPS)), (0.1, fixed)])
        x = s.step(eps, i, x, OPS, generator=gen).prev_sample
    np.testing.assert_array_equal(x, first[-1][2].prev_sample)


def test_sigma_for_display():
    ddim = make_scheduler("ddim", BETAS["scaled_linear"])
    ddim.set_timesteps(50)
    assert ddim.timesteps[0] == 981.0
    a = ddim.alphas_cumprod[981]
    assert math.isclose(ddim.sigma(0), math.sqrt((1 - a) / a))
    euler = make_scheduler("euler", BETAS["scaled_linear"])
    euler.set_timesteps(50)
    assert euler.sigma(0) == euler.sigmas[0] == euler.init_noise_sigma
    assert math.isclose(euler.sigma(0), 14.6146, rel_tol=1e-5)
    assert ddim.init_noise_sigma == 1.0
    # the UNet input of the Euler family is scaled by 1/sqrt(sigma²+1); DDIM's is not
    x = OPS.floats([1.0] * 256, SHAPE)
    assert ddim.scale_model_input(x, 0, OPS) is x
    np.testing.assert_allclose(euler.scale_model_input(x, 0, OPS), 1 / math.sqrt(euler.sigma(0) ** 2 + 1), rtol=1e-6)


def test_registry():
    assert sorted(SCHEDULERS) == sorted(NAMES)
    for name, cls in SCHEDULERS.items():
        assert cls.name == name and cls.label and cls.summary
    assert make_scheduler("DDIM", {}).name == "ddim"
    assert make_scheduler(" Euler_A ", {}).name == "euler_a"
    assert SCHEDULERS["dpmpp_2m"].label == "DPM++ 2M"
    assert display_name("dpmpp_2m", karras=True) == "DPM++ 2M Karras"
    assert display_name("ddim", karras=False) == "DDIM"
    assert sorted(KARRAS_SCHEDULERS) == sorted(KARRAS)
    menu = catalogue()
    assert [m["id"] for m in menu["schedulers"]] == list(SCHEDULERS)
    assert {m["id"] for m in menu["schedulers"] if m["karras"]} == set(KARRAS)
    # every id a model's scheduler_config.json can name maps to ours
    for cls_name, name in DIFFUSERS_CLASSES.items():
        assert SCHEDULERS[name].__name__ == cls_name


@pytest.mark.parametrize("name", NAMES)
def test_karras_is_a_setting_where_diffusers_has_it(name):
    if name in KARRAS:
        s = make_scheduler(name, BETAS["scaled_linear"], karras=True)
        assert s.karras and s.config["use_karras_sigmas"] is True
        assert not make_scheduler(name, {**BETAS["scaled_linear"], "use_karras_sigmas": True}, karras=False).karras
        assert make_scheduler(name, {**BETAS["scaled_linear"], "use_karras_sigmas": True}).karras  # as the config says
    else:
        with pytest.raises(SdlensError, match="karras sigmas are not available for") as info:
            make_scheduler(name, BETAS["scaled_linear"], karras=True)
        assert "DPM++ 2M" in str(info.value)
        make_scheduler(name, BETAS["scaled_linear"], karras=False)
        # a config's use_karras_sigmas means nothing to a class without it (diffusers ignores it too)
        assert not make_scheduler(name, {**BETAS["scaled_linear"], "use_karras_sigmas": True}).karras
    with pytest.raises(SdlensError, match="karras must be true or false"):
        make_scheduler(name, BETAS["scaled_linear"], karras="maybe")


@pytest.mark.parametrize("bad", ["dpm++", "", None, "euler-a"])
def test_unknown_scheduler(bad):
    with pytest.raises(SdlensError) as info:
        make_scheduler(bad, {})
    for name in NAMES:
        assert name in str(info.value)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("steps", [0, -1, 1001, 2.5, "abc", True, None, float("nan")])
def test_bad_step_counts(name, steps):
    s = make_scheduler(name, BETAS["scaled_linear"])
    with pytest.raises(SdlensError, match="steps must be a whole number from 1 to 1000"):
        s.set_timesteps(steps)


def test_step_counts_accepted_and_limited_by_training_steps():
    s = make_scheduler("euler", BETAS["scaled_linear"])
    for steps in (1, 1000, "30", 12.0):
        s.set_timesteps(steps)
        assert len(s.timesteps) == int(steps)
    short = make_scheduler("ddim", {**BETAS["linear"], "num_train_timesteps": 500})
    short.set_timesteps(500)
    with pytest.raises(SdlensError, match="from 1 to 500"):
        short.set_timesteps(501)


@pytest.mark.parametrize(
    "name, option",
    [
        ("ddim", {"clip_sample": True}),
        ("ddim", {"thresholding": True}),
        ("ddim", {"rescale_betas_zero_snr": True}),
        ("euler", {"use_exponential_sigmas": True}),
        ("euler", {"interpolation_type": "log_linear"}),
        ("dpmpp_2m", {"algorithm_type": "sde-dpmsolver++"}),
        ("dpmpp_2m", {"use_lu_lambdas": True}),
        ("lms", {"use_beta_sigmas": True}),
        ("heun", {"clip_sample": True}),
        ("ddpm", {"clip_sample": True}),
        ("ddpm", {"variance_type": "learned_range"}),
        ("pndm", {"prediction_type": "sample"}),
        ("unipc", {"predict_x0": False}),
        ("unipc", {"solver_type": "bh3"}),
        ("unipc", {"lower_order_final": False}),
        ("lcm", {"original_inference_steps": 2000}),
        ("lcm", {"thresholding": True}),
        ("euler_a", {"prediction_type": "sample"}),
        ("euler", {"prediction_type": "flow"}),
        ("euler", {"timestep_spacing": "karras"}),
        ("euler", {"beta_schedule": "cosine"}),
    ],
)
def test_unsupported_options_are_refused(name, option):
    with pytest.raises(SdlensError):
        make_scheduler(name, {**BETAS["scaled_linear"], **option})


def test_unknown_and_null_keys_are_ignored():
    a = make_scheduler("euler", {**BETAS["scaled_linear"], "_class_name": "PNDMScheduler", "foo": 1, "timestep_spacing": None})
    a.set_timesteps(5)
    assert a.timestep_spacing == "linspace"  # null -> diffusers' default for Euler


@pytest.mark.parametrize("name", ["dpmpp_2m", "lms"])
def test_multistep_schedulers_need_steps_in_order(name):
    s = make_scheduler(name, BETAS["scaled_linear"])
    s.set_timesteps(5)
    x = OPS.floats([0.5] * 256, SHAPE)
    s.step(x, 0, x, OPS)
    with pytest.raises(RuntimeError):
        s.step(x, 2, x, OPS)


def test_too_many_steps_for_a_multistep_schedule():
    # leading spacing with 1000 steps repeats a noise level; DPM-Solver and LMS would divide by zero
    s = make_scheduler("dpmpp_2m", {**BETAS["scaled_linear"], "timestep_spacing": "leading"})
    with pytest.raises(SdlensError, match="share a noise level"):
        s.set_timesteps(1000)


def test_schedulers_use_the_standard_library_only():
    # The same files run in Pyodide: no numpy, no scipy, no torch.
    package = Path(__file__).resolve().parent.parent / "py" / "sdlens" / "schedulers"
    allowed = set(sys.stdlib_module_names) | {"__future__"}
    for path in sorted(package.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                names = [node.module]
            else:
                continue
            for name in names:
                assert name.split(".")[0] in allowed, f"{path.name} imports {name}"
