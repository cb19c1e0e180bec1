"""The fused Adam/AdamW update (optimizers/fused.py) against the readable reference `Adam.update`."""
import numpy as np
import pytest

from scratch_ae import Autoencoder
from scratch_ae.backend import cupy_unavailable_reason
from scratch_ae.jit import numba_unavailable_reason
from scratch_ae.optimizers import Adam, AdamW
from scratch_ae.optimizers import fused as fused_module
from scratch_ae.optimizers.fused import adam_fused_update
from scratch_ae.optimizers.fused_cpu import adam_update_compiled

# Weight, bias, and a matrix spanning several cache blocks with a ragged last block.
SHAPES = {"layers.0.W": (300, 257), "layers.0.b": (257,), "layers.1.W": (7, 3), "layers.1.b": (3,)}


def run_both(make, dtype, steps=6, xp=np, seed=0):
    """Step a reference and a fused optimizer on identical parameters and gradients."""
    rng = np.random.default_rng(seed)
    start = {k: rng.standard_normal(s).astype(dtype) for k, s in SHAPES.items()}
    ref_params = {k: xp.asarray(v.copy()) for k, v in start.items()}
    fused_params = {k: xp.asarray(v.copy()) for k, v in start.items()}
    ref, fused = make(False), make(True)
    for _ in range(steps):
        # gradients over several orders of magnitude, some exactly zero
        grads = {k: xp.asarray((rng.standard_normal(s) * 10.0 ** rng.uniform(-6, 2, s) * (rng.uniform(size=s) > 0.1)).astype(dtype))
                 for k, s in SHAPES.items()}
        before = {k: g.copy() for k, g in grads.items()}
        ref.step(ref_params, grads)
        fused.step(fused_params, grads)
        for k in grads:  # the gradient is only read
            assert bool((grads[k] == before[k]).all())
    return ref, fused, ref_params, fused_params


MAKERS = {
    "adam": lambda fused: Adam(0.01, fused=fused),
    "adam-custom-betas": lambda fused: Adam(0.003, beta1=0.8, beta2=0.95, eps=1e-6, fused=fused),
    "adamw": lambda fused: AdamW(0.01, weight_decay=0.1, fused=fused),
}


@pytest.fixture(params=["numpy-small-blocks", "numpy-default-blocks", "numba"])
def cpu_kernel(request, monkeypatch):
    """Each CPU path of the fused update: NumPy blocks (small blocks make every array span
    several blocks, the last one ragged) and the compiled loop (skipped without Numba)."""
    if request.param == "numba":
        if numba_unavailable_reason() is not None:
            pytest.skip(numba_unavailable_reason())
        monkeypatch.setattr(fused_module, "CPU_KERNEL", "numba")
    else:
        monkeypatch.setattr(fused_module, "CPU_KERNEL", "numpy")
        monkeypatch.setattr(fused_module, "BLOCK_BYTES", 4096 if "small" in request.param else fused_module.BLOCK_BYTES)
    return request.param


@pytest.fixture
def compiled_kernel(monkeypatch):
    """The Numba path (fused_cpu.py); skips where Numba is not installed."""
    if numba_unavailable_reason() is not None:
        pytest.skip(numba_unavailable_reason())
    monkeypatch.setattr(fused_module, "CPU_KERNEL", "numba")


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", list(MAKERS))
def test_cpu_fused_update_equals_the_reference_bit_for_bit(name, dtype, cpu_kernel):
    ref, fused, ref_params, fused_params = run_both(MAKERS[name], dtype)
    assert fused.t == ref.t == 6
    for k in SHAPES:
        np.testing.assert_array_equal(fused_params[k], ref_params[k], err_msg=k)
        np.testing.assert_array_equal(fused.state[k]["m"], ref.state[k]["m"], err_msg=k)
        np.testing.assert_array_equal(fused.state[k]["v"], ref.state[k]["v"], err_msg=k)
        assert fused_params[k].dtype == dtype


def test_compiled_cpu_update_keeps_inf_nan_and_signed_zero_like_the_reference(compiled_kernel):
    """Edge values: the compiled loop must not differ where a reordering or FMA would show."""
    p = np.array([0.0, -0.0, 1.0, -1.0, np.inf, 3e38, 1e-30], dtype=np.float32)
    g = np.array([0.0, 0.0, np.nan, 1e-38, 1.0, 3e38, -1e-30], dtype=np.float32)
    ref_p, fused_p = {"a.W": p.copy()}, {"a.W": p.copy()}
    with np.errstate(all="ignore"):
        AdamW(0.01, weight_decay=0.1).step(ref_p, {"a.W": g})
        AdamW(0.01, weight_decay=0.1, fused=True).step(fused_p, {"a.W": g})
    np.testing.assert_array_equal(np.signbit(fused_p["a.W"]), np.signbit(ref_p["a.W"]))
    np.testing.assert_array_equal(fused_p["a.W"], ref_p["a.W"])


