"""The channels-last CPU path of the conv layers (layers/im2col.py: KERNEL = "compiled") against the
readable reference (KERNEL = "reference"): im2col/col2im and pooling bit for bit, the layers to rounding,
every layout of input the path can meet, caches that follow the forward that made them, fresh outputs."""
import numpy as np
import pytest

from scratch_ae.gradcheck import check_layer
from scratch_ae.layers import Conv2d, ConvTranspose2d, MaxPool2d, MaxUnpool2d, ReLU
from scratch_ae.layers import im2col as im2col_module
from scratch_ae.layers.im2col import col2im, col2im_nhwc, im2col, im2col_nhwc, nhwc
from scratch_ae.jit import numba_unavailable_reason

pytestmark = pytest.mark.skipif(numba_unavailable_reason() is not None, reason="the compiled path needs Numba")

rng = np.random.default_rng(7)

# (channels, kernel, stride, padding): both sides of MIN_CHANNELS_LAST, odd sizes, stride 2, 2x3 kernels
CASES = [(3, (3, 3), 2, 1), (8, (3, 3), 2, 1), (16, (3, 3), 1, 1), (9, (2, 3), (2, 1), (1, 2)), (8, 1, 1, 0),
         (12, (3, 2), 3, 0), (1, (3, 3), 1, 1), (1, (2, 3), (2, 1), (1, 2))]
# (C_in, C_out, kernel, stride, padding, output_padding) for the transposed convolution
T_CASES = [(16, 32, 3, 2, 1, 1), (32, 3, 3, 2, 1, 1), (8, 16, 3, 1, 1, 0), (16, 1, 3, 1, 1, 0), (4, 9, (2, 3), (2, 3), (1, 0), (1, 2)),
           (10, 12, (3, 2), 3, 0, 2), (5, 1, (3, 2), 2, (1, 0), 1)]


def case_id(case):
    return "-".join(str(v).replace(" ", "") for v in case)


@pytest.fixture
def kernel(monkeypatch):
    """Set im2col.KERNEL for the rest of the test: kernel("compiled") / kernel("reference")."""
    def set_kernel(name):
        monkeypatch.setattr(im2col_module, "KERNEL", name)
    set_kernel("compiled")
    return set_kernel


def channels_last_view(x):
    """The same (B, C, H, W) values, stored channels last (what the fast path hands between layers)."""
    return np.ascontiguousarray(x.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2)


def layouts(x):
    return {"nchw": x, "nhwc-view": channels_last_view(x)}


def run(layer, x, G, set_kernel, name):
    set_kernel(name)
    out = layer.forward(x)
    dx = layer.backward(G)
    return out, dx, {k: v.copy() for k, v in layer.grads.items()}


def assert_close(a, b, dtype, what):
    tol = 2e-5 if dtype == np.float32 else 1e-12
    scale = max(float(np.max(np.abs(b))), 1e-30)
    assert a.shape == b.shape and a.dtype == b.dtype, what
    assert float(np.max(np.abs(a - b))) <= tol * scale, f"{what}: {np.max(np.abs(a - b))} vs scale {scale}"


# ---------------------------------------------------------------------------- im2col / col2im: bit for bit
@pytest.mark.parametrize("case", CASES, ids=case_id)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_im2col_nhwc_is_the_reference_matrix_transposed_with_rows_reordered(case, dtype):
    C, kernel, stride, padding = case
    k, s, p = im2col_module.pair(kernel, "k"), im2col_module.pair(stride, "s"), im2col_module.pair(padding, "p")
    x = rng.standard_normal((3, C, 9, 8)).astype(dtype)
    ref = im2col(x, k, s, p, np)                                   # rows (c, i, j), columns (n, p, q)
    fast = im2col_nhwc(nhwc(x), k, s, p)                           # rows (n, p, q), columns (i, j, c)
    expected = ref.reshape(C, k[0], k[1], -1).transpose(3, 1, 2, 0).reshape(fast.shape)
    np.testing.assert_array_equal(fast, expected)


def test_im2col_nhwc_ones_adds_a_last_column_of_ones():
    x = rng.standard_normal((2, 8, 5, 6)).astype(np.float32)
    plain = im2col_nhwc(nhwc(x), (3, 3), (2, 2), (1, 1))
    ones = im2col_nhwc(nhwc(x), (3, 3), (2, 2), (1, 1), ones=True)
    np.testing.assert_array_equal(ones[:, :-1], plain)
    assert (ones[:, -1] == 1).all()


