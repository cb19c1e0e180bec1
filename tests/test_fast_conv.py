"""scratch_ae/fast/conv.py and fast/nhwc.py against the reference layers they replace
(scratch_ae/layers/conv.py, layers/im2col.py): im2col/col2im bit for bit, the layers' outputs and
gradients to rounding (float32: 2e-5, float64: 1e-12 of the largest entry), every input layout the
fast layers meet, every setting of their constructor arguments, and the reference where the
compiled loops do not take the arrays."""
import numpy as np
import pytest

from scratch_ae import fast
from scratch_ae.fast import conv as fast_conv, nhwc as fast_nhwc
from scratch_ae.gradcheck import check_layer
from scratch_ae.layers import Conv2d, ConvTranspose2d
from scratch_ae.layers.im2col import col2im, im2col, pair
from scratch_ae.optimizers.base import flush_threshold

pytestmark = pytest.mark.skipif(fast.unavailable_reason() is not None, reason=str(fast.unavailable_reason()))

rng = np.random.default_rng(7)

# (channels, kernel, stride, padding): both sides of the channels-last threshold (8), odd sizes,
# stride 2, 2x3 kernels
CASES = [(3, (3, 3), 2, 1), (8, (3, 3), 2, 1), (16, (3, 3), 1, 1), (9, (2, 3), (2, 1), (1, 2)), (8, 1, 1, 0),
         (12, (3, 2), 3, 0), (1, (3, 3), 1, 1), (1, (2, 3), (2, 1), (1, 2))]
# (C_in, C_out, kernel, stride, padding, output_padding) for the transposed convolution
T_CASES = [(16, 32, 3, 2, 1, 1), (32, 3, 3, 2, 1, 1), (8, 16, 3, 1, 1, 0), (16, 1, 3, 1, 1, 0),
           (4, 9, (2, 3), (2, 3), (1, 0), (1, 2)), (10, 12, (3, 2), 3, 0, 2), (5, 1, (3, 2), 2, (1, 0), 1)]


def case_id(case):
    return "-".join(str(v).replace(" ", "") for v in case)


def channels_last_view(x):
    """The same (B, C, H, W) values, stored channels last (what the fast layers hand between them)."""
    return np.ascontiguousarray(x.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2)


def layouts(x):
    return {"nchw": x, "nhwc-view": channels_last_view(x)}


def run(layer, x, G):
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
    k, s, p = pair(kernel, "k"), pair(stride, "s"), pair(padding, "p")
    x = rng.standard_normal((3, C, 9, 8)).astype(dtype)
    ref = im2col(x, k, s, p, np)                                   # rows (c, i, j), columns (n, p, q)
    got = fast_nhwc.im2col_nhwc(fast_nhwc.nhwc(x), k, s, p)         # rows (n, p, q), columns (i, j, c)
    expected = ref.reshape(C, k[0], k[1], -1).transpose(3, 1, 2, 0).reshape(got.shape)
    np.testing.assert_array_equal(got, expected)


def test_im2col_nhwc_ones_adds_a_last_column_of_ones():
    x = fast_nhwc.nhwc(rng.standard_normal((2, 8, 5, 6)).astype(np.float32))
    plain = fast_nhwc.im2col_nhwc(x, (3, 3), (2, 2), (1, 1))
    ones = fast_nhwc.im2col_nhwc(x, (3, 3), (2, 2), (1, 1), ones=True)
    np.testing.assert_array_equal(ones[:, :-1], plain)
    assert (ones[:, -1] == 1).all()


@pytest.mark.parametrize("case", CASES, ids=case_id)
@pytest.mark.parametrize("with_bias", [False, True])
def test_col2im_nhwc_equals_the_reference_bit_for_bit(case, with_bias):
    C, kernel, stride, padding = case
    k, s, p = pair(kernel, "k"), pair(stride, "s"), pair(padding, "p")
    shape = (3, C, 9, 8)
    ref_cols = rng.standard_normal(im2col(np.zeros(shape, np.float32), k, s, p, np).shape).astype(np.float32)
    b = rng.standard_normal(C).astype(np.float32)
    expected = col2im(ref_cols, shape, k, s, p, np)
    if with_bias:
        expected += b.reshape(1, C, 1, 1)
    cols_t = np.ascontiguousarray(ref_cols.reshape(C, k[0], k[1], -1).transpose(3, 1, 2, 0).reshape(-1, C * k[0] * k[1]))
    got = fast_nhwc.col2im_nhwc(cols_t, (3, 9, 8, C), k, s, p, bias=b if with_bias else None)
    np.testing.assert_array_equal(got, fast_nhwc.nhwc(expected))


