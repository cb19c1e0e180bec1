"""The fast engine's Adam / AdamW update (scratch_ae/fast/adam.py) against the readable reference `Adam.update`.

Each form is called directly (`compiled_update`, `blocked_update` with large and tiny blocks,
`adam_update` choosing between them); on the CPU each must equal the reference bit for bit.  The
CuPy kernel is checked to rounding on a GPU (and on the stand-in, tests/test_cupy_stand_in.py).
"""
import numpy as np
import pytest

from scratch_ae import Autoencoder
from scratch_ae.backend import cupy_unavailable_reason
from scratch_ae.fast.adam import BLOCK_BYTES, adam_update, blocked_update, compiled_update, reordered_scalars
from scratch_ae.fast.jit import numba_unavailable_reason
from scratch_ae.optimizers import SGD, Adam, AdamW, make_optimizer

# Weight, bias, and a matrix spanning several cache blocks with a ragged last block.
SHAPES = {"layers.0.W": (300, 257), "layers.0.b": (257,), "layers.1.W": (7, 3), "layers.1.b": (3,)}

needs_numba = pytest.mark.skipif(numba_unavailable_reason() is not None,
                                 reason=f"needs Numba: {numba_unavailable_reason()}")


def run_both(make, dtype, steps=6, xp=np, seed=0):
    """Step a reference and a fast-engine optimizer on identical parameters and gradients."""
    rng = np.random.default_rng(seed)
    start = {k: rng.standard_normal(s).astype(dtype) for k, s in SHAPES.items()}
    ref_params = {k: xp.asarray(v.copy()) for k, v in start.items()}
    fast_params = {k: xp.asarray(v.copy()) for k, v in start.items()}
    ref, fast = make("reference"), make("fast")
    for _ in range(steps):
        # gradients over several orders of magnitude, some exactly zero
        grads = {k: xp.asarray((rng.standard_normal(s) * 10.0 ** rng.uniform(-6, 2, s) * (rng.uniform(size=s) > 0.1)).astype(dtype))
                 for k, s in SHAPES.items()}
        before = {k: g.copy() for k, g in grads.items()}
        ref.step(ref_params, grads)
        fast.step(fast_params, grads)
        for k in grads:  # the gradient is only read
            assert bool((grads[k] == before[k]).all())
    return ref, fast, ref_params, fast_params


MAKERS = {
    "adam": lambda engine: Adam(0.01, engine=engine),
    "adam-custom-betas": lambda engine: Adam(0.003, beta1=0.8, beta2=0.95, eps=1e-6, engine=engine),
    "adamw": lambda engine: AdamW(0.01, weight_decay=0.1, engine=engine),
}
HYPER = {"adam": dict(lr=0.01, beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=0.0),
         "adam-custom-betas": dict(lr=0.003, beta1=0.8, beta2=0.95, eps=1e-6, weight_decay=0.0),
         "adamw": dict(lr=0.01, beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=0.1)}


def blocked_small(*args, **kwargs):
    return blocked_update(*args, **kwargs, block_bytes=4096)  # every large array spans blocks, the last ragged


def blocked_single(*args, **kwargs):
    return blocked_update(*args, **kwargs, block_bytes=4)  # one element per block (float64: 4 bytes round up to one)


FORMS = {
    "compiled": pytest.param(compiled_update, marks=needs_numba, id="compiled"),
    "blocked-default": pytest.param(blocked_update, id="blocked-default"),
    "blocked-4096-bytes": pytest.param(blocked_small, id="blocked-4096-bytes"),
    "blocked-one-element": pytest.param(blocked_single, id="blocked-one-element"),
    "adam_update": pytest.param(adam_update, id="adam_update"),
}


# One element per block is 14 NumPy calls per element: small arrays, a ragged 9 x 7 among them.
SMALL_SHAPES = {"layers.0.W": (9, 7), "layers.0.b": (7,), "layers.1.W": (7, 3), "layers.1.b": (3,)}


def step_with(form, name, dtype, steps=6, seed=0):
    """The reference optimizer and `form` called directly, step by step on the same inputs."""
    h = HYPER[name]
    shapes = SMALL_SHAPES if form is blocked_single else SHAPES
    rng = np.random.default_rng(seed)
    ref_params = {k: rng.standard_normal(s).astype(dtype) for k, s in shapes.items()}
    params = {k: v.copy() for k, v in ref_params.items()}
    moments = {k: (np.zeros_like(v), np.zeros_like(v)) for k, v in params.items()}
    ref = MAKERS[name]("reference")
    for t in range(1, steps + 1):
        grads = {k: (rng.standard_normal(s) * 10.0 ** rng.uniform(-6, 2, s) * (rng.uniform(size=s) > 0.1)).astype(dtype)
                 for k, s in shapes.items()}
        ref.step(ref_params, grads)
        for k, g in grads.items():
            decay = 1 - h["lr"] * h["weight_decay"] if h["weight_decay"] and k.endswith(".W") else None
            form(params[k], g, *moments[k], h["lr"], h["beta1"], h["beta2"], h["eps"], t, decay)
    return ref, params, moments, ref_params


