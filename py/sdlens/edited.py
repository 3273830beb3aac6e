"""A learner's own version of the guidance function or of a scheduler's `step`.

The page shows the real source of `guidance.guide` and of the chosen scheduler's `step` (read with
`inspect`, from the very files that run), lets a learner edit it, and generates the same seed with
the edit. This module turns the edited text into functions the pipeline calls instead:

- the code runs in the namespace of the module it came from, so it can use what the original uses
  (`combine`, `StepResult`, `math`, …) and nothing the page cannot already reach;
- tensors in the code can be written as formulas (`eps_uncond + g * (eps_cond - eps_uncond)`):
  each formula runs as one `ops.combine` (see formula.py);
- every error is a `CodeError` naming the part ("guidance" or "step") and the line of the edited
  text where it happened: syntax errors, exceptions, a wrong return value, and code that runs past
  its time limit (a loop that never ends). Tensor math a formula cannot do is said in words,
  quoting the expression (`eps_cond * eps_uncond` multiplies two tensors ...), and no message
  names the classes that hold the tensors;
- nothing global changes: the edited step is bound to one run's scheduler object, the edited
  guidance is passed to that run only, so the next normal run is the standard algorithm.
"""

from __future__ import annotations

import inspect
import linecache
import re
import sys
import textwrap
import time
import traceback
import types

from . import guidance as guidance_module
from .errors import SdlensError
from .formula import FormulaOps, TensorMathError
from .schedulers import SCHEDULERS
from .schedulers.base import StepResult

PARTS = {"guidance": "guide", "step": "step"}  # part → the function it must define
TIME_LIMIT_S = 5.0  # for one call of edited code


class CodeError(SdlensError):
    def __init__(self, part: str, line: int | None, message: str):
        where = f" (line {line})" if line else ""
        super().__init__(f"your {part} code: {message}{where}")
        self.part, self.line, self.detail = part, line, message


class _TimeLimit(Exception):
    pass


def original_source(part: str, scheduler: str = "ddim") -> str:
    """The source of what runs by default: `guide`, or the scheduler class's `step`."""
    if part == "guidance":
        return inspect.getsource(guidance_module.guide)
    if part == "step":
        cls = SCHEDULERS.get(scheduler)
        if cls is None:
            raise SdlensError(f"unknown scheduler {scheduler!r}")
        return textwrap.dedent(inspect.getsource(cls.step))
    raise SdlensError(f"unknown part {part!r}; choose guidance or step")


def _filename(part: str) -> str:
    return f"<your {part} code>"


def _line_in(tb, filename: str) -> int | None:
    line = None
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == filename:
            line = tb.tb_lineno
        tb = tb.tb_next
    return line


def _expression_in(tb, filename: str) -> str | None:
    """The text of the expression that failed in the edited code, e.g. "eps_cond * eps_uncond"."""
    frames = [f for f in traceback.extract_tb(tb) if f.filename == filename]
    if not frames or getattr(frames[-1], "colno", None) is None:
        return None
    where = frames[-1]
    line = linecache.getline(filename, where.lineno).encode()  # columns count UTF-8 bytes
    end = where.end_colno if where.end_lineno == where.lineno else len(line.rstrip())
    return line[where.colno:end].decode(errors="replace").strip() or None


# Tensors reach the code as formula objects and runtime handles; the learner knows them as tensors.
_INTERNAL_NAMES = re.compile(r"\b(?:LinearCombination|Handle|(?:numpy\.)?ndarray|JsProxy)\b")


def _message(err: Exception, filename: str) -> str:
    if isinstance(err, TensorMathError):
        expression = _expression_in(err.__traceback__, filename)
        return f"`{expression}` {err.what}" if expression else f"this line {err.what}"
    return _INTERNAL_NAMES.sub("tensor", f"{type(err).__name__}: {err}").replace("FormulaOps", "ops")


def _compile(part: str, source: str, namespace: dict):
    filename = _filename(part)
    # linecache lets tracebacks quote the edited lines.
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
    try:
        code = compile(source, filename, "exec")
    except SyntaxError as err:
        raise CodeError(part, err.lineno, f"SyntaxError: {err.msg}") from None
    scope = dict(namespace)
    try:
        exec(code, scope)
    except Exception as err:
        raise CodeError(part, _line_in(err.__traceback__, filename), f"{type(err).__name__}: {err}") from None
    function = scope.get(PARTS[part])
    # (The module's namespace already holds the original: it must be the edited text's own.)
    if not callable(function) or getattr(function, "__code__", None) is None or function.__code__.co_filename != filename:
        raise CodeError(part, 1, f"define a function named {PARTS[part]}")
    return function