# ---------------------------------------------------------------------------- the layers: fast == reference
@pytest.mark.parametrize("case", CASES, ids=case_id)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("need_input_grad", [True, False])
@pytest.mark.parametrize("recompute_cols", [True, False])
def test_conv2d_equals_the_reference(case, dtype, need_input_grad, recompute_cols):
    C, k, s, p = case
    x = rng.standard_normal((4, C, 11, 10)).astype(dtype)
    make = lambda: Conv2d(C, 6, k, s, p, rng=np.random.default_rng(1), dtype=dtype, need_input_grad=need_input_grad)
    reference = make()
    out_ref = reference.forward(x)
    G = rng.standard_normal(out_ref.shape).astype(dtype)
    dx_ref = reference.backward(G)
    for name, xx in layouts(x).items():
        for gname, GG in layouts(G).items():
            layer = fast_conv.Conv2d(make(), recompute_cols=recompute_cols)
            out, dx, grads = run(layer, xx, GG)
            where = f"{name} input, {gname} gradient"
            assert_close(out, out_ref, dtype, f"out ({where})")
            if need_input_grad:
                assert_close(dx, dx_ref, dtype, f"dx ({where})")
            else:
                assert dx is None
            for key in ("W", "b"):
                assert_close(grads[key], reference.grads[key], dtype, f"grad {key} ({where})")


@pytest.mark.parametrize("case", T_CASES, ids=case_id)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_conv_transpose2d_equals_the_reference(case, dtype):
    C_in, C_out, k, s, p, op = case
    y = rng.standard_normal((3, C_in, 5, 6)).astype(dtype)
    make = lambda: ConvTranspose2d(C_in, C_out, k, s, p, op, rng=np.random.default_rng(2), dtype=dtype)
    reference = make()
    out_ref = reference.forward(y)
    G = rng.standard_normal(out_ref.shape).astype(dtype)
    dy_ref = reference.backward(G)
    for name, yy in layouts(y).items():
        for gname, GG in layouts(G).items():
            out, dy, grads = run(fast_conv.ConvTranspose2d(make()), yy, GG)
            where = f"{name} input, {gname} gradient"
            assert_close(out, out_ref, dtype, f"out ({where})")
            assert_close(dy, dy_ref, dtype, f"dy ({where})")
            for key in ("W", "b"):
                assert_close(grads[key], reference.grads[key], dtype, f"grad {key} ({where})")


@pytest.mark.parametrize("settings", [dict(chunk_bytes=1), dict(chunk_bytes=3000), dict(per_image_max_macs=0),
                                      dict(per_image_max_macs=20000), dict(per_image_max_macs=60000),
                                      dict(min_channels_last=1), dict(min_channels_last=10 ** 6)],
                         ids=lambda d: "-".join(f"{k}={v}" for k, v in d.items()))
@pytest.mark.parametrize("channels", [8, 1])
def test_every_setting_gives_the_reference_results(settings, channels):
    """chunk_bytes (images per chunk), per_image_max_macs (images per stacked product: one image,
    groups of 2 and a rest, ...), min_channels_last (which matrices): only rounding changes."""
    x = rng.standard_normal((7, channels, 9, 9))
    make = lambda: (Conv2d(channels, 10, 3, 2, 1, rng=np.random.default_rng(11), dtype=np.float64),
                    ConvTranspose2d(10, channels, 3, 2, 1, 0, rng=np.random.default_rng(12), dtype=np.float64))
    results = []
    for conv, conv_t in (make(), [wrap(layer, **settings) for wrap, layer in
                                   zip((fast_conv.Conv2d, fast_conv.ConvTranspose2d), make())]):
        h = conv_t.forward(conv.forward(x))
        g = conv.backward(conv_t.backward(np.cos(h)))
        results.append([h, g] + [v.copy() for layer in (conv, conv_t) for v in layer.grads.values()])
    for a, b in zip(results[1], results[0]):
        assert_close(a, b, np.float64, str(settings))