@pytest.mark.parametrize("form", list(FORMS.values()))
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", list(MAKERS))
def test_each_cpu_form_equals_the_reference_bit_for_bit(form, name, dtype):
    ref, params, moments, ref_params = step_with(form, name, dtype)
    for k in params:
        np.testing.assert_array_equal(params[k], ref_params[k], err_msg=k)
        np.testing.assert_array_equal(moments[k][0], ref.state[k]["m"], err_msg=k)
        np.testing.assert_array_equal(moments[k][1], ref.state[k]["v"], err_msg=k)
        assert params[k].dtype == moments[k][0].dtype == moments[k][1].dtype == dtype


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", list(MAKERS))
def test_the_fast_engine_optimizer_equals_the_reference_optimizer_bit_for_bit(name, dtype):
    """Adam(engine="fast").step (whichever form adam_update picks here) against Adam(engine="reference")."""
    if numba_unavailable_reason() is not None:
        pytest.skip(numba_unavailable_reason())
    ref, fast, ref_params, fast_params = run_both(MAKERS[name], dtype)
    assert fast.t == ref.t == 6
    for k in SHAPES:
        np.testing.assert_array_equal(fast_params[k], ref_params[k], err_msg=k)
        np.testing.assert_array_equal(fast.state[k]["m"], ref.state[k]["m"], err_msg=k)
        np.testing.assert_array_equal(fast.state[k]["v"], ref.state[k]["v"], err_msg=k)


@pytest.mark.parametrize("form", [FORMS["compiled"], FORMS["blocked-default"]])
def test_each_form_keeps_inf_nan_and_signed_zero_like_the_reference(form):
    """Edge values: a form must not differ where a reordering or FMA would show."""
    p = np.array([0.0, -0.0, 1.0, -1.0, np.inf, 3e38, 1e-30], dtype=np.float32)
    g = np.array([0.0, 0.0, np.nan, 1e-38, 1.0, 3e38, -1e-30], dtype=np.float32)
    ref_p, q, m, v = {"a.W": p.copy()}, p.copy(), np.zeros_like(p), np.zeros_like(p)
    with np.errstate(all="ignore"):
        AdamW(0.01, weight_decay=0.1, engine="reference").step(ref_p, {"a.W": g})
        form(q, g, m, v, 0.01, 0.9, 0.999, 1e-8, 1, 1 - 0.01 * 0.1)
    np.testing.assert_array_equal(np.signbit(q), np.signbit(ref_p["a.W"]))
    np.testing.assert_array_equal(q, ref_p["a.W"])


@needs_numba
def test_without_a_writable_numba_cache_the_update_compiles_in_memory(monkeypatch):
    """A read-only install: the CompiledLoop retries without numba's on-disk cache (its own state, not a switch)."""
    import numba
    from scratch_ae.fast.adam import ADAM_LOOP
    real_njit, calls = numba.njit, []

    def njit(**options):
        calls.append(options["cache"])
        if options["cache"]:
            raise RuntimeError("cannot cache function '_adam_loop': no locator available")
        return real_njit(**options)

    monkeypatch.setattr(ADAM_LOOP, "compiled", None)
    monkeypatch.setattr(numba, "njit", njit)
    ref, params, moments, ref_params = step_with(compiled_update, "adamw", np.float32, steps=2)
    assert calls == [True, False]
    for k in SHAPES:
        np.testing.assert_array_equal(params[k], ref_params[k], err_msg=k)


def test_non_contiguous_arrays_take_the_blocked_form_in_place_and_equal_the_reference():
    """adam_update on a transposed gradient and an F-ordered parameter (no flat view: one whole block)."""
    rng = np.random.default_rng(2)
    base = rng.standard_normal((40, 30)).astype(np.float32)
    g = rng.standard_normal((30, 40)).astype(np.float32).T  # a transposed view
    ref_p = {"a.W": base.copy()}
    q = np.asfortranarray(base)
    m, v = np.zeros_like(q), np.zeros_like(q)
    Adam(0.01, engine="reference").step(ref_p, {"a.W": g})
    adam_update(q, g, m, v, 0.01, 0.9, 0.999, 1e-8, 1)
    np.testing.assert_array_equal(q, ref_p["a.W"])
    fast_p = {"a.W": np.asfortranarray(base)}
    if numba_unavailable_reason() is None:
        Adam(0.01, engine="fast").step(fast_p, {"a.W": g})
        np.testing.assert_array_equal(fast_p["a.W"], ref_p["a.W"])
        assert fast_p["a.W"].flags.f_contiguous  # updated in place, not replaced


def test_a_fast_engine_adam_trains_an_autoencoder_exactly_like_the_reference(mnist_sample):
    if numba_unavailable_reason() is not None:
        pytest.skip(numba_unavailable_reason())
    x = mnist_sample(16, width=40).astype(np.float32)
    models = [Autoencoder(sizes=[40, 12, 5], seed=3, engine="reference") for _ in range(2)]
    opts = [Adam(0.01, engine="reference"), Adam(0.01, engine="fast")]
    for _ in range(10):
        for model, opt in zip(models, opts):
            _, grads = model.loss_and_grads(x)
            opt.step(model.parameters(), grads)
    for k, v in models[0].parameters().items():
        np.testing.assert_array_equal(models[1].parameters()[k], v, err_msg=k)


