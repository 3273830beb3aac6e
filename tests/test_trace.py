"""The per-step trace the explainer will show: complete, consistent, and free when unused."""

import numpy as np
import pytest

from sdlens.cpython.runtime import OnnxRuntime
from sdlens.model import Model
from sdlens.pipeline import Cancelled, Pipeline, Settings


class CountingRuntime(OnnxRuntime):
    def __init__(self):
        super().__init__()
        self.reads = 0

    def read(self, tensor):
        self.reads += 1
        return super().read(tensor)


@pytest.fixture(scope="module")
def pipeline(tiny_model_dir):
    return Pipeline(Model.from_dir(str(tiny_model_dir)), CountingRuntime())


def test_plain_generate_reads_nothing_back(pipeline):
    pipeline.runtime.reads = 0
    pipeline.generate(Settings("a red circle", seed=1, steps=4, guidance=7.5, scheduler="euler_a"))
    assert pipeline.runtime.reads == 0


@pytest.mark.parametrize("scheduler, calls", [("ddim", 6), ("euler", 6), ("dpmpp_2m", 6), ("unipc", 6),
                                              ("heun", 11), ("pndm", 15)])
def test_trace_is_consistent(pipeline, scheduler, calls):
    # one entry per UNet call: Heun calls twice per step but the last; PNDM (this config has
    # diffusers' default skip_prk_steps false) four times in each of its first three steps
    g = 7.5
    traces = []
    result = pipeline.generate(Settings("a red circle", "blue", 5, 6, g, scheduler), on_step=traces.append)
    assert [t.index for t in traces] == list(range(calls)) and result.unet_calls == calls
    assert sorted({t.step for t in traces}) == list(range(6))
    for t in traces:
        assert t.call.role or t.call.parts == 1  # a step with several calls says why
    assert traces[0].timestep > traces[-1].timestep and traces[0].sigma > traces[-1].sigma
    for before, after in zip(traces, traces[1:]):
        assert after.latent is before.next_latent
    assert traces[-1].next_latent is result.latents
    read = lambda t: np.asarray(pipeline.runtime.read(t), dtype=np.float32)  # noqa: E731
    for t in traces:
        eps_u, eps_c, eps = read(t.eps_uncond), read(t.eps_cond), read(t.eps_guided)
        np.testing.assert_allclose(eps, eps_u + g * (eps_c - eps_u), atol=1e-5 * np.abs(eps).max())
        # x̂_0 = a·x_t + b·ε with the step's own coefficients
        c = t.coefficients
        x0 = c["x0_sample_coef"] * read(t.latent) + c["x0_model_coef"] * eps
        np.testing.assert_allclose(read(t.pred_original), x0, atol=1e-5 * np.abs(x0).max())


def test_no_guidance_trace_has_no_unconditional_part(pipeline):
    traces = []
    pipeline.generate(Settings("a red circle", steps=2, guidance=1.0), on_step=traces.append)
    assert all(t.eps_uncond is None and t.eps_guided is t.eps_cond for t in traces)


def test_stop_cancels_within_a_step(pipeline):
    traces = []
    with pytest.raises(Cancelled):
        pipeline.generate(Settings("x", steps=10), on_step=traces.append, should_stop=lambda: len(traces) >= 3)
    assert len(traces) == 3