@pytest.mark.parametrize("recompute_cols", [False, True])
@pytest.mark.parametrize("channels", [8, 2])
def test_conv2d_backward_is_right_when_the_caller_reuses_its_input_memory(recompute_cols, channels):
    """With recompute_cols the backward builds the matrix again from its own copy of x, not from x."""
    x = rng.standard_normal((5, channels, 9, 9))
    G = rng.standard_normal((5, 6, 5, 5))
    reference = Conv2d(channels, 6, 3, 2, 1, rng=np.random.default_rng(13), dtype=np.float64)
    expected = [reference.forward(x), reference.backward(G)] + [v.copy() for v in reference.grads.values()]
    layer = fast_conv.Conv2d(Conv2d(channels, 6, 3, 2, 1, rng=np.random.default_rng(13), dtype=np.float64),
                             recompute_cols=recompute_cols, chunk_bytes=3000)
    xx = channels_last_view(x).copy(order="K")
    out = layer.forward(xx)
    xx[...] = 0
    got = [out, layer.backward(G)] + [v.copy() for v in layer.grads.values()]
    for a, b in zip(got, expected):
        assert_close(a, b, np.float64, f"recompute_cols={recompute_cols}")


@pytest.mark.parametrize("case", [(8, (3, 3), 2, 1), (16, (2, 3), (2, 1), (1, 2)), (9, 1, 1, 0), (3, 3, 2, 1)],
                         ids=case_id)
def test_conv2d_matches_finite_differences(case):
    C, k, s, p = case
    layer = fast_conv.Conv2d(Conv2d(C, 3, k, s, p, rng=np.random.default_rng(3), dtype=np.float64))
    errors = check_layer(layer, rng.standard_normal((2, C, 7, 6)), rng=rng)
    assert max(errors.values()) < 1e-6, errors


@pytest.mark.parametrize("case", [(3, 8, 3, 2, 1, 1), (8, 10, (2, 3), (2, 3), (1, 0), (1, 2)), (9, 2, 3, 1, 1, 0)],
                         ids=case_id)
def test_conv_transpose2d_matches_finite_differences(case):
    C_in, C_out, k, s, p, op = case
    layer = fast_conv.ConvTranspose2d(ConvTranspose2d(C_in, C_out, k, s, p, op, rng=np.random.default_rng(4),
                                                      dtype=np.float64))
    errors = check_layer(layer, rng.standard_normal((2, C_in, 4, 5)), rng=rng)
    assert max(errors.values()) < 1e-6, errors


# ---------------------------------------------------------------------------- the subnormal flush
def assert_backward_flushes_underflowing_gradients(make, wrap, x):
    """A plateau's tiny deltas times small weights underflow into subnormals, which x86 CPUs compute
    ~100x slower: the fast layer sets the input gradient's entries below tiny/eps to +0 and returns
    the rest as the reference does (which keeps the subnormals)."""
    reference = make()
    out_ref = reference.forward(x)
    G = rng.standard_normal(out_ref.shape).astype(np.float32)
    G[0] *= np.float32(1e-33)           # image 0: every product underflows; image 1: ordinary gradients
    G[2] *= np.float32(1e-22)           # image 2: normal gradients whose products land around 1e-23
    reference.params["W"][...] *= np.float32(1e-5)
    dx_ref = reference.backward(G)
    tiny = np.finfo(np.float32).tiny
    assert np.count_nonzero((dx_ref != 0) & (np.abs(dx_ref) < tiny)) > 0   # the reference keeps them
    for gname, GG in layouts(G).items():
        layer = wrap(make())
        layer.params["W"][...] *= np.float32(1e-5)
        out, dx, grads = run(layer, x, GG)
        assert np.count_nonzero((dx != 0) & (np.abs(dx) < tiny)) == 0, gname
        assert np.all(dx[0] == 0) and not np.signbit(dx[0]).any(), gname  # +0, not -0
        np.testing.assert_array_equal(dx[np.abs(dx_ref) < flush_threshold(np.float32)], 0)
        for i in (1, 2):
            assert_close(dx[i], dx_ref[i], np.float32, f"dx image {i} ({gname})")
        for key in ("W", "b"):
            assert_close(grads[key], reference.grads[key], np.float32, f"grad {key} ({gname})")