def _guarded(part: str, function, limit_s: float, stopped=None):
    """`function`, run with a time limit, its errors turned into CodeErrors with the line.
    `stopped()` (when given) says the learner pressed Stop: checked at each line of the edited
    code, so a loop that never ends stops at once. (The check is here, in the edited code's own
    lines, and not an interrupt that may land anywhere: one landing while the runtime waits for
    the device, in a UNet call, never returns.)"""
    filename = _filename(part)

    def call(*args, **kwargs):
        started = time.perf_counter()

        def local(frame, event, arg):
            if stopped is not None and stopped():
                raise KeyboardInterrupt
            if time.perf_counter() - started > limit_s:
                raise _TimeLimit()
            return local

        def tracer(frame, event, arg):
            # Only the edited code's own frames are traced, so the runtime runs at full speed.
            return local if frame.f_code.co_filename == filename else None

        previous = sys.gettrace()
        sys.settrace(tracer)
        try:
            return function(*args, **kwargs)
        except _TimeLimit as err:
            raise CodeError(part, _line_in(err.__traceback__, filename),
                            f"still running after {limit_s:g} s (a loop that never ends?)") from None
        except (CodeError, KeyboardInterrupt):
            raise
        except Exception as err:
            raise CodeError(part, _line_in(err.__traceback__, filename), _message(err, filename)) from None
        finally:
            sys.settrace(previous)

    return call


def _shape(value):
    return tuple(value.shape) if hasattr(value, "shape") else type(value).__name__


class EditedCode:
    """Edited guidance and/or step for one run. Raises CodeError for code that does not compile."""

    def __init__(self, guidance: str | None = None, step: str | None = None, scheduler: str = "ddim",
                 time_limit_s: float = TIME_LIMIT_S, stopped=None):
        """`stopped()`: whether the learner has pressed Stop (the page's shared flag)."""
        self.scheduler = scheduler
        self.guide = None
        self._step = None
        if guidance is not None:
            raw = _guarded("guidance", _compile("guidance", guidance, vars(guidance_module)), time_limit_s, stopped)

            def guide(ops, eps_uncond, eps_cond, scale):
                ops = FormulaOps(ops)
                out = raw(ops, ops.tensor(eps_uncond), ops.tensor(eps_cond), scale)
                if _shape(out) != tuple(eps_cond.shape):
                    raise CodeError("guidance", None, f"guide must return a tensor shaped like eps_cond "
                                                      f"{tuple(eps_cond.shape)}, not {_shape(out)}")
                return ops.value(out)  # a formula is computed here: one ops.combine

            self.guide = guide
        if step is not None:
            cls = SCHEDULERS.get(scheduler)
            if cls is None:
                raise SdlensError(f"unknown scheduler {scheduler!r}")
            self._step = _guarded("step", _compile("step", step, vars(sys.modules[cls.__module__])), time_limit_s, stopped)

    @property
    def modified(self) -> bool:
        return self.guide is not None or self._step is not None

    def install(self, scheduler) -> None:
        """Make this run's scheduler object use the edited step (the class stays as it is)."""
        if self._step is None:
            return
        if scheduler.name != self.scheduler:
            raise SdlensError(f"the edited step is {self.scheduler}'s, but this run uses {scheduler.name}")
        edited = self._step

        def step(this, model_output, index, sample, ops, generator=None):
            ops = FormulaOps(ops)
            out = edited(this, ops.tensor(model_output), index, ops.tensor(sample), ops, generator=generator)
            if not isinstance(out, StepResult):
                raise CodeError("step", None, f"step must return a StepResult, not {type(out).__name__}")
            for name in ("prev_sample", "pred_original_sample"):
                if _shape(getattr(out, name)) != tuple(sample.shape):
                    raise CodeError("step", None, f"StepResult.{name} must be shaped like the sample "
                                                  f"{tuple(sample.shape)}, not {_shape(getattr(out, name))}")
            # Formulas are computed here, one ops.combine each; the pipeline gets runtime tensors.
            return StepResult(ops.value(out.prev_sample), ops.value(out.pred_original_sample), out.coefficients)

        scheduler.step = types.MethodType(step, scheduler)
