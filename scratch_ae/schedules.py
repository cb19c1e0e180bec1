"""Learning-rate schedules: one interface for every optimizer (derivations/optimizers.md#lr-schedules).

A schedule is a small immutable object.  `schedule.lr(base_lr, step, total_steps, steps_per_epoch)`
is the learning rate for the optimizer step with 0-based index `step` of a run of `total_steps`
steps; `schedule(step, total_steps, steps_per_epoch)` (= `multiplier`) is that rate divided by
`base_lr`.  Every schedule here has multiplier <= 1 with a peak of exactly 1, so `base_lr` (the
command line's `--lr`) is always the largest learning rate the run uses.

    Constant()                                        1
    Step(step_size, gamma=0.1)                        gamma ** (epoch // step_size), epoch = step // steps_per_epoch
    Cosine(min_fraction=0.0)                          f + (1 - f) (1 + cos(pi s / T)) / 2
    WarmupCosine(warmup_fraction=0.05, min_fraction=0.0)
                                                      linear warm-up over W = round(warmup_fraction T) steps, then Cosine
    OneCycle(pct_start=0.3, div_factor=25.0, final_div_factor=1e4)
                                                      PyTorch's OneCycleLR (cosine annealing), peak at base_lr

Applied per step (the default the Trainer should use): `step` is the global step
epoch * steps_per_epoch + step_in_epoch and `total_steps` is epochs * steps_per_epoch.  This is
smoother than per epoch, it is what PyTorch's OneCycleLR does, and a warm-up shorter than an
epoch needs it.  Applied per epoch (what deep30's callback did), call it with step = epoch,
total_steps = epochs, steps_per_epoch = 1; `Cosine.lr` evaluates the very expression deep30's
callback did, so that lab's learning rates are reproduced bit for bit.

Either way the learning rate is a pure function of (step, total_steps, steps_per_epoch): no
schedule keeps state or reads the optimizer's current lr, so a run resumed from any step gets
exactly the learning rates of an uninterrupted run, provided the rate is set before each
optimizer step (`apply_schedule`), including the first one after a resume.

The optimizers read `self.lr` afresh at every `step`: SGD.update, Adam.update, AdamW.update, and
the fast engine's updates, which receive `self.lr` as an argument on every call (fast/adam.py: the
CuPy kernel's eta_t = lr sqrt(c2)/c1 and AdamW's decay 1 - lr * weight_decay are computed per
call; the compiled loop casts lr per call).  Nothing caches it, so setting `optimizer.lr` is enough.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from numbers import Integral, Real

OPTION = "--lr-schedule"
FORMS = ("constant", "step:STEP_SIZE[:GAMMA]", "cosine[:MIN_FRACTION]",
         "warmup-cosine[:WARMUP_FRACTION[:MIN_FRACTION]]",
         "one-cycle[:PCT_START[:DIV_FACTOR[:FINAL_DIV_FACTOR]]]")
FORMS_TEXT = ", ".join(FORMS)


class ScheduleSpecError(ValueError):
    """A bad `--lr-schedule` value: one line naming the option and the valid forms.

    `detail` is the message without the leading "argument --lr-schedule: ", for argparse.
    """

    def __init__(self, detail):
        super().__init__(f"argument {OPTION}: {detail}")
        self.detail = detail


def _check_position(step, total_steps, steps_per_epoch):
    for name, value, least in (("step", step, 0), ("total_steps", total_steps, 1),
                               ("steps_per_epoch", steps_per_epoch, 1)):
        if isinstance(value, bool) or not isinstance(value, Integral) or value < least:
            raise ValueError(f"{name} must be an integer >= {least}, got {value!r}")


def _number(name, value, low, high, low_open=False, high_open=False):
    """value as a float in the interval, else a ValueError naming `name`."""
    ok = isinstance(value, Real) and not isinstance(value, bool) and math.isfinite(value)
    if ok:
        ok = (value > low if low_open else value >= low) and (value < high if high_open else value <= high)
    if not ok:
        interval = f"{'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"
        raise ValueError(f"{name} must be a number in {interval}, got {value!r}")
    return float(value)


def _spec_number(x):
    """A float as the shortest text that parses back to it ("0.5", "10000.0")."""
    return repr(float(x))


def _anneal_cos(start, end, pct):
    """From `start` at pct = 0 to `end` at pct = 1 along a half cosine (PyTorch's OneCycleLR form)."""
    return end + (start - end) / 2.0 * (math.cos(math.pi * pct) + 1.0)


class Schedule:
    """The interface: `lr(base_lr, step, total_steps, steps_per_epoch=1)` and the multiplier it scales.

    step: 0-based index of the optimizer step about to be taken; total_steps: steps in the run
    (a step >= total_steps gets the end-of-run value); steps_per_epoch: only the per-epoch
    schedules (Step) use it.  Subclasses implement `lr`; `multiplier` is `lr` at base_lr = 1.
    """

    name = "schedule"

    def lr(self, base_lr, step, total_steps, steps_per_epoch=1):
        raise NotImplementedError

    def multiplier(self, step, total_steps, steps_per_epoch=1):
        return self.lr(1.0, step, total_steps, steps_per_epoch)

    def __call__(self, step, total_steps, steps_per_epoch=1):
        return self.multiplier(step, total_steps, steps_per_epoch)

    def spec(self):
        """The `--lr-schedule` text that `make_schedule` turns back into an equal schedule."""
        raise NotImplementedError


@dataclass(frozen=True)
class Constant(Schedule):
    """lr = base_lr at every step."""

    name = "constant"

    def lr(self, base_lr, step, total_steps, steps_per_epoch=1):
        """Derivation: derivations/optimizers.md#lr-schedules"""
        _check_position(step, total_steps, steps_per_epoch)
        return base_lr

    def spec(self):
        return "constant"


@dataclass(frozen=True)
class Step(Schedule):
    """lr = base_lr * gamma ** (epoch // step_size), epoch = step // steps_per_epoch (PyTorch's StepLR).

    Changes only at epoch boundaries, whether applied per step or per epoch.
    """

    step_size: int
    gamma: float = 0.1
    name = "step"

    def __post_init__(self):
        if isinstance(self.step_size, bool) or not isinstance(self.step_size, Integral) or self.step_size < 1:
            raise ValueError(f"step_size must be a positive integer (epochs), got {self.step_size!r}")
        object.__setattr__(self, "step_size", int(self.step_size))
        object.__setattr__(self, "gamma", _number("gamma", self.gamma, 0.0, 1.0, low_open=True))

    def lr(self, base_lr, step, total_steps, steps_per_epoch=1):
        """Derivation: derivations/optimizers.md#lr-schedules"""
        _check_position(step, total_steps, steps_per_epoch)
        epoch = min(step, total_steps) // steps_per_epoch
        return base_lr * self.gamma ** (epoch // self.step_size)

    def spec(self):
        return f"step:{self.step_size}:{_spec_number(self.gamma)}"


@dataclass(frozen=True)
class Cosine(Schedule):
    """lr = lo + (base_lr - lo) (1 + cos(pi s / T)) / 2, lo = min_fraction * base_lr (cosine annealing).

    From base_lr at s = 0 down towards lo, reached at s = T (just after the last step).
    """

    min_fraction: float = 0.0
    name = "cosine"

    def __post_init__(self):
        object.__setattr__(self, "min_fraction", _number("min_fraction", self.min_fraction, 0.0, 1.0))

    def lr(self, base_lr, step, total_steps, steps_per_epoch=1):
        """The expression of deep30's former cosine_lr callback, term for term (same floats).

        Derivation: derivations/optimizers.md#cosine-schedule
        """
        _check_position(step, total_steps, steps_per_epoch)
        lo = base_lr * self.min_fraction
        progress = step / total_steps
        return lo + 0.5 * (base_lr - lo) * (1 + math.cos(math.pi * min(progress, 1.0)))

    def spec(self):
        return "cosine" if self.min_fraction == 0.0 else f"cosine:{_spec_number(self.min_fraction)}"


@dataclass(frozen=True)
class WarmupCosine(Schedule):
    """A linear warm-up over W = round(warmup_fraction * T) steps (at least 1 when the fraction is > 0),
    lr = base_lr (s + 1) / W for s < W, then cosine annealing over the remaining T - W steps:
    lr = lo + (base_lr - lo) (1 + cos(pi (s - W) / (T - W))) / 2.

    The warm-up starts at base_lr / W, not 0, so no step is wasted at lr = 0; it reaches
    base_lr at s = W - 1, and the cosine starts from base_lr at s = W.
    """

    warmup_fraction: float = 0.05
    min_fraction: float = 0.0
    name = "warmup-cosine"

    def __post_init__(self):
        object.__setattr__(self, "warmup_fraction",
                           _number("warmup_fraction", self.warmup_fraction, 0.0, 1.0, high_open=True))
        object.__setattr__(self, "min_fraction", _number("min_fraction", self.min_fraction, 0.0, 1.0))

    def warmup_steps(self, total_steps):
        """W: round(warmup_fraction * total_steps), at least 1 when warmup_fraction > 0, at most total_steps."""
        if self.warmup_fraction == 0.0:
            return 0
        return min(total_steps, max(1, round(self.warmup_fraction * total_steps)))

    def lr(self, base_lr, step, total_steps, steps_per_epoch=1):
        """Derivation: derivations/optimizers.md#warmup-cosine"""
        _check_position(step, total_steps, steps_per_epoch)
        warm = self.warmup_steps(total_steps)
        if step < warm:
            return base_lr * (step + 1) / warm
        lo = base_lr * self.min_fraction
        progress = (step - warm) / (total_steps - warm) if total_steps > warm else 1.0
        return lo + 0.5 * (base_lr - lo) * (1 + math.cos(math.pi * min(progress, 1.0)))

    def spec(self):
        text = f"warmup-cosine:{_spec_number(self.warmup_fraction)}"
        return text if self.min_fraction == 0.0 else f"{text}:{_spec_number(self.min_fraction)}"


@dataclass(frozen=True)
class OneCycle(Schedule):
    """PyTorch's OneCycleLR (anneal_strategy="cos", two phases), with base_lr as its max_lr.

    initial = base_lr / div_factor, final = initial / final_div_factor; with e1 = pct_start T - 1
    and e2 = T - 1, a half cosine from initial up to base_lr over s in [0, e1], then from base_lr
    down to final over [e1, e2], reaching `final` at the last step s = T - 1.
    """

    pct_start: float = 0.3
    div_factor: float = 25.0
    final_div_factor: float = 1e4
    name = "one-cycle"

    def __post_init__(self):
        object.__setattr__(self, "pct_start", _number("pct_start", self.pct_start, 0.0, 1.0, True, True))
        object.__setattr__(self, "div_factor", _number("div_factor", self.div_factor, 1.0, math.inf, high_open=True))
        object.__setattr__(self, "final_div_factor",
                           _number("final_div_factor", self.final_div_factor, 1.0, math.inf, high_open=True))

    def lr(self, base_lr, step, total_steps, steps_per_epoch=1):
        """Derivation: derivations/optimizers.md#one-cycle"""
        _check_position(step, total_steps, steps_per_epoch)
        s = min(step, total_steps - 1)
        initial = base_lr / self.div_factor
        final = initial / self.final_div_factor
        up_end, down_end = self.pct_start * total_steps - 1, total_steps - 1
        if s <= up_end:
            return _anneal_cos(initial, base_lr, s / up_end if up_end > 0 else 1.0)
        return _anneal_cos(base_lr, final, min((s - up_end) / (down_end - up_end), 1.0))

    def spec(self):
        return (f"one-cycle:{_spec_number(self.pct_start)}:{_spec_number(self.div_factor)}"
                f":{_spec_number(self.final_div_factor)}")


SCHEDULES = {"constant": (Constant, ()), "step": (Step, (int, float)), "cosine": (Cosine, (float,)),
             "warmup-cosine": (WarmupCosine, (float, float)), "one-cycle": (OneCycle, (float, float, float))}
_ALIASES = {"const": "constant", "none": "constant", "warmup_cosine": "warmup-cosine", "warmupcosine": "warmup-cosine",
            "one_cycle": "one-cycle", "onecycle": "one-cycle"}


def make_schedule(spec):
    """A Schedule from a `--lr-schedule` string ("constant", "step:10:0.5", "cosine", "cosine:0.01",
    "warmup-cosine:0.05", "warmup-cosine:0.05:0.01", "one-cycle:0.3"), a Schedule (returned as is)
    or None (Constant).  Bad input: a one-line ScheduleSpecError (a ValueError) naming --lr-schedule
    and the valid forms.  (The command line's `--lr-schedule` type is scratch_ae.cli.specs.parse_lr_schedule.)
    """
    if spec is None:
        return Constant()
    if isinstance(spec, Schedule):
        return spec
    if not isinstance(spec, str):
        raise ScheduleSpecError(f"expected a string such as 'cosine', got {type(spec).__name__} {spec!r}; "
                                f"valid forms: {FORMS_TEXT}")
    name, *args = [part.strip() for part in spec.strip().split(":")]
    key = _ALIASES.get(name.lower(), name.lower())
    if key not in SCHEDULES:
        raise ScheduleSpecError(f"unknown schedule {name!r} in {spec!r}; valid forms: {FORMS_TEXT}")
    cls, casts = SCHEDULES[key]
    if len(args) > len(casts) or (key == "step" and not args):
        form = [f for f in FORMS if f.split("[")[0].split(":")[0] == key][0]
        raise ScheduleSpecError(f"{spec!r} does not match {form}; valid forms: {FORMS_TEXT}")
    values = []
    for text, cast in zip(args, casts):
        try:
            values.append(cast(text))
        except ValueError:
            kind = "an integer" if cast is int else "a number"
            raise ScheduleSpecError(f"expected {kind}, got {text!r} in {spec!r}; valid forms: {FORMS_TEXT}") from None
    try:
        return cls(*values)
    except ValueError as exc:
        raise ScheduleSpecError(f"{spec!r}: {exc}; valid forms: {FORMS_TEXT}") from None


def apply_schedule(optimizer, base_lr, schedule, step, total_steps, steps_per_epoch=1):
    """Set `optimizer.lr` for the step about to be taken (0-based global `step`); returns the lr.

    Call it before every `optimizer.step` (including the first after a resume): the rate depends
    only on the arguments, never on the optimizer's previous lr.  `schedule`: a Schedule or a
    spec string.

    Derivation: derivations/optimizers.md#lr-schedules
    """
    if isinstance(base_lr, bool) or not isinstance(base_lr, Real) or not 0 < base_lr < math.inf:
        raise ValueError(f"base_lr must be a positive finite number, got {base_lr!r}")
    lr = make_schedule(schedule).lr(base_lr, step, total_steps, steps_per_epoch)
    optimizer.lr = lr
    return lr


__all__ = ["Schedule", "Constant", "Step", "Cosine", "WarmupCosine", "OneCycle", "SCHEDULES", "FORMS",
           "ScheduleSpecError", "make_schedule", "apply_schedule"]
