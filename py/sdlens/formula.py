"""Tensors you can write formulas with: `eps_uncond + g * (eps_cond - eps_uncond)`.

A runtime can do one kind of tensor arithmetic: a linear combination ``c₁·t₁ + c₂·t₂ + …``
(``ops.combine``), run as one operation on the device that holds the tensors. Guidance and the
scheduler steps are exactly such combinations, so they may be written as formulas:

    eps_uncond + g * (eps_cond - eps_uncond)

Each ``+``, ``-`` and ``*`` by a number does no tensor work at all. It only updates the numbers
of a `LinearCombination`, a list of (coefficient, tensor) terms kept in plain Python floats:

    eps_cond - eps_uncond                ->  1·eps_cond - 1·eps_uncond
    g * (eps_cond - eps_uncond)          ->  g·eps_cond - g·eps_uncond
    eps_uncond + g * (...)               ->  (1 - g)·eps_uncond + g·eps_cond

Only when a real tensor is needed (the formula is returned, or handed to `ops`) is it computed,
by one ``ops.combine`` call with those coefficients: the same numbers, in the same order, that
``ops.combine([(1 - g, eps_uncond), (g, eps_cond)])`` gets.

What a linear combination cannot express (a tensor times a tensor, a tensor plus a number, a
power, ...) raises `TensorMathError`, which says in words what the expression asked for.
"""

from __future__ import annotations

import numbers

#: The most terms one ops.combine takes: the browser runs a fixed graph per term count
#: (web/runtime/ops/combine_1 … combine_6, export/web_ops.py). Longer formulas are summed in parts.
MAX_TERMS = 6

LINEAR_ONLY = ("here tensors can only be added, subtracted, and multiplied or divided by numbers: "
               "one linear combination, computed in one step")


class TensorMathError(TypeError):
    """A formula asked for something a linear combination cannot do. `what` says it in words,
    to follow the expression the learner wrote ("`a * b` multiplies two tensors ...")."""

    def __init__(self, what: str):
        super().__init__(f"this expression {what}")
        self.what = what


def _is_number(value) -> bool:
    # (float and int first: the general check is an abstract class's, many times slower)
    return type(value) is float or type(value) is int or isinstance(value, numbers.Real)


class LinearCombination:
    """c₁·t₁ + c₂·t₂ + … of same-shaped runtime tensors, computed only when needed."""

    __slots__ = ("ops", "terms", "shape", "_tensor")
    __array_ufunc__ = None  # numpy numbers leave `2.0 * formula` to us instead of making an array

    def __init__(self, ops, terms: list[tuple[float, object]], shape: tuple):
        self.ops = ops  # the real runtime, which computes the result
        self.terms = terms  # [(coefficient, tensor)], each tensor once, in order of first use
        self.shape = shape
        self._tensor = None  # the computed result, once asked for

    @classmethod
    def of(cls, ops, tensor) -> "LinearCombination":
        """The tensor itself, as the formula 1·tensor."""
        if isinstance(tensor, LinearCombination):
            return tensor
        return cls(ops, [(1.0, tensor)], tuple(tensor.shape))

    # ---- what the formula computes ------------------------------------------------------

    def tensor(self):
        """The runtime tensor this formula stands for: one ops.combine call (none for 1·t)."""
        if self._tensor is None:
            terms = [(c, t) for c, t in self.terms if c != 0.0] or self.terms[:1]
            if len(terms) == 1 and terms[0][0] == 1.0:
                self._tensor = terms[0][1]
            else:
                # More terms than one combine takes: sum the first ones, then go on from that sum
                # (1.0·sum + …), which adds in the same order and so rounds the same.
                while len(terms) > MAX_TERMS:
                    terms = [(1.0, self.ops.combine(terms[:MAX_TERMS]))] + terms[MAX_TERMS:]
                self._tensor = self.ops.combine(terms)
        return self._tensor

    # ---- the arithmetic a linear combination can do ---------------------------------------

    def _plus(self, other: "LinearCombination", sign: float, verb: str) -> "LinearCombination":
        """self + sign·other: the terms of both, a tensor that is in both once."""
        if other.shape != self.shape:
            raise TensorMathError(f"{verb} tensors of different shapes, {self.shape} and {other.shape}")
        terms = list(self.terms)
        for c, t in other.terms:
            for i, (known_c, known_t) in enumerate(terms):
                if known_t is t:  # the same tensor again: add up its coefficients
                    terms[i] = (known_c + sign * c, t)
                    break
            else:
                terms.append((sign * c, t))
        return LinearCombination(self.ops, terms, self.shape)

    def _scaled(self, factor: float) -> "LinearCombination":
        return LinearCombination(self.ops, [(c * factor, t) for c, t in self.terms], self.shape)

    def __add__(self, other):
        if isinstance(other, LinearCombination):
            return self._plus(other, 1.0, "adds")
        raise _with_other("adds", other, "to a tensor")

    def __radd__(self, other):
        if _is_number(other) and other == 0:  # sum(...) starts from 0: sum(c * t for c, t in terms) works
            return self
        raise _with_other("adds", other, "to a tensor")

    def __sub__(self, other):
        if isinstance(other, LinearCombination):
            return self._plus(other, -1.0, "subtracts")
        raise _with_other("subtracts", other, "from a tensor")

    def __rsub__(self, other):
        if _is_number(other):
            raise TensorMathError(f"subtracts a tensor from a number; {LINEAR_ONLY}")
        raise _with_other("subtracts", other, "from a tensor")

    def __neg__(self):
        return self._scaled(-1.0)

    def __pos__(self):
        return self

    def __mul__(self, other):
        if _is_number(other):
            return self._scaled(float(other))
        if isinstance(other, LinearCombination):
            raise TensorMathError(f"multiplies two tensors element by element; {LINEAR_ONLY}")
        raise _with_other("multiplies a tensor by", other)

    __rmul__ = __mul__

    def __truediv__(self, other):
        if _is_number(other):
            if other == 0:
                raise TensorMathError("divides a tensor by zero")
            return LinearCombination(self.ops, [(c / float(other), t) for c, t in self.terms], self.shape)
        if isinstance(other, LinearCombination):
            raise TensorMathError(f"divides a tensor by a tensor element by element; {LINEAR_ONLY}")
        raise _with_other("divides a tensor by", other)

    def __rtruediv__(self, other):
        raise _with_other("divides", other, "by a tensor")

    # ---- the rest: said in words, never as a Python type error ------------------------------

    def __pow__(self, other, modulo=None):
        raise TensorMathError(f"raises a tensor to a power; {LINEAR_ONLY}")

    def __rpow__(self, other):
        raise TensorMathError(f"raises a number to a tensor power; {LINEAR_ONLY}")

    def __matmul__(self, other):
        raise TensorMathError(f"multiplies tensors as matrices; {LINEAR_ONLY}")

    __rmatmul__ = __matmul__

    def __floordiv__(self, other):
        raise TensorMathError(f"rounds a division of a tensor down (//); {LINEAR_ONLY}")

    __rfloordiv__ = __floordiv__

    def __mod__(self, other):
        raise TensorMathError(f"takes a remainder (%) of a tensor; {LINEAR_ONLY}")

    __rmod__ = __mod__

    def __abs__(self):
        raise TensorMathError(f"takes the absolute value of every element of a tensor; {LINEAR_ONLY}")

    def _compares(self, other):
        raise TensorMathError(f"compares a tensor element by element; {LINEAR_ONLY}")

    __lt__ = __le__ = __gt__ = __ge__ = _compares

    def __bool__(self):
        raise TensorMathError("asks whether a tensor is true or false, but a tensor holds many numbers "
                              "(compare the numbers you compute, such as scale, not tensors)")

    def __float__(self):
        raise TensorMathError("needs one number, but a tensor holds many; math functions work on the "
                              "coefficients (plain numbers), not on tensors")

    __int__ = __index__ = __complex__ = __float__

    def _values(self, *args):
        raise TensorMathError("looks at a tensor's values, which stay on the device: "
                              "of a tensor, only its .shape can be read here")

    __getitem__ = __iter__ = __len__ = _values

    def __getattr__(self, name):
        if name.startswith("__"):  # Python's own protocols (copy, pickle, ...): not the learner's
            raise AttributeError(name)
        raise TensorMathError(f"asks a tensor for .{name}, but a tensor here has only .shape; {LINEAR_ONLY}")

    def __repr__(self):
        return " + ".join(f"{c:g}·tensor{list(t.shape)}" for c, t in self.terms)