@pytest.mark.parametrize("chunk_bytes", [1, 3000, 1 << 40])
@pytest.mark.parametrize("channels", [8, 1])
def test_the_layers_give_the_same_results_whatever_the_chunk_size(chunk_bytes, channels, kernel, monkeypatch):
    """Batch chunks (im2col.CHUNK_BYTES) change only how many images each product sees at once."""
    x = rng.standard_normal((5, channels, 9, 9)).astype(np.float64)
    results = []
    for size in (1 << 40, chunk_bytes):
        monkeypatch.setattr(im2col_module, "CHUNK_BYTES", size)
        conv = Conv2d(channels, 10, 3, 2, 1, rng=np.random.default_rng(11), dtype=np.float64)
        conv_t = ConvTranspose2d(10, channels, 3, 2, 1, 0, rng=np.random.default_rng(12), dtype=np.float64)
        h = conv_t.forward(conv.forward(x))
        g = conv.backward(conv_t.backward(np.cos(h)))
        results.append([h, g] + [v.copy() for layer in (conv, conv_t) for v in layer.grads.values()])
    for a, b in zip(*results):
        assert_close(a, b, np.float64, f"chunk {chunk_bytes}")


@pytest.mark.parametrize("channels", [8, 1])
def test_products_image_by_image_equal_the_whole_products(channels, kernel, monkeypatch):
    """im2col.PER_IMAGE_MAX_MACS: one small product per image instead of one per batch, to rounding."""
    x = rng.standard_normal((7, channels, 9, 9)).astype(np.float32)
    results = []
    # whole products; then limits that make one-image groups, or groups of 2 and a rest, for one
    # of the two channel counts (one image's products: 58320-59130 multiply-adds with 8 channels,
    # 7290-8100 with 1)
    for limit in (0, 20000, 60000, 130000):
        monkeypatch.setattr(im2col_module, "PER_IMAGE_MAX_MACS", limit)
        conv = Conv2d(channels, 10, 3, 1, 1, rng=np.random.default_rng(14))
        conv_t = ConvTranspose2d(10, channels, 3, 1, 1, 0, rng=np.random.default_rng(15))
        h = conv_t.forward(conv.forward(x))
        g = conv.backward(conv_t.backward(np.cos(h)))
        results.append([h, g] + [v.copy() for layer in (conv, conv_t) for v in layer.grads.values()])
    for other in results[1:]:
        for a, b in zip(other, results[0]):
            assert_close(a, b, np.float32, f"{channels} channels")


@pytest.mark.parametrize("recompute", [False, True])
@pytest.mark.parametrize("channels", [8, 2])
def test_conv2d_gives_the_same_results_whether_it_keeps_or_rebuilds_its_im2col_matrix(recompute, channels, kernel,
                                                                                      monkeypatch):
    """im2col.RECOMPUTE_COLS: the backward builds the matrix again, chunk by chunk, from a copy of x."""
    x = rng.standard_normal((5, channels, 9, 9))
    G = rng.standard_normal((5, 6, 5, 5))
    results = []
    for setting, chunk in ((False, 1 << 40), (recompute, 3000)):
        monkeypatch.setattr(im2col_module, "RECOMPUTE_COLS", setting)
        monkeypatch.setattr(im2col_module, "CHUNK_BYTES", chunk)
        conv = Conv2d(channels, 6, 3, 2, 1, rng=np.random.default_rng(13), dtype=np.float64)
        xx = channels_last_view(x).copy(order="K")
        out = conv.forward(xx)
        xx[...] = 0  # the caller reuses its input's memory before the backward
        if setting:
            assert conv._fast[1] == ("recompute" if channels >= 8 else False)  # few channels: kept
        results.append([out, conv.backward(G)] + [v.copy() for v in conv.grads.values()])
    for a, b in zip(*results):
        assert_close(a, b, np.float64, f"recompute={recompute}")


