"""Edited guidance and scheduler steps (py/sdlens/edited.py) on the tiny model, in CPython: the
same code the browser's Pyodide runs."""

import time

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
    assert original_source("guidance").startswith("def guide(ops, eps_uncond, eps_cond, g: float):")  # g, as the page writes the formula
    for name in SCHEDULERS:
        assert original_source("step", name).startswith("def step(self, model_output, index")


@pytest.mark.parametrize("scheduler", list(SCHEDULERS))
def test_unedited_source_gives_bit_identical_output(pipeline, scheduler):
    """Running the original text as 'edited' code, i.e. what Reset restores, changes nothing."""
    code = EditedCode(guidance=original_source("guidance"), step=original_source("step", scheduler), scheduler=scheduler)
    assert np.array_equal(run(pipeline, code=code, scheduler=scheduler), run(pipeline, scheduler=scheduler))


def test_guidance_that_returns_eps_cond_equals_guidance_off(pipeline):
    source = original_source("guidance").replace(
        "    return eps_uncond + g * (eps_cond - eps_uncond)", "    return eps_cond")
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
    source[2] = "    return eps_uncond + g * (eps_cond - eps_uncond"  # missing bracket
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
    # Stop (the page's shared flag) ends the loop at its next line, long before the time limit.
    looked = []

    def stopped():  # Stop, pressed once the loop has gone round a while
        looked.append(1)
        return len(looked) > 1000

    started = time.perf_counter()
    with pytest.raises(KeyboardInterrupt):
        run(pipeline, code=EditedCode(guidance=loop, time_limit_s=60, stopped=stopped))
    assert time.perf_counter() - started < 30 and len(looked) == 1001  # each line looked, until Stop
    with pytest.raises(CodeError, match="define a function named guide"):
        EditedCode(guidance="x = 1\n")


# ---- tensors written as formulas (py/sdlens/formula.py) --------------------------------------

class CountingRuntime(OnnxRuntime):
    """The CPython runtime, counting its device operations (one ops.combine is one)."""

    def __init__(self):
        super().__init__()
        self.combines = 0

    def combine(self, terms):
        self.combines += 1
        return super().combine(terms)


def guide_source(body: str) -> str:
    return f"def guide(ops, eps_uncond, eps_cond, scale):\n    return {body}\n"


def noise_pair(seed=0):
    rng = np.random.default_rng(seed)
    return (rng.standard_normal((1, 4, 8, 8)).astype(np.float32), rng.standard_normal((1, 4, 8, 8)).astype(np.float32))


@pytest.mark.parametrize("scale", [7.5, 2.0, 0.3, 12.25])
def test_the_formula_is_one_combine_with_the_same_numbers(scale):
    uncond, cond = noise_pair()
    ops = CountingRuntime()
    expected = ops.combine([(1.0 - scale, uncond), (scale, cond)])
    for body in ("eps_uncond + scale * (eps_cond - eps_uncond)",   # the shipped formula
                 "eps_uncond + (eps_cond - eps_uncond) * scale",
                 "(1 - scale) * eps_uncond + scale * eps_cond"):
        ops.combines = 0
        got = EditedCode(guidance=guide_source(body)).guide(ops, uncond, cond, scale)
        assert ops.combines == 1, body  # one device operation for the whole expression
        assert np.array_equal(got, expected), body  # same coefficients, same order: the same bits
    # Other orders and groupings are the same number within float32 rounding.
    for body in ("scale * eps_cond - (scale - 1) * eps_uncond", "-(scale - 1) * eps_uncond + eps_cond * scale / 1",
                 "eps_cond + (scale - 1) * (eps_cond - eps_uncond)", "sum([scale * eps_cond, (1 - scale) * eps_uncond])"):
        ops.combines = 0
        got = EditedCode(guidance=guide_source(body)).guide(ops, uncond, cond, scale)
        assert ops.combines == 1, body
        assert np.allclose(got, expected, rtol=1e-5, atol=1e-5 * np.abs(expected).max()), body


def test_intermediate_names_and_ops_results_go_on_into_formulas():
    uncond, cond = noise_pair(1)
    ops = CountingRuntime()
    source = ("def guide(ops, eps_uncond, eps_cond, scale):\n"
              "    difference = eps_cond - eps_uncond\n"
              "    half = ops.combine([(0.5, eps_cond)])\n"
              "    return eps_uncond + scale * difference + 2 * half - eps_cond\n")
    got = EditedCode(guidance=source).guide(ops, uncond, cond, 3.0)
    assert ops.combines == 2  # ops.combine runs at once (as before); the formula is one more
    half = np.float32(0.5) * cond
    assert np.allclose(got, uncond + 3 * (cond - uncond) + 2 * half - cond, atol=1e-5)
    # Returning a tensor as it is computes nothing.
    ops.combines = 0
    assert EditedCode(guidance=guide_source("eps_cond")).guide(ops, uncond, cond, 3.0) is cond and ops.combines == 0


