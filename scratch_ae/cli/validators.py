"""The command line's argument types, written once: each parses one option's text or says what it expected.

An argparse `type=` raises argparse.ArgumentTypeError; argparse then reports
"argument --NAME: expected ..., got '...'" as the one-line error (exit status 2).
"""
import argparse

INF = float("inf")


def number(cast, accept, expected):
    """An argparse type: `cast` the text, then require `accept(value)`, else say what was expected."""
    def parse(text):
        try:
            value = cast(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}") from None
        if not accept(value):  # NaN fails every comparison, so it is rejected too
            raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}")
        return value
    parse.__name__ = expected
    return parse


positive_int = number(int, lambda v: v > 0, "a positive integer")
at_least_2 = number(int, lambda v: v >= 2, "an integer >= 2")
nonnegative_int = number(int, lambda v: v >= 0, "an integer >= 0")
positive_float = number(float, lambda v: 0 < v < INF, "a positive finite number")
nonnegative_float = number(float, lambda v: 0 <= v < INF, "a finite number >= 0")
fraction = number(float, lambda v: 0 <= v < 1, "a fraction in [0, 1)")
open_fraction = number(float, lambda v: 0 < v < 1, "a fraction in (0, 1)")


def hidden_sizes(text):
    """Comma-separated positive widths ("256" or "128,64"), kept as the text (the saved config's form)."""
    for part in text.split(","):
        positive_int(part)
    return text


def n_jobs(text):
    """joblib's worker count: a positive integer, or -1 for every core."""
    value = number(int, lambda v: v > 0 or v == -1, "a positive number of workers or -1")(text)
    return value