@pytest.mark.parametrize("case", CASES, ids=case_id)
@pytest.mark.parametrize("with_bias", [False, True])
def test_col2im_nhwc_equals_the_reference_bit_for_bit(case, with_bias):
    C, kernel, stride, padding = case
    k, s, p = im2col_module.pair(kernel, "k"), im2col_module.pair(stride, "s"), im2col_module.pair(padding, "p")
    shape = (3, C, 9, 8)
    ref_cols = rng.standard_normal(im2col(np.zeros(shape, np.float32), k, s, p, np).shape).astype(np.float32)
    b = rng.standard_normal(C).astype(np.float32)
    expected = col2im(ref_cols, shape, k, s, p, np)
    if with_bias:
        expected += b.reshape(1, C, 1, 1)
    cols_t = np.ascontiguousarray(ref_cols.reshape(C, k[0], k[1], -1).transpose(3, 1, 2, 0).reshape(-1, C * k[0] * k[1]))
    fast = col2im_nhwc(cols_t, (3, 9, 8, C), k, s, p, bias=b if with_bias else None)
    np.testing.assert_array_equal(fast, nhwc(expected))


# ---------------------------------------------------------------------------- the layers: fast == reference
def assert_fast_backward_flushes_underflowing_gradients(make, x, kernel):
    """A plateau's tiny deltas times small weights underflow into subnormals, which x86 CPUs compute
    with ~100x slower: the CPU path sets the input gradient's entries below tiny/eps to +0 and
    returns the rest as the reference does (which keeps the subnormals)."""
    from scratch_ae.optimizers.base import flush_threshold
    ref_layer = make()
    kernel("reference")
    out_ref = ref_layer.forward(x)
    G = rng.standard_normal(out_ref.shape).astype(np.float32)
    G[0] *= np.float32(1e-33)           # image 0: every product underflows; image 1: ordinary gradients
    G[2] *= np.float32(1e-22)           # image 2: normal gradients whose products land around 1e-23
    ref_layer.params["W"][...] *= np.float32(1e-5)
    dx_ref = ref_layer.backward(G)
    tiny = np.finfo(np.float32).tiny
    assert np.count_nonzero((dx_ref != 0) & (np.abs(dx_ref) < tiny)) > 0   # the reference keeps them
    for gname, GG in layouts(G).items():
        layer = make()
        layer.params["W"][...] *= np.float32(1e-5)
        out, dx, grads = run(layer, x, GG, kernel, "compiled")
        assert layer._fast is not None
        assert np.count_nonzero((dx != 0) & (np.abs(dx) < tiny)) == 0, gname
        assert np.all(dx[0] == 0) and np.all(np.signbit(dx[0]) == False), gname  # noqa: E712  (+0, not -0)
        np.testing.assert_array_equal(dx[np.abs(dx_ref) < flush_threshold(np.float32)], 0)
        for i in (1, 2):
            assert_close(dx[i], dx_ref[i], np.float32, f"dx image {i} ({gname})")
        for key in ("W", "b"):
            assert_close(grads[key], ref_layer.grads[key], np.float32, f"grad {key} ({gname})")


@pytest.mark.parametrize("recompute", [False, True])
@pytest.mark.parametrize("case", [(16, (3, 3), 2, 1), (3, (3, 3), 2, 1), (9, (2, 3), (2, 1), (1, 2))], ids=case_id)
def test_conv2d_fast_backward_flushes_underflowing_gradients_to_zero(case, recompute, kernel, monkeypatch):
    monkeypatch.setattr(im2col_module, "RECOMPUTE_COLS", recompute)
    C, k, s, p = case
    x = rng.standard_normal((3, C, 9, 8)).astype(np.float32)
    assert_fast_backward_flushes_underflowing_gradients(
        lambda: Conv2d(C, 20, k, s, p, rng=np.random.default_rng(2)), x, kernel)


@pytest.mark.parametrize("case", [(16, 32, 3, 2, 1, 1), (32, 3, 3, 2, 1, 1)], ids=case_id)
def test_conv_transpose2d_fast_backward_flushes_underflowing_gradients_to_zero(case, kernel):
    C_in, C_out, k, s, p, op = case
    y = rng.standard_normal((3, C_in, 5, 6)).astype(np.float32)
    assert_fast_backward_flushes_underflowing_gradients(
        lambda: ConvTranspose2d(C_in, C_out, k, s, p, op, rng=np.random.default_rng(2)), y, kernel)


