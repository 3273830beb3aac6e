"""Edited guidance and scheduler steps (py/sdlens/edited.py) on the tiny model, in CPython: the
same code the browser's Pyodide runs."""

import numpy as np
import pytest

from sdlens.cpython.runtime import OnnxRuntime
from sdlens.edited import CodeError, EditedCode, original_source
from sdlens.model import Model
from sdlens.pipeline import Pipeline, Settings
from sdlens.schedulers import SCHEDULERS

SETTINGS = dict(prompt="a red circle on the left, light blue background", negative="", seed=11, steps=4,
                scheduler="ddim")


@pytest.fixture(scope="module")
def pipeline(tiny_model_dir):
    return Pipeline(Model.from_dir(str(tiny_model_dir)), OnnxRuntime())


def run(pipeline, guidance=7.5, code=None, **settings):
    return np.asarray(pipeline.generate(Settings(**{**SETTINGS, "guidance": guidance, **settings}), code=code).latents)


def test_sources_are_the_running_functions():
    assert original_source("guidance").startswith("def guide(ops, eps_uncond, eps_cond, scale: float):")
    for name in SCHEDULERS:
        assert original_source("step", name).startswith("def step(self, model_output, index")


@pytest.mark.parametrize("scheduler", list(SCHEDULERS))
def test_unedited_source_gives_bit_identical_output(pipeline, scheduler):
    """Running the original text as 'edited' code, i.e. what Reset restores, changes nothing."""
    code = EditedCode(guidance=original_source("guidance"), step=original_source("step", scheduler), scheduler=scheduler)
    assert np.array_equal(run(pipeline, code=code, scheduler=scheduler), run(pipeline, scheduler=scheduler))


def test_guidance_that_returns_eps_cond_equals_guidance_off(pipeline):
    source = original_source("guidance").replace(
        "    return ops.combine([(1.0 - scale, eps_uncond), (scale, eps_cond)])", "    return eps_cond")
    assert source.rstrip().endswith("return eps_cond")
    edited = run(pipeline, 7.5, EditedCode(guidance=source))
    off = run(pipeline, 1.0)
    # The conditional pass in a batch of two equals it alone, to float rounding.
    assert np.abs(edited - off).max() <= 1e-5 * np.abs(off).max()
    assert np.abs(edited - run(pipeline, 7.5)).max() > 1e-2


def test_edited_step_changes_the_result(pipeline):
    # DDIM that re-noises with half the predicted noise direction: a different, still finite image.
    source = original_source("step", "ddim").replace("c_eps = math.sqrt(a_prev), math.sqrt(1.0 - a_prev)",
                                                     "c_eps = math.sqrt(a_prev), 0.5 * math.sqrt(1.0 - a_prev)")
    latents = run(pipeline, code=EditedCode(step=source))
    assert np.isfinite(latents).all() and np.abs(latents - run(pipeline)).max() > 1e-2


def test_syntax_error_names_its_line():
    source = original_source("guidance").splitlines()
    source[2] = "    return ops.combine([(1.0 - scale, eps_uncond), (scale, eps_cond)]"  # missing bracket
    with pytest.raises(CodeError) as err:
        EditedCode(guidance="\n".join(source))
    assert err.value.part == "guidance" and err.value.line == 3 and "SyntaxError" in str(err.value)


def test_exception_names_its_line(pipeline):
    source = original_source("step", "ddim").replace("    b_t = 1.0 - a_t\n", "    b_t = 1.0 - a_t\n    b_t = b_t / 0\n")
    line = source.splitlines().index("    b_t = b_t / 0") + 1
    with pytest.raises(CodeError) as err:
        run(pipeline, code=EditedCode(step=source))
    assert err.value.part == "step" and err.value.line == line and "ZeroDivisionError" in str(err.value)
    # The next normal run is the standard algorithm again.
    assert np.array_equal(run(pipeline), run(pipeline))


def test_wrong_return_and_endless_loop(pipeline):
    with pytest.raises(CodeError, match="shaped like eps_cond"):
        run(pipeline, code=EditedCode(guidance="def guide(ops, eps_uncond, eps_cond, scale):\n    return 1.0\n"))
    with pytest.raises(CodeError, match="must return a StepResult"):
        run(pipeline, code=EditedCode(step="def step(self, model_output, index, sample, ops, generator=None):\n"
                                           "    return sample\n"))
    loop = "def guide(ops, eps_uncond, eps_cond, scale):\n    while True:\n        scale += 1\n"
    with pytest.raises(CodeError, match="still running after 0.5 s") as err:
        run(pipeline, code=EditedCode(guidance=loop, time_limit_s=0.5))
    assert err.value.line in (2, 3)
    with pytest.raises(CodeError, match="define a function named guide"):
        EditedCode(guidance="x = 1\n")