def test_the_gpu_kernels_reordered_form_equals_the_reference_on_the_cpu():
    """The kernel's maths (derivations/optimizers.md#adam-fused), evaluated with NumPy in float64."""
    rng = np.random.default_rng(4)
    p, m, v = rng.standard_normal(1000), rng.standard_normal(1000) * 0.1, rng.uniform(0, 0.01, 1000)
    g = rng.standard_normal(1000)
    lr, b1, b2, eps, t = 0.01, 0.9, 0.999, 1e-8, 7
    ref_p, state = {"a.W": p.copy()}, {"a.W": {"m": m.copy(), "v": v.copy()}}
    ref = Adam(lr, b1, b2, eps, engine="reference")
    ref.t, ref.state = t - 1, state
    ref.step(ref_p, {"a.W": g})
    eta_t, eps_t = reordered_scalars(lr, eps, 1 - b1 ** t, 1 - b2 ** t)
    m2, v2 = b1 * m + (1 - b1) * g, b2 * v + (1 - b2) * g * g  # the kernel's lines, in order
    q = p - eta_t * m2 / (np.sqrt(v2) + eps_t)
    np.testing.assert_allclose(q, ref_p["a.W"], rtol=1e-14, atol=1e-16)


def test_every_form_keeps_the_derivation_pointer():
    for form in (adam_update, compiled_update, blocked_update):
        assert "Derivation: derivations/optimizers.md#adam-fused" in form.__doc__, form.__name__
    assert BLOCK_BYTES >= 4096  # the tiny blocks above really are smaller than the default


def test_the_reference_engine_runs_update_and_the_fast_engine_runs_fast_update(monkeypatch):
    """Which method a step calls is the engine's choice, made per parameter array (engine_for)."""
    calls = []
    for method in ("update", "fast_update"):
        real = getattr(Adam, method)
        monkeypatch.setattr(Adam, method, lambda self, *a, _m=method, _r=real: (calls.append(_m), _r(self, *a)))
    p, g = {"a.W": np.ones(3, np.float32)}, {"a.W": np.ones(3, np.float32)}
    reference = Adam(1e-3, engine="reference")
    assert reference.engine == "reference" and reference.engine_for(p["a.W"]) == "reference"
    reference.step(p, g)
    assert calls == ["update"]
    if numba_unavailable_reason() is None:
        calls.clear()
        fast = Adam(1e-3, engine="fast")
        assert fast.engine_for(p["a.W"]) == "fast"
        fast.step(p, g)
        assert calls == ["fast_update"]
        assert Adam(1e-3).engine == "auto" and Adam(1e-3).engine_for(p["a.W"]) == "fast"  # auto: fast on NumPy + Numba
    else:
        assert Adam(1e-3).engine_for(p["a.W"]) == "reference"
        with pytest.raises(ValueError, match="numba"):
            Adam(1e-3, engine="fast").step(p, g)


def test_make_optimizer_passes_the_engine_through():
    x = np.zeros(2, np.float32)
    for name in ("adam", "adamw", "sgd", "momentum", "nesterov"):
        assert make_optimizer(name, 1e-3).engine == "auto"  # stored as given
        assert make_optimizer(name, 1e-3, engine="reference").engine_for(x) == "reference"
    if numba_unavailable_reason() is None:
        assert make_optimizer("adamw", 1e-3, weight_decay=0.1, engine="fast").engine_for(x) == "fast"
        assert make_optimizer("adam", 1e-3).engine_for(x) == "fast"
    assert isinstance(make_optimizer("sgd", 1e-3, engine="fast"), SGD)  # SGD accepts every engine (no fast form)
    with pytest.raises(ValueError, match="engine"):
        make_optimizer("adam", 1e-3, engine="fused")
    with pytest.raises(ValueError, match="engine"):
        Adam(1e-3, engine=True)


@pytest.mark.gpu
@pytest.mark.skipif(cupy_unavailable_reason() is not None, reason=f"needs CuPy and a CUDA GPU: {cupy_unavailable_reason()}")
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", list(MAKERS))
def test_cupy_fused_kernel_equals_the_reference(name, dtype):
    """The ElementwiseKernel against the plain xp reference on the GPU (to rounding: one kernel may use FMAs)."""
    import cupy
    ref, fast, ref_params, fast_params = run_both(MAKERS[name], dtype, xp=cupy)
    rtol = 1e-5 if dtype == np.float32 else 1e-12
    for k in SHAPES:
        pairs = [("param", fast_params[k], ref_params[k])] + [(s, fast.state[k][s], ref.state[k][s]) for s in ("m", "v")]
        for what, got, want in pairs:
            got, want = cupy.asnumpy(got), cupy.asnumpy(want)
            assert got.dtype == want.dtype == dtype
            # relative to the array's scale: m = b1 m + (1 - b1) g can cancel to near zero
            assert np.max(np.abs(got - want)) <= rtol * np.max(np.abs(want)), f"{what} of {k}"