@pytest.mark.parametrize("case", CASES, ids=case_id)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("need_input_grad", [True, False])
def test_conv2d_fast_path_equals_the_reference(case, dtype, need_input_grad, kernel):
    C, k, s, p = case
    x = rng.standard_normal((4, C, 11, 10)).astype(dtype)
    ref_layer = Conv2d(C, 6, k, s, p, rng=np.random.default_rng(1), dtype=dtype, need_input_grad=need_input_grad)
    kernel("reference")
    out_ref = ref_layer.forward(x)
    G = rng.standard_normal(out_ref.shape).astype(dtype)
    dx_ref = ref_layer.backward(G)
    for name, xx in layouts(x).items():
        for gname, GG in layouts(G).items():
            layer = Conv2d(C, 6, k, s, p, rng=np.random.default_rng(1), dtype=dtype, need_input_grad=need_input_grad)
            out, dx, grads = run(layer, xx, GG, kernel, "compiled")
            where = f"{name} input, {gname} gradient"
            assert_close(out, out_ref, dtype, f"out ({where})")
            if need_input_grad:
                assert_close(dx, dx_ref, dtype, f"dx ({where})")
            else:
                assert dx is None
            for key in ("W", "b"):
                assert_close(grads[key], ref_layer.grads[key], dtype, f"grad {key} ({where})")
            assert layer._fast is not None  # the fast path did run


@pytest.mark.parametrize("case", T_CASES, ids=case_id)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_conv_transpose2d_fast_path_equals_the_reference(case, dtype, kernel):
    C_in, C_out, k, s, p, op = case
    y = rng.standard_normal((3, C_in, 5, 6)).astype(dtype)
    make = lambda: ConvTranspose2d(C_in, C_out, k, s, p, op, rng=np.random.default_rng(2), dtype=dtype)
    ref_layer = make()
    kernel("reference")
    out_ref = ref_layer.forward(y)
    G = rng.standard_normal(out_ref.shape).astype(dtype)
    dy_ref = ref_layer.backward(G)
    for name, yy in layouts(y).items():
        for gname, GG in layouts(G).items():
            layer = make()
            out, dy, grads = run(layer, yy, GG, kernel, "compiled")
            where = f"{name} input, {gname} gradient"
            assert_close(out, out_ref, dtype, f"out ({where})")
            assert_close(dy, dy_ref, dtype, f"dy ({where})")
            for key in ("W", "b"):
                assert_close(grads[key], ref_layer.grads[key], dtype, f"grad {key} ({where})")
            assert layer._fast is not None


@pytest.mark.parametrize("case", [(8, (3, 3), 2, 1), (16, (2, 3), (2, 1), (1, 2)), (9, 1, 1, 0)], ids=case_id)
def test_conv2d_fast_path_matches_finite_differences_channels_last(case, kernel):
    C, k, s, p = case
    layer = Conv2d(C, 3, k, s, p, rng=np.random.default_rng(3), dtype=np.float64)
    errors = check_layer(layer, rng.standard_normal((2, C, 7, 6)), rng=rng)
    assert max(errors.values()) < 1e-6, errors
    assert layer._fast is not None and layer._fast[1]  # channels last


@pytest.mark.parametrize("case", [(3, 8, 3, 2, 1, 1), (8, 10, (2, 3), (2, 3), (1, 0), (1, 2)), (9, 2, 3, 1, 1, 0)],
                         ids=case_id)
def test_conv_transpose2d_fast_path_matches_finite_differences(case, kernel):
    C_in, C_out, k, s, p, op = case
    layer = ConvTranspose2d(C_in, C_out, k, s, p, op, rng=np.random.default_rng(4), dtype=np.float64)
    errors = check_layer(layer, rng.standard_normal((2, C_in, 4, 5)), rng=rng)
    assert max(errors.values()) < 1e-6, errors
    assert layer._fast is not None