@pytest.mark.parametrize("recompute_cols", [False, True])
@pytest.mark.parametrize("case", [(16, (3, 3), 2, 1), (3, (3, 3), 2, 1), (9, (2, 3), (2, 1), (1, 2))], ids=case_id)
def test_conv2d_backward_flushes_underflowing_gradients_to_zero(case, recompute_cols):
    C, k, s, p = case
    x = rng.standard_normal((3, C, 9, 8)).astype(np.float32)
    assert_backward_flushes_underflowing_gradients(
        lambda: Conv2d(C, 20, k, s, p, rng=np.random.default_rng(2)),
        lambda ref: fast_conv.Conv2d(ref, recompute_cols=recompute_cols), x)


@pytest.mark.parametrize("case", [(16, 32, 3, 2, 1, 1), (32, 3, 3, 2, 1, 1)], ids=case_id)
def test_conv_transpose2d_backward_flushes_underflowing_gradients_to_zero(case):
    C_in, C_out, k, s, p, op = case
    y = rng.standard_normal((3, C_in, 5, 6)).astype(np.float32)
    assert_backward_flushes_underflowing_gradients(
        lambda: ConvTranspose2d(C_in, C_out, k, s, p, op, rng=np.random.default_rng(2)), fast_conv.ConvTranspose2d, y)


# ---------------------------------------------------------------------------- the wrapper
def test_the_fast_layers_use_the_reference_arrays_and_leave_fresh_outputs():
    reference = Conv2d(8, 8, 3, 1, 1, rng=np.random.default_rng(6))
    conv = fast_conv.Conv2d(reference)
    assert conv.params is reference.params and conv.grads is reference.grads and conv.config() == reference.config()
    conv_t = fast_conv.ConvTranspose2d(ConvTranspose2d(8, 8, 3, 2, 1, 1, rng=np.random.default_rng(6)))
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
    with pytest.raises(TypeError, match="wraps a scratch_ae.layers.conv.Conv2d"):
        fast_conv.Conv2d(ConvTranspose2d(2, 2, 3))


def test_a_reference_backward_cannot_follow_a_fast_forward_with_stale_values():
    """The reference's caches are emptied by a fast forward: its backward then fails, it never
    computes gradients from an earlier batch."""
    for reference in (Conv2d(8, 4, 3, rng=np.random.default_rng(7)), ConvTranspose2d(8, 4, 3, rng=np.random.default_rng(7))):
        x = rng.standard_normal((2, 8, 5, 5)).astype(np.float32)
        out = reference.forward(x)
        layer = (fast_conv.Conv2d if isinstance(reference, Conv2d) else fast_conv.ConvTranspose2d)(reference)
        layer.forward(2 * x)
        with pytest.raises((AttributeError, TypeError)):  # None where the cache was
            reference.backward(np.ones_like(out))


def test_arrays_the_loops_do_not_take_run_the_reference_bit_for_bit():
    """float32 input to float64 weights: the reference's own promotion, its forward and backward."""
    x = rng.standard_normal((2, 8, 5, 5)).astype(np.float32)
    for make in (lambda: Conv2d(8, 4, 3, rng=np.random.default_rng(7), dtype=np.float64),
                 lambda: ConvTranspose2d(8, 4, 3, rng=np.random.default_rng(7), dtype=np.float64)):
        reference, layer = make(), make()
        layer = fast_conv.ConvTranspose2d(layer) if isinstance(layer, ConvTranspose2d) else fast_conv.Conv2d(layer)
        out_ref, out = reference.forward(x), layer.forward(x)
        G = rng.standard_normal(out.shape)
        np.testing.assert_array_equal(out, out_ref)
        np.testing.assert_array_equal(layer.backward(G), reference.backward(G))
        for key in reference.grads:
            np.testing.assert_array_equal(layer.grads[key], reference.grads[key])


def test_bad_input_is_refused_as_the_reference_refuses_it():
    layer = fast_conv.Conv2d(Conv2d(3, 4, 3))
    with pytest.raises(ValueError, match=r"expects an input of shape \(B, 3, H, W\)"):
        layer.forward(np.zeros((2, 2, 5, 5), np.float32))
    with pytest.raises(ValueError, match="empty output"):
        layer.forward(np.zeros((2, 3, 2, 2), np.float32))
