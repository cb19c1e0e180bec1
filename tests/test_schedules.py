"""Learning-rate schedules (scratch_ae/schedules.py) against their closed forms (derivations/optimizers.md),
and the optimizers actually stepping with the scheduled rate."""
import argparse
import math

import numpy as np
import pytest

from scratch_ae.cli.specs import parse_lr_schedule
from scratch_ae.optimizers import SGD, Adam, AdamW
from scratch_ae.schedules import (FORMS, Constant, Cosine, OneCycle, Schedule, ScheduleSpecError, Step, WarmupCosine,
                                  apply_schedule, make_schedule)

ALL = [Constant(), Step(2, 0.5), Cosine(), Cosine(0.01), WarmupCosine(0.1), WarmupCosine(0.05, 0.01), OneCycle()]


def multipliers(schedule, total, steps_per_epoch=1):
    return [schedule(s, total, steps_per_epoch) for s in range(total)]


# ---------------------------------------------------------------------------- values from the closed forms
def test_constant_is_one_everywhere():
    assert multipliers(Constant(), 7) == [1.0] * 7
    assert Constant().lr(3e-4, 5, 7) == 3e-4


def test_step_decays_by_gamma_every_step_size_epochs():
    # per step, 4 steps per epoch: epochs 0-1 at 1, 2-3 at 0.5, 4 at 0.25
    values = multipliers(Step(2, 0.5), 20, steps_per_epoch=4)
    assert values == [1.0] * 8 + [0.5] * 8 + [0.25] * 4
    # per epoch (step = epoch, steps_per_epoch = 1), PyTorch's StepLR(step_size=10, gamma=0.1)
    assert [Step(10)(e, 30) for e in (0, 9, 10, 19, 20, 29)] == [1.0, 1.0, 0.1, 0.1, 0.1 ** 2, 0.1 ** 2]


