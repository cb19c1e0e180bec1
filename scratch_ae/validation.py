"""The library's argument checks, written once: each returns the value in its plain form or raises
one ValueError naming the argument, what was expected and what it got.

    integer("latent", 0)                    -> ValueError: latent must be an integer >= 1, got 0
    number("beta", -1, low=0)               -> ValueError: beta must be a finite number >= 0, got -1
    number("dropout", 1.0, 0, 1, high_open=True, what="dropout (the drop probability)")
                                            -> ValueError: dropout (the drop probability) must be a finite
                                               number in [0, 1), got 1.0
    choice("loss", "hinge", ("mse", "bce")) -> ValueError: unknown loss 'hinge'; expected one of: mse, bce

Booleans are refused where a number is expected (True is an int to Python, never a width or a rate
here).  The command line parses its options with its own argparse types (scratch_ae/cli/validators.py);
these are for the Python API: the models' constructor arguments, the optimizers, the Trainer.
"""
import math
from numbers import Integral, Real


def _interval(low, high, low_open, high_open):
    if high is None:
        return f"{'>' if low_open else '>='} {low:g}"
    if low is None:
        return f"{'<' if high_open else '<='} {high:g}"
    return f"in {'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"


def integer(name, value, minimum=1, allow_none=False, what=None):
    """`value` as an int >= minimum (None passes when allow_none); else a ValueError naming `what` or `name`."""
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, Integral) or value < minimum:
        none = " or None" if allow_none else ""
        raise ValueError(f"{what or name} must be an integer >= {minimum}{none}, got {value!r}")
    return int(value)


def number(name, value, low=None, high=None, low_open=False, high_open=False, allow_none=False, what=None):
    """`value` as a finite float within the bounds given (None: unbounded on that side); else a ValueError."""
    if value is None and allow_none:
        return None
    ok = isinstance(value, Real) and not isinstance(value, bool) and math.isfinite(value)
    if ok and low is not None:
        ok = value > low if low_open else value >= low
    if ok and high is not None:
        ok = value < high if high_open else value <= high
    if not ok:
        bounds = "" if low is None and high is None else " " + _interval(low, high, low_open, high_open)
        none = " or None" if allow_none else ""
        raise ValueError(f"{what or name} must be a finite number{bounds}{none}, got {value!r}")
    return float(value)


def fraction(name, value, what=None):
    """`value` as a float in the open interval (0, 1) (a share of the data); else a ValueError."""
    ok = isinstance(value, Real) and not isinstance(value, bool) and 0 < value < 1
    if not ok:
        raise ValueError(f"{what or name} must be a fraction in (0, 1), got {value!r}")
    return float(value)


def flag(name, value):
    """`value` as a bool (True/False, NumPy's too); anything else is a ValueError."""
    if not isinstance(value, bool) and type(value).__name__ != "bool_":
        raise ValueError(f"{name} must be True or False, got {value!r}")
    return bool(value)


def choice(name, value, choices):
    """`value` itself when it is one of `choices`; else "unknown <name> ...; expected one of: ..."."""
    if not isinstance(value, str) or value not in choices:
        raise ValueError(f"unknown {name} {value!r}; expected one of: {', '.join(choices)}")
    return value


def integers(name, value, length=None, minimum=1):
    """`value` (a sequence) as a tuple of ints >= minimum, of `length` entries when given; else a ValueError."""
    try:
        out = tuple(value)
    except TypeError:
        out = None
    if (not out or (length is not None and len(out) != length)
            or not all(isinstance(v, Integral) and not isinstance(v, bool) and v >= minimum for v in out)):
        count = f"{length} " if length is not None else ""
        kind = "positive integers" if minimum == 1 else f"integers >= {minimum}"
        raise ValueError(f"{name} must list {count or 'one or more '}{kind}, got {value!r}")
    return tuple(int(v) for v in out)


__all__ = ["integer", "number", "fraction", "flag", "choice", "integers"]