def _with_other(verb: str, other, rest: str = "") -> TensorMathError:
    """`a + 1`, `a * "x"`: a tensor with something that is not a tensor."""
    if _is_number(other):
        thing = "a number"
    elif other is None:
        thing = "None"
    elif isinstance(other, str):
        thing = "a piece of text"
    else:
        thing = f"a {type(other).__name__}"
    return TensorMathError(f"{verb} {thing} {rest}".rstrip() + f"; {LINEAR_ONLY}")


class FormulaOps:
    """The runtime as formula code sees it: `ops.combine`, `ops.floats`, ... take formulas as well as
    tensors, and give back tensors that can go on into formulas. Each call runs at once, as the
    runtime's own would, so code written with ops.combine computes exactly what it did before."""

    def __init__(self, ops):
        self.runtime = ops.runtime if isinstance(ops, FormulaOps) else ops

    def tensor(self, tensor) -> LinearCombination:
        """A runtime tensor, ready for + - * / in a formula."""
        return LinearCombination.of(self.runtime, tensor)

    def value(self, formula):
        """The runtime tensor a formula stands for (anything else is returned as it is)."""
        return formula.tensor() if isinstance(formula, LinearCombination) else formula

    def combine(self, terms):
        return self.tensor(self.runtime.combine([(c, self.value(t)) for c, t in terms]))

    def floats(self, values, shape):
        return self.tensor(self.runtime.floats(values, shape))

    def ints(self, values, shape):
        return self.tensor(self.runtime.ints(values, shape))

    def concat(self, tensors):
        return self.tensor(self.runtime.concat([self.value(t) for t in tensors]))

    def split(self, tensor):
        return [self.tensor(t) for t in self.runtime.split(self.value(tensor))]

    def run(self, graph, feeds):
        outputs = self.runtime.run(graph, {name: self.value(t) for name, t in feeds.items()})
        return {name: self.tensor(t) for name, t in outputs.items()}

    def read(self, tensor):
        return self.runtime.read(self.value(tensor))

    def to_rgb8(self, image):
        return self.runtime.to_rgb8(self.value(image))

    def __getattr__(self, name):  # the rest (backend, load, ...) is the runtime's own
        try:
            return getattr(self.runtime, name)
        except AttributeError:
            raise AttributeError(f"ops has no .{name}; it has combine, floats, ints, concat, split, run and read") from None