def test_a_long_formula_is_summed_in_parts_that_round_the_same():
    from sdlens.formula import MAX_TERMS, FormulaOps
    from export.web_ops import MAX_TERMS as WEB_OPS_TERMS
    assert MAX_TERMS == WEB_OPS_TERMS  # the browser has a combine graph for each term count up to this
    rng = np.random.default_rng(2)
    tensors = [rng.standard_normal((1, 4, 8, 8)).astype(np.float32) for _ in range(MAX_TERMS + 3)]
    coefficients = [0.5 + i for i in range(len(tensors))]
    ops = FormulaOps(CountingRuntime())
    formula = sum(c * ops.tensor(t) for c, t in zip(coefficients, tensors))
    expected = np.float32(coefficients[0]) * tensors[0]
    for c, t in zip(coefficients[1:], tensors[1:]):
        expected += np.float32(c) * t
    assert np.array_equal(ops.value(formula), expected) and ops.runtime.combines == 2


LEARNER_ERRORS = [  # (line of guide's body, the message's words)
    ("eps_cond * eps_uncond", "`eps_cond * eps_uncond` multiplies two tensors element by element"),
    ("eps_uncond + scale * (eps_cond / eps_uncond)", "`eps_cond / eps_uncond` divides a tensor by a tensor"),
    ("eps_cond + 1", "`eps_cond + 1` adds a number to a tensor"),
    ("1 - eps_cond", "`1 - eps_cond` subtracts a tensor from a number"),
    ("eps_cond ** 2", "`eps_cond ** 2` raises a tensor to a power"),
    ("eps_cond / 0", "`eps_cond / 0` divides a tensor by zero"),
    ("eps_cond[0]", "`eps_cond[0]` looks at a tensor's values"),
    ("eps_cond.mean()", "`eps_cond.mean` asks a tensor for .mean"),
    ("math.sqrt(eps_cond)", "`math.sqrt(eps_cond)` needs one number"),
    ("eps_cond if eps_cond > eps_uncond else eps_uncond", "`eps_cond > eps_uncond` compares a tensor"),
    ("abs(eps_cond)", "`abs(eps_cond)` takes the absolute value"),
    ("eps_cond + None", "`eps_cond + None` adds None to a tensor"),
    ("eps_cond << 2", "TypeError: unsupported operand type(s) for <<: 'tensor' and 'int'"),
    ("ops.multiply(eps_cond, eps_uncond)", "ops has no .multiply"),
]


@pytest.mark.parametrize("body,words", LEARNER_ERRORS)
def test_tensor_math_a_formula_cannot_do_is_said_in_words_on_its_line(body, words):
    uncond, cond = noise_pair()
    source = f"def guide(ops, eps_uncond, eps_cond, scale):\n    difference = eps_cond - eps_uncond\n    return {body}\n"
    with pytest.raises(CodeError) as err:
        EditedCode(guidance=source).guide(CountingRuntime(), uncond, cond, 7.5)
    message = str(err.value)
    assert err.value.line == 3 and message.endswith("(line 3)") and words in message, message
    for internal in ("LinearCombination", "FormulaOps", "TensorMathError", "Handle", "ndarray", "OnnxRuntime"):
        assert internal not in message


def test_a_step_written_as_formulas_equals_the_standard_step(pipeline):
    source = original_source("step", "ddim")
    for name, terms in (("pred_original", "x0[0] * sample + x0[1] * model_output"),
                        ("prev_sample", "prev[0] * sample + prev[1] * model_output")):
        old = next(line for line in source.splitlines() if line.strip().startswith(f"{name} = combine("))
        source = source.replace(old, f"    {name} = {terms}")
    assert "combine(" not in source
    code = EditedCode(step=source)
    assert np.array_equal(run(pipeline, code=code), run(pipeline))  # same coefficients, same order
    # The trace keeps the step's coefficients (what the explainer shows) and gets runtime tensors.
    traces = []
    pipeline.generate(Settings(**{**SETTINGS, "guidance": 7.5}), code=EditedCode(step=source), on_step=traces.append)
    assert traces[0].coefficients["model_coef"] != 0 and isinstance(traces[0].next_latent, np.ndarray)
    with pytest.raises(CodeError, match=r"`model_output \* sample` multiplies two tensors") as err:
        run(pipeline, code=EditedCode(step=source.replace("x0[1] * model_output", "model_output * sample")))
    assert source.splitlines()[err.value.line - 1].strip().startswith("pred_original =")