def test_a_backward_follows_the_path_of_its_forward_whatever_kernel_says_now(kernel):
    x = rng.standard_normal((2, 8, 7, 7)).astype(np.float32)
    fast, ref = (Conv2d(8, 8, 3, 2, 1, rng=np.random.default_rng(5)) for _ in range(2))
    kernel("compiled")
    out = fast.forward(x)
    kernel("reference")
    out_ref = ref.forward(x)
    G = rng.standard_normal(out.shape).astype(np.float32)
    dx = fast.backward(G)  # the reference kernel is set, but the cache is channels last
    kernel("compiled")
    dx_ref = ref.backward(G)  # and the other way round
    assert_close(dx, dx_ref, np.float32, "dx")
    assert_close(fast.grads["W"], ref.grads["W"], np.float32, "grad W")
    assert_close(out, out_ref, np.float32, "out")


def test_outputs_are_fresh_arrays_not_reused_scratch(kernel):
    conv = Conv2d(8, 8, 3, 1, 1, rng=np.random.default_rng(6))
    conv_t = ConvTranspose2d(8, 8, 3, 2, 1, 1, rng=np.random.default_rng(6))
    x1, x2 = (rng.standard_normal((2, 8, 6, 6)).astype(np.float32) for _ in range(2))
    for layer in (conv, conv_t):
        o1 = layer.forward(x1)
        keep = o1.copy()
        g1 = layer.backward(np.ones_like(o1))
        keep_g = g1.copy()
        layer.forward(x2)
        layer.backward(2 * np.ones_like(o1))
        np.testing.assert_array_equal(o1, keep)
        np.testing.assert_array_equal(g1, keep_g)


def test_cupy_like_and_mixed_dtype_inputs_stay_on_the_reference(kernel):
    conv = Conv2d(8, 4, 3, rng=np.random.default_rng(7), dtype=np.float64)
    conv.forward(rng.standard_normal((1, 8, 5, 5)).astype(np.float32))  # float32 input, float64 weights
    assert conv._fast is None
    assert not im2col_module.fast_path(np.zeros(2, np.float32), np.zeros(2, np.float64))
    assert not im2col_module.fast_path(np.zeros(2, np.int64))


# ---------------------------------------------------------------------------- pooling: bit for bit
# 2x2 windows tiling (the loops' written-out 2x2 case and one-write route), 2x2 overlapping, other windows
@pytest.mark.parametrize("case", [(2, None, (8, 8)), (2, None, (7, 9)), (2, 1, (7, 8)), ((2, 3), (1, 2), (7, 8)),
                                  (3, 2, (9, 9)), (3, None, (8, 7))],
                         ids=case_id)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_maxpool_and_unpool_fast_paths_equal_the_reference_bit_for_bit(case, dtype, kernel):
    k, s, hw = case
    x = rng.standard_normal((3, 10) + hw).astype(dtype)
    x[0, 0, :2, :2] = 1.0                  # ties: the first index wins
    x[1, 1] = np.maximum(x[1, 1], 0) * 0   # all-zero windows (+0 and -0)
    x[2, 3, 1, 1] = np.nan                 # a NaN wins its windows
    results = {}
    for name in ("reference", "compiled"):
        for lname, xx in layouts(x).items():
            kernel(name)
            pool = MaxPool2d(k, s)
            unpool = MaxUnpool2d(pool)
            out = pool.forward(xx)
            up = unpool.forward(out)
            G = np.arange(up.size, dtype=dtype).reshape(up.shape) / up.size
            G.flat[::97] = -0.0                # signed zeros and infinities through the routing
            G.flat[5::101] = np.inf
            with np.errstate(invalid="ignore"):  # inf * 0 in the reference's masked products
                g_unpool = unpool.backward(G)
                g_pool = pool.backward(g_unpool)
            results[name, lname] = [out, pool.argmax, pool.indices, up, g_unpool, g_pool]
    ref = results["reference", "nchw"]
    for key, got in results.items():
        for a, b in zip(got, ref):
            np.testing.assert_array_equal(a, b, err_msg=str(key))