def test_cosine_values_at_start_middle_last_step_and_end():
    T, f = 100, 0.01
    c = Cosine(f)
    assert c(0, T) == 1.0
    assert c(T // 2, T) == pytest.approx((1 + f) / 2, abs=1e-15)
    assert c(T - 1, T) == pytest.approx(f + (1 - f) * (1 - math.cos(math.pi / T)) / 2, abs=1e-15)
    assert c(T - 1, T) - f == pytest.approx((1 - f) * math.pi ** 2 / (4 * T ** 2), rel=1e-3)
    assert c(T, T) == pytest.approx(f, abs=1e-15) and c(T + 5, T) == c(T, T)  # past the end: the end value
    assert Cosine()(T, T) == pytest.approx(0.0, abs=1e-16)
    assert c.lr(2e-3, 25, T) == pytest.approx(2e-3 * (f + (1 - f) * (1 + math.cos(math.pi / 4)) / 2), rel=1e-14)


@pytest.mark.parametrize("T", [1, 2, 3, 10, 97, 1000])
@pytest.mark.parametrize("f", [0.0, 0.01, 0.5])
def test_cosine_sum_of_multipliers_has_the_closed_form(T, f):
    """sum_{s<T} cos(pi s/T) = 1, so sum m = T (1 + f)/2 + (1 - f)/2."""
    assert math.fsum(multipliers(Cosine(f), T)) == pytest.approx(T * (1 + f) / 2 + (1 - f) / 2, rel=1e-12, abs=1e-12)


def test_per_step_cosine_stays_within_the_per_epoch_bound():
    E, K, f = 8, 13, 0.01
    per_step = multipliers(Cosine(f), E * K, K)
    bound = (1 - f) * math.pi / (2 * E)
    for e in range(E):
        per_epoch = Cosine(f)(e, E)
        assert per_step[e * K] == pytest.approx(per_epoch, abs=1e-15)  # equal at each epoch's first step
        for k in range(K):
            gap = per_epoch - per_step[e * K + k]
            assert -1e-15 <= gap <= bound


def test_per_epoch_cosine_reproduces_the_deep30_callback_bit_for_bit():
    """deep30's callback set, for epoch e, lr_min + 0.5 (lr_max - lr_min)(1 + cos(pi min(e/epochs, 1)))."""
    lr, epochs = 1e-3, 80
    lr_min = lr * 1e-2
    expected = [lr] + [lr_min + 0.5 * (lr - lr_min) * (1 + math.cos(math.pi * min((e + 1) / epochs, 1.0)))
                       for e in range(epochs - 1)]
    assert [Cosine(0.01).lr(lr, e, epochs) for e in range(epochs)] == expected


def test_warmup_cosine_values_at_start_warmup_end_middle_and_end():
    T, phi, f = 200, 0.05, 0.1
    w = WarmupCosine(phi, f)
    W = 10
    assert w.warmup_steps(T) == W
    assert w(0, T) == pytest.approx(1 / W, abs=1e-15)           # starts at 1/W, not 0
    assert w(4, T) == pytest.approx(5 / W, abs=1e-15)
    assert w(W - 1, T) == 1.0 and w(W, T) == 1.0               # warm-up ends at the peak, the cosine starts there
    mid = W + (T - W) // 2
    assert w(mid, T) == pytest.approx((1 + f) / 2, abs=1e-15)
    assert w(T - 1, T) == pytest.approx(f + (1 - f) * (1 - math.cos(math.pi / (T - W))) / 2, abs=1e-15)
    assert w(T, T) == pytest.approx(f, abs=1e-15)
    total = math.fsum(multipliers(w, T))
    assert total == pytest.approx((W + 1) / 2 + (T - W) * f + (1 - f) * (T - W + 1) / 2, rel=1e-12)
    # the warm-up is at least one step, and none at all for a fraction of 0
    assert WarmupCosine(0.05).warmup_steps(9) == 1 and WarmupCosine(0.0).warmup_steps(9) == 0
    assert multipliers(WarmupCosine(0.0, f), 50) == multipliers(Cosine(f), 50)


def test_one_cycle_values_at_start_peak_middle_and_end():
    """PyTorch's OneCycleLR(max_lr=lr, total_steps=100) defaults: pct_start 0.3, div 25, final div 1e4."""
    T, lr = 100, 0.02
    o = OneCycle()
    initial, final = lr / 25, lr / 25 / 1e4
    assert o.lr(lr, 0, T) == pytest.approx(initial, rel=1e-14)
    assert o.lr(lr, 29, T) == pytest.approx(lr, rel=1e-14)    # e1 = 0.3 * 100 - 1 = 29: the peak
    up_mid = o.lr(lr, 14, T)                                  # (14/29 of the way up)
    assert up_mid == pytest.approx(lr + (initial - lr) / 2 * (math.cos(math.pi * 14 / 29) + 1), rel=1e-14)
    assert o.lr(lr, 64, T) == pytest.approx((lr + final) / 2, rel=1e-14)   # (64 - 29)/(99 - 29) = 1/2
    final_phase = o.lr(lr, 99, T)
    assert final_phase == pytest.approx(final, rel=1e-12)    # the last step reaches the final rate
    assert o.lr(lr, 120, T) == final_phase
    assert OneCycle(0.25, 10.0, 100.0).lr(1.0, 0, 8) == pytest.approx(0.1)      # e1 = 1
    assert OneCycle(0.25, 10.0, 100.0).lr(1.0, 1, 8) == pytest.approx(1.0)
    assert OneCycle(0.25, 10.0, 100.0).lr(1.0, 7, 8) == pytest.approx(1e-3)


def test_schedules_are_monotonic_where_they_should_be():
    T = 240
    non_increasing = lambda v: all(b <= a for a, b in zip(v, v[1:]))
    strictly_decreasing = lambda v: all(b < a for a, b in zip(v, v[1:]))
    strictly_increasing = lambda v: all(b > a for a, b in zip(v, v[1:]))
    assert non_increasing(multipliers(Step(3, 0.5), T, 10))
    assert strictly_decreasing(multipliers(Cosine(0.01), T))
    w = multipliers(WarmupCosine(0.1, 0.01), T)
    assert strictly_increasing(w[:24]) and strictly_decreasing(w[24:])
    o = multipliers(OneCycle(), T)
    peak = int(0.3 * T - 1)
    assert strictly_increasing(o[:peak + 1]) and strictly_decreasing(o[peak:])
    for schedule in ALL:  # the configured lr is the peak of every schedule
        values = multipliers(schedule, T, 10)
        assert max(values) == pytest.approx(1.0, abs=1e-15) and min(values) > 0


def test_the_lr_is_a_pure_function_of_the_step():
    """Two passes, a pass backwards and a pass that starts mid-run give the same rates; the optimizer's
    own lr before the call does not matter."""
    T, K = 60, 7
    for schedule in ALL:
        first = [schedule.lr(1e-3, s, T, K) for s in range(T)]
        assert [schedule.lr(1e-3, s, T, K) for s in range(T)] == first
        assert [schedule.lr(1e-3, s, T, K) for s in reversed(range(T))] == first[::-1]
        opt = SGD(lr=123.0)
        resumed = []
        for s in range(31, T):
            resumed.append(apply_schedule(opt, 1e-3, schedule, s, T, K))
            assert opt.lr == resumed[-1]
            opt.lr = 99.0  # whatever happened to it in between
        assert resumed == first[31:]


# ---------------------------------------------------------------------------- the optimizers use it
def _quadratic_grad(w):
    return 2.0 * (w - 1.5) + 0.3 * np.sin(3 * w)


def test_apply_schedule_sets_the_lr_sgd_uses_in_step():
    base, T = 0.1, 12
    schedule = WarmupCosine(0.25, 0.1)
    for momentum, nesterov in ((0.0, False), (0.9, False), (0.9, True)):
        opt = SGD(base, momentum=momentum, nesterov=nesterov)
        params = {"layers.0.W": np.array([0.2, -1.0, 3.0])}
        w, v = params["layers.0.W"].copy(), np.zeros(3)
        for s in range(T):
            g = _quadratic_grad(params["layers.0.W"])
            lr = apply_schedule(opt, base, schedule, s, T)
            opt.step(params, {"layers.0.W": g})
            v = momentum * v + g
            w = w - lr * ((g + momentum * v) if nesterov else v if momentum else g)  # the velocity form
            assert lr == schedule.lr(base, s, T)
            np.testing.assert_allclose(params["layers.0.W"], w, rtol=0, atol=1e-15)
        assert not np.allclose(w, _sgd_constant(base, momentum, nesterov, T))  # the schedule made a difference


def _sgd_constant(base, momentum, nesterov, T):
    opt = SGD(base, momentum=momentum, nesterov=nesterov)
    params = {"layers.0.W": np.array([0.2, -1.0, 3.0])}
    for _ in range(T):
        opt.step(params, {"layers.0.W": _quadratic_grad(params["layers.0.W"])})
    return params["layers.0.W"]


def _hand_adam(w, m, v, g, lr, t, b1=0.9, b2=0.999, eps=1e-8, decay=None):
    if decay is not None:
        w = w * (1 - lr * decay)
    m = b1 * m + (1 - b1) * g
    v = b2 * v + (1 - b2) * g * g
    return w - lr * (m / (1 - b1 ** t)) / (np.sqrt(v / (1 - b2 ** t)) + eps), m, v


@pytest.mark.parametrize("cls", [Adam, AdamW])
def test_apply_schedule_sets_the_lr_adam_and_adamw_use_in_step(engine, cls):
    base, T, wd = 0.05, 10, 0.2
    kwargs = {"weight_decay": wd} if cls is AdamW else {}
    opt = cls(base, engine=engine, **kwargs)
    schedule = OneCycle(0.3, 5.0, 10.0)
    params = {"layers.0.W": np.array([0.2, -1.0, 3.0]), "layers.0.b": np.array([0.5, -0.5])}
    hand = {name: (p.copy(), np.zeros_like(p), np.zeros_like(p)) for name, p in params.items()}
    for s in range(T):
        grads = {name: _quadratic_grad(p) for name, p in params.items()}
        lr = apply_schedule(opt, base, schedule, s, T)
        opt.step(params, grads)
        for name in params:
            decay = wd if cls is AdamW and name.endswith(".W") else None
            hand[name] = _hand_adam(*hand[name], grads[name], lr, s + 1, decay=decay)
            np.testing.assert_allclose(params[name], hand[name][0], rtol=0, atol=1e-14)


def test_apply_schedule_reaches_the_cupy_adam_kernel(stand_in):
    """On the CuPy path the kernel's eta_t = lr sqrt(c2)/c1 is recomputed from optimizer.lr on every step."""
    import cupy
    base, T = 0.05, 6
    opt = AdamW(base, weight_decay=0.1, engine="fast")  # "fast" on CuPy: the kernel
    w0 = np.array([0.2, -1.0, 3.0], dtype=np.float32)
    params = {"layers.0.W": cupy.asarray(w0)}
    w, m, v = w0.astype(np.float64), np.zeros(3), np.zeros(3)
    for s in range(T):
        g = np.array([0.3, -0.1, 0.7], dtype=np.float32) * (s + 1)
        lr = apply_schedule(opt, base, Cosine(0.1), s, T)
        opt.step(params, {"layers.0.W": cupy.asarray(g)})
        w, m, v = _hand_adam(w, m, v, g.astype(np.float64), lr, s + 1, decay=0.1)
    np.testing.assert_allclose(params["layers.0.W"].get(), w, rtol=1e-5, atol=1e-6)


def test_a_run_resumed_mid_schedule_ends_with_the_same_weights():
    """Interrupt after 9 of 20 steps, rebuild the optimizer from its saved state (as Trainer.load_resume
    does, without the lr), re-apply the schedule from step 9: bit-for-bit the uninterrupted weights."""
    base, T, K = 0.05, 20, 4
    schedule = WarmupCosine(0.1, 0.01)

    def run(opt, params, steps):
        for s in steps:
            apply_schedule(opt, base, schedule, s, T, K)
            opt.step(params, {name: _quadratic_grad(p) for name, p in params.items()})

    for make in (lambda: SGD(base, momentum=0.9), lambda: Adam(base, engine="auto"), lambda: AdamW(base, engine="reference")):
        whole = {"layers.0.W": np.array([0.2, -1.0, 3.0])}
        run(make(), whole, range(T))
        part, first = {"layers.0.W": np.array([0.2, -1.0, 3.0])}, make()
        run(first, part, range(9))
        second = make()  # a fresh optimizer: lr back at base, state restored
        second.load_state_arrays(first.state_arrays(), first.t, part)
        run(second, part, range(9, T))
        assert np.array_equal(part["layers.0.W"], whole["layers.0.W"])


# ---------------------------------------------------------------------------- parsing
@pytest.mark.parametrize("text, expected", [
    ("constant", Constant()), ("none", Constant()), (None, Constant()),
    ("step:10", Step(10, 0.1)), ("step:10:0.5", Step(10, 0.5)), (" Step:3:0.25 ", Step(3, 0.25)),
    ("cosine", Cosine()), ("cosine:0.01", Cosine(0.01)),
    ("warmup-cosine", WarmupCosine()), ("warmup-cosine:0.1", WarmupCosine(0.1)),
    ("warmup_cosine:0.05:0.01", WarmupCosine(0.05, 0.01)),
    ("one-cycle", OneCycle()), ("onecycle:0.25", OneCycle(0.25)), ("one-cycle:0.3:10:1000", OneCycle(0.3, 10, 1000)),
])
def test_make_schedule_parses_the_command_line_forms(text, expected):
    schedule = make_schedule(text)
    assert schedule == expected and isinstance(schedule, Schedule)
    assert make_schedule(schedule.spec()) == schedule  # the canonical text round-trips
    assert make_schedule(schedule) is schedule


@pytest.mark.parametrize("text, says", [
    ("linear", "unknown schedule 'linear'"),
    ("", "unknown schedule ''"),
    ("step", "does not match step:STEP_SIZE[:GAMMA]"),
    ("step:0:0.5", "step_size must be a positive integer"),
    ("step:2.5", "expected an integer, got '2.5'"),
    ("step:10:0", "gamma must be a number in (0, 1]"),
    ("step:10:1.5", "gamma must be a number in (0, 1]"),
    ("cosine:abc", "expected a number, got 'abc'"),
    ("cosine:", "expected a number, got ''"),
    ("cosine:1.5", "min_fraction must be a number in [0, 1]"),
    ("cosine:0.1:0.2", "does not match cosine[:MIN_FRACTION]"),
    ("warmup-cosine:1", "warmup_fraction must be a number in [0, 1)"),
    ("warmup-cosine:nan", "warmup_fraction must be a number in [0, 1)"),
    ("one-cycle:0", "pct_start must be a number in (0, 1)"),
    ("one-cycle:0.3:0.5", "div_factor must be a number in [1, inf)"),
    ("constant:1", "does not match constant"),
])
def test_bad_schedule_specs_are_refused_in_one_line_naming_the_option_and_the_forms(text, says):
    with pytest.raises(ValueError) as info:
        make_schedule(text)
    message = str(info.value)
    assert isinstance(info.value, ScheduleSpecError) and "\n" not in message
    assert message.startswith("argument --lr-schedule: ") and says in message
    assert all(form in message for form in FORMS)


def test_parse_lr_schedule_is_an_argparse_type_returning_the_canonical_text():
    class Refused(Exception):
        pass

    class Parser(argparse.ArgumentParser):
        def error(self, message):
            raise Refused(message)

    parser = Parser()
    parser.add_argument("--lr-schedule", type=parse_lr_schedule, default="constant")
    assert parser.parse_args(["--lr-schedule", "step:10:0.5"]).lr_schedule == "step:10:0.5"
    assert parser.parse_args(["--lr-schedule", "cosine"]).lr_schedule == "cosine"
    assert parser.parse_args([]).lr_schedule == "constant"
    with pytest.raises(Refused) as info:
        parser.parse_args(["--lr-schedule", "cosine:2"])
    assert str(info.value).startswith("argument --lr-schedule: 'cosine:2': min_fraction must be")
    assert str(info.value).count("argument --lr-schedule") == 1


@pytest.mark.parametrize("call, says", [
    (lambda: Cosine()(-1, 10), "step must be an integer >= 0"),
    (lambda: Cosine()(1.5, 10), "step must be an integer >= 0"),
    (lambda: Cosine()(0, 0), "total_steps must be an integer >= 1"),
    (lambda: Step(2)(0, 10, 0), "steps_per_epoch must be an integer >= 1"),
    (lambda: Step(True), "step_size must be a positive integer"),
    (lambda: apply_schedule(SGD(0.1), 0.0, "cosine", 0, 10), "base_lr must be a positive finite number"),
    (lambda: apply_schedule(SGD(0.1), 0.1, "cosin", 0, 10), "unknown schedule 'cosin'"),
    (lambda: make_schedule(0.5), "expected a string such as 'cosine'"),
])
def test_bad_positions_and_arguments_are_refused(call, says):
    with pytest.raises(ValueError, match=None) as info:
        call()
    assert says in str(info.value)