def test_without_a_writable_numba_cache_the_update_compiles_in_memory(compiled_kernel, monkeypatch):
    import numba
    from scratch_ae.optimizers import fused_cpu
    real_njit, calls = numba.njit, []

    def njit(**options):
        calls.append(options["cache"])
        if options["cache"]:
            raise RuntimeError("cannot cache function '_adam_loop': no locator available")
        return real_njit(**options)

    monkeypatch.setattr(fused_cpu.ADAM_LOOP, "compiled", None)
    monkeypatch.setattr(numba, "njit", njit)
    ref, fused, ref_params, fused_params = run_both(MAKERS["adamw"], np.float32, steps=2)
    assert calls == [True, False]
    for k in SHAPES:
        np.testing.assert_array_equal(fused_params[k], ref_params[k], err_msg=k)


def test_without_numba_the_fused_update_falls_back_to_numpy_blocks(monkeypatch):
    monkeypatch.setattr(fused_module, "CPU_KERNEL", "numpy")
    monkeypatch.setattr(fused_module, "adam_update_compiled", lambda *a, **k: pytest.fail("compiled path used"))
    ref, fused, ref_params, fused_params = run_both(MAKERS["adam"], np.float32, steps=2)
    for k in SHAPES:
        np.testing.assert_array_equal(fused_params[k], ref_params[k], err_msg=k)


def test_a_ragged_last_block_and_a_single_element_block(monkeypatch):
    monkeypatch.setattr(fused_module, "CPU_KERNEL", "numpy")
    monkeypatch.setattr(fused_module, "BLOCK_BYTES", 4)  # one float32 per block
    rng = np.random.default_rng(1)
    p, g = rng.standard_normal((9, 7)).astype(np.float32), rng.standard_normal((9, 7)).astype(np.float32)
    ref_p = {"a.W": p.copy()}
    Adam(0.01).step(ref_p, {"a.W": g})
    m, v, q = np.zeros_like(p), np.zeros_like(p), p.copy()
    adam_fused_update(q, g, m, v, 0.01, 0.9, 0.999, 1e-8, t=1)
    np.testing.assert_array_equal(q, ref_p["a.W"])


def test_non_contiguous_parameters_are_updated_in_place_too():
    rng = np.random.default_rng(2)
    base = rng.standard_normal((40, 30)).astype(np.float32)
    g = rng.standard_normal((30, 40)).astype(np.float32).T  # a transposed view
    ref_p, fused_p = {"a.W": base.copy()}, {"a.W": base.copy().T.copy().T}  # F-ordered copy
    Adam(0.01).step(ref_p, {"a.W": g})
    Adam(0.01, fused=True).step(fused_p, {"a.W": g})
    np.testing.assert_array_equal(fused_p["a.W"], ref_p["a.W"])


def test_fused_adam_trains_an_autoencoder_exactly_like_the_reference(mnist_sample):
    x = mnist_sample(16, width=40).astype(np.float32)
    models = [Autoencoder(sizes=[40, 12, 5], seed=3) for _ in range(2)]
    opts = [Adam(0.01), Adam(0.01, fused=True)]
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
    ref = Adam(lr, b1, b2, eps)
    ref.t, ref.state = t - 1, state
    ref.step(ref_p, {"a.W": g})
    eta_t, eps_t = fused_module.reordered_scalars(lr, eps, 1 - b1 ** t, 1 - b2 ** t)
    m2, v2 = b1 * m + (1 - b1) * g, b2 * v + (1 - b2) * g * g  # the kernel's lines, in order
    q = p - eta_t * m2 / (np.sqrt(v2) + eps_t)
    np.testing.assert_allclose(q, ref_p["a.W"], rtol=1e-14, atol=1e-16)


def test_fused_update_keeps_the_derivation_pointer():
    assert "Derivation: derivations/optimizers.md#adam-fused" in adam_fused_update.__doc__
    assert "Derivation: derivations/optimizers.md#adam-fused" in adam_update_compiled.__doc__


def test_make_optimizer_builds_the_fused_adam_and_can_build_the_reference():
    from scratch_ae.optimizers import make_optimizer
    assert make_optimizer("adam", 1e-3).fused and make_optimizer("adamw", 1e-3, weight_decay=0.1).fused
    assert not make_optimizer("adam", 1e-3, fused=False).fused
    assert not Adam(1e-3).fused  # the class itself defaults to the readable reference


@pytest.mark.gpu
@pytest.mark.skipif(cupy_unavailable_reason() is not None, reason=f"needs CuPy and a CUDA GPU: {cupy_unavailable_reason()}")
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", list(MAKERS))
def test_cupy_fused_kernel_equals_the_reference(name, dtype):
    """The ElementwiseKernel against the plain xp reference on the GPU (to rounding: one kernel may use FMAs)."""
    import cupy
    ref, fused, ref_params, fused_params = run_both(MAKERS[name], dtype, xp=cupy)
    rtol = 1e-5 if dtype == np.float32 else 1e-12
    for k in SHAPES:
        pairs = [("param", fused_params[k], ref_params[k])] + [(s, fused.state[k][s], ref.state[k][s]) for s in ("m", "v")]
        for what, got, want in pairs:
            got, want = cupy.asnumpy(got), cupy.asnumpy(want)
            assert got.dtype == want.dtype == dtype
            # relative to the array's scale: m = b1 m + (1 - b1) g can cancel to near zero
            assert np.max(np.abs(got - want)) <= rtol * np.max(np.abs(want)), f"{what} of {k}"