# ---------------------------------------------------------------------------- ReLU: bit for bit, layout kept
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_relu_fast_path_equals_the_reference_bit_for_bit_and_keeps_the_layout(dtype, kernel):
    x = rng.standard_normal((3, 5, 4, 6)).astype(dtype)
    x[0, 0, 0, :3] = [np.nan, -0.0, 0.0]
    x[1, 1, 1, :2] = [np.inf, -np.inf]
    G = rng.standard_normal(x.shape).astype(dtype)
    G[2, 2, 2, :2] = [np.nan, np.inf]
    cases = {"nchw": (x, G), "nhwc-view": (channels_last_view(x), channels_last_view(G)),
             "mixed layouts": (channels_last_view(x), G), "strided": (x[:, :, ::2], G[:, :, ::2])}
    for name, (xx, GG) in cases.items():
        results = {}
        for kname in ("reference", "compiled"):
            kernel(kname)
            relu = ReLU()
            with np.errstate(invalid="ignore"):  # -inf * 0 in the reference's masked product
                out = relu.forward(xx)
                dx = relu.backward(GG)
            results[kname] = (out, dx)
        for a, b in zip(results["compiled"], results["reference"]):
            assert a.strides == b.strides, name
            np.testing.assert_array_equal(a, b, err_msg=name)
            assert (np.signbit(a) == np.signbit(b)).all(), name  # -0 stays -0


# ---------------------------------------------------------------------------- a whole network
def pooled_network(dtype):
    r = np.random.default_rng(8)
    p1, p2 = MaxPool2d(2), MaxPool2d(2)
    return [Conv2d(1, 16, 3, 1, 1, rng=r, dtype=dtype, need_input_grad=False), ReLU(), p1,
            Conv2d(16, 8, 3, 1, 1, rng=r, dtype=dtype), ReLU(), p2, MaxUnpool2d(p2),
            ConvTranspose2d(8, 16, 3, 1, 1, rng=r, dtype=dtype), ReLU(), MaxUnpool2d(p1),
            ConvTranspose2d(16, 1, 3, 1, 1, rng=r, dtype=dtype)]


def stride2_network(dtype):
    r = np.random.default_rng(9)
    return [Conv2d(3, 16, 3, 2, 1, rng=r, dtype=dtype, need_input_grad=False), ReLU(),
            Conv2d(16, 8, 3, 2, 1, rng=r, dtype=dtype), ReLU(),
            ConvTranspose2d(8, 16, 3, 2, 1, 0, rng=r, dtype=dtype), ReLU(),
            ConvTranspose2d(16, 3, 3, 2, 1, 1, rng=r, dtype=dtype)]


@pytest.mark.parametrize("make, shape", [(pooled_network, (5, 1, 28, 28)), (stride2_network, (5, 3, 14, 14))])
def test_loops_split_over_two_threads_give_the_same_bits(make, shape, kernel, monkeypatch):
    """im2col.LOOP_THREADS = 2: the same chunks and images, half of them on a helper thread; the
    weight gradients' parts are added in the same order, so every result is bit-identical."""
    monkeypatch.setattr(im2col_module, "CHUNK_BYTES", 20000)  # several chunks per layer
    x = rng.random(shape).astype(np.float32)
    runs = []
    for threads in (1, 2):
        monkeypatch.setattr(im2col_module, "LOOP_THREADS", threads)
        layers = make(np.float32)
        h = x
        for layer in layers:
            h = layer.forward(h)
        g = 2 * (h - x) / h.size
        for layer in reversed(layers):
            g = layer.backward(g)
        runs.append([h] + [v.copy() for layer in layers for v in layer.grads.values()])
    for a, b in zip(*runs):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("make, shape", [(pooled_network, (4, 1, 28, 28)), (stride2_network, (4, 3, 14, 14))])
def test_whole_networks_give_the_reference_outputs_and_gradients(make, shape, kernel):
    x = rng.random(shape)
    runs = {}
    for name in ("reference", "compiled"):
        kernel(name)
        layers = make(np.float64)
        h = x
        for layer in layers:
            h = layer.forward(h)
        g = 2 * (h - x) / h.size
        for layer in reversed(layers):
            g = layer.backward(g)
        runs[name] = [h] + [v.copy() for layer in layers for v in layer.grads.values()]
    for a, b in zip(runs["compiled"], runs["reference"]):
        assert_close(a, b, np.float64, "network")


def blas_libraries_or_skip():
    libraries = im2col_module._blas_libraries()
    if not libraries:
        pytest.skip("threadpoolctl finds no BLAS library to hold at one thread")
    return libraries


def test_loop_threads_held_splits_with_blas_at_one_thread_and_gives_blas_its_threads_back(monkeypatch):
    """LOOP_THREADS = "blas": two loop threads inside the block only where BLAS may use two; BLAS at one
    thread inside; each library's own count again afterwards, also when the block raises."""
    from threadpoolctl import threadpool_limits
    libraries = blas_libraries_or_skip()
    monkeypatch.setattr(im2col_module, "LOOP_THREADS", "blas")
    with threadpool_limits(2, user_api="blas"):
        assert im2col_module.loop_threads() == 1  # outside a held block: one thread
        with im2col_module.loop_threads_held():
            assert im2col_module.loop_threads() == 2
            assert [lib.get_num_threads() for lib in libraries] == [1] * len(libraries)
            with im2col_module.loop_threads_held():  # nested: the outer block keeps the hold
                assert im2col_module.loop_threads() == 2
            assert im2col_module.loop_threads() == 2
        assert im2col_module.loop_threads() == 1
        assert [lib.get_num_threads() for lib in libraries] == [2] * len(libraries)
        with pytest.raises(RuntimeError):
            with im2col_module.loop_threads_held():
                raise RuntimeError("a failing step")
        assert [lib.get_num_threads() for lib in libraries] == [2] * len(libraries)
        assert im2col_module.loop_threads() == 1
    with threadpool_limits(1, user_api="blas"):  # one BLAS thread asked for: one core, nothing held
        with im2col_module.loop_threads_held():
            assert im2col_module.loop_threads() == 1
    monkeypatch.setattr(im2col_module, "LOOP_THREADS", 1)
    with threadpool_limits(2, user_api="blas"):
        with im2col_module.loop_threads_held():
            assert im2col_module.loop_threads() == 1
            assert [lib.get_num_threads() for lib in libraries] == [2] * len(libraries)


def test_a_conv_models_step_on_two_loop_threads_gives_the_one_thread_results(monkeypatch, mnist_test_images):
    """ConvAutoencoder.loss_and_grads (AutoencoderBase._step_threads) holds BLAS at one thread and splits its chunks: the same loss and
    gradients (to rounding: BLAS at one thread may round differently from two)."""
    from threadpoolctl import threadpool_limits
    blas_libraries_or_skip()
    monkeypatch.setattr(im2col_module, "CHUNK_BYTES", 20000)  # several chunks per layer
    from scratch_ae.models.conv import ConvAutoencoder
    import scratch_ae.layers.conv as conv_module
    seen = []  # loop_threads() at each of the conv layers' splits

    def recording_split_run(fn, ranges):
        seen.append(im2col_module.loop_threads())
        return im2col_module.split_run(fn, ranges)
    monkeypatch.setattr(conv_module, "split_run", recording_split_run)
    x = mnist_test_images[:6]
    runs = []
    for setting in ("blas", 1):
        monkeypatch.setattr(im2col_module, "LOOP_THREADS", setting)
        model = ConvAutoencoder(channels=(8, 8), decoder="deconv+unpool", seed=2)
        seen.clear()
        with threadpool_limits(2, user_api="blas"):
            loss, grads = model.loss_and_grads(x, copy=True)
        assert seen and set(seen) == {2 if setting == "blas" else 1}, seen
        runs.append([np.asarray(loss)] + [grads[name] for name in sorted(grads)])
    for a, b in zip(*runs):
        assert_close(a, b, np.float32, "two loop threads")


def _split_in_child(queue):
    im2col_module.LOOP_THREADS = 2
    queue.put(im2col_module.split_run(lambda n0, n1: (n0, n1), [(0, 1), (1, 2), (2, 3)]))


@pytest.mark.skipif(not hasattr(__import__("os"), "fork"), reason="needs os.fork")
def test_split_run_works_in_a_forked_child_of_a_process_that_split_before(monkeypatch):
    """The helper thread does not survive fork: the child makes its own instead of waiting on a dead one."""
    import multiprocessing
    monkeypatch.setattr(im2col_module, "LOOP_THREADS", 2)
    assert im2col_module.split_run(lambda n0, n1: n0, [(0, 1), (1, 2)]) == [0, 1]  # the parent's pool exists
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    child = context.Process(target=_split_in_child, args=(queue,))
    child.start()
    child.join(60)
    if child.is_alive():
        child.kill()
        pytest.fail("split_run hung in the forked child")
    assert child.exitcode == 0 and queue.get(timeout=5) == [(0, 1), (1, 2), (2, 3)]
