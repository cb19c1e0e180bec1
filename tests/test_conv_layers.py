"""The convolutional layers: backward against central differences, forward against direct loops,
the transposed convolution as the adjoint, pooling ties, dtypes, configs, and PyTorch where it is installed."""
import json

import numpy as np
import pytest

from scratch_ae.gradcheck import check_layer
from scratch_ae.layers import (Conv2d, ConvTranspose2d, Flatten, Layer, MaxPool2d, MaxUnpool2d, Reshape,
                               Upsample)
from scratch_ae.layers.im2col import col2im, im2col

TOL = 1e-6
rng = np.random.default_rng(2024)

# (kernel_size, stride, padding): square and 2x3 kernels, strides 1 and 2, padding 0 and > 0
CONV_CASES = [((3, 3), 1, 0), ((2, 3), 1, 1), ((3, 3), 2, 1), ((2, 3), (2, 1), (1, 2)), (1, 1, 0), ((3, 2), 3, 0)]
# (kernel_size, stride, padding, output_padding) for the transposed convolution
CONV_T_CASES = [((3, 3), 1, 0, 0), ((2, 3), 1, 1, 0), ((3, 3), 2, 1, 1), ((2, 3), (2, 3), (1, 0), (1, 2)),
                ((3, 2), 3, 0, 2)]


def case_id(case):
    return "-".join(str(v).replace(" ", "") for v in case)


def distinct_values(shape, spacing=0.1):
    """Values that differ pairwise by >= spacing, shuffled: max pooling has no ties or near-ties."""
    return (rng.permutation(int(np.prod(shape))).reshape(shape) - np.prod(shape) / 2) * spacing


# ---------------------------------------------------------------------------- direct (loop) references
def direct_conv2d(x, W, b, stride, padding):
    """out[n, o, p, q] = b[o] + sum_{c, i, j} W[o, c, i, j] x_pad[n, c, p sH + i, q sW + j], one scalar at a time."""
    (sH, sW), (pH, pW) = stride, padding
    B, C, H, Wd = x.shape
    O, _, kH, kW = W.shape
    x_pad = np.pad(x, ((0, 0), (0, 0), (pH, pH), (pW, pW)))
    H_out, W_out = (H + 2 * pH - kH) // sH + 1, (Wd + 2 * pW - kW) // sW + 1
    out = np.empty((B, O, H_out, W_out))
    for n in range(B):
        for o in range(O):
            for p in range(H_out):
                for q in range(W_out):
                    total = b[o]
                    for c in range(C):
                        for i in range(kH):
                            for j in range(kW):
                                total += W[o, c, i, j] * x_pad[n, c, p * sH + i, q * sW + j]
                    out[n, o, p, q] = total
    return out


def direct_conv_transpose2d(y, W, b, stride, padding, output_padding):
    """Each input pixel adds its kernel, scaled, onto the output at stride s; then the padding is cut off."""
    (sH, sW), (pH, pW), (aH, aW) = stride, padding, output_padding
    B, C_in, H, Wd = y.shape
    _, C_out, kH, kW = W.shape
    H_full, W_full = (H - 1) * sH + kH + aH, (Wd - 1) * sW + kW + aW
    full = np.zeros((B, C_out, H_full, W_full))
    for n in range(B):
        for c in range(C_in):
            for p in range(H):
                for q in range(Wd):
                    for o in range(C_out):
                        for i in range(kH):
                            for j in range(kW):
                                full[n, o, p * sH + i, q * sW + j] += y[n, c, p, q] * W[c, o, i, j]
    return full[:, :, pH:H_full - pH, pW:W_full - pW] + b.reshape(1, -1, 1, 1)


def direct_max_pool2d(x, kernel_size, stride):
    (kH, kW), (sH, sW) = kernel_size, stride
    B, C, H, W = x.shape
    H_out, W_out = (H - kH) // sH + 1, (W - kW) // sW + 1
    out = np.empty((B, C, H_out, W_out))
    for n in range(B):
        for c in range(C):
            for p in range(H_out):
                for q in range(W_out):
                    out[n, c, p, q] = x[n, c, p * sH:p * sH + kH, q * sW:q * sW + kW].max()
    return out


def transpose_output_padding(size, kernel, stride, padding):
    """The output_padding that makes a ConvTranspose2d give back `size` (the rows the convolution's floor drops)."""
    return (size + 2 * padding - kernel) % stride


# ---------------------------------------------------------------------------- gradients (float64, random G)
@pytest.mark.parametrize("case", CONV_CASES, ids=case_id)
def test_conv2d_backward_matches_finite_differences(case):
    kernel, stride, padding = case
    layer = Conv2d(2, 3, kernel, stride, padding, rng=rng, dtype=np.float64)
    errors = check_layer(layer, rng.standard_normal((2, 2, 7, 9)), rng=rng)
    assert set(errors) == {"x", "W", "b"}
    assert max(errors.values()) < TOL, errors


def test_first_conv2d_layer_skips_the_input_gradient_but_keeps_parameter_gradients():
    layer = Conv2d(1, 2, (2, 3), stride=2, padding=1, rng=rng, dtype=np.float64, need_input_grad=False)
    errors = check_layer(layer, rng.standard_normal((2, 1, 7, 9)), rng=rng)
    assert set(errors) == {"W", "b"} and max(errors.values()) < TOL, errors


@pytest.mark.parametrize("case", CONV_T_CASES, ids=case_id)
def test_conv_transpose2d_backward_matches_finite_differences(case):
    kernel, stride, padding, output_padding = case
    layer = ConvTranspose2d(3, 2, kernel, stride, padding, output_padding, rng=rng, dtype=np.float64)
    errors = check_layer(layer, rng.standard_normal((2, 3, 3, 5)), rng=rng)
    assert set(errors) == {"x", "W", "b"}
    assert max(errors.values()) < TOL, errors


# (kernel_size, stride) on a 7x9 image: non-overlapping with leftovers, overlapping, non-square
POOL_CASES = [(2, None), (3, 2), ((2, 3), (1, 2)), ((3, 2), (2, 3))]


@pytest.mark.parametrize("case", POOL_CASES, ids=case_id)
def test_maxpool2d_backward_matches_finite_differences(case):
    layer = MaxPool2d(*case)
    errors = check_layer(layer, distinct_values((2, 2, 7, 9)), rng=rng)
    assert set(errors) == {"x"} and errors["x"] < TOL, errors


@pytest.mark.parametrize("case", POOL_CASES, ids=case_id)
def test_maxunpool2d_backward_matches_finite_differences(case):
    pool = MaxPool2d(*case)
    pooled = pool.forward(distinct_values((2, 2, 7, 9)))
    errors = check_layer(MaxUnpool2d(pool), rng.standard_normal(pooled.shape), rng=rng)
    assert set(errors) == {"x"} and errors["x"] < TOL, errors


@pytest.mark.parametrize("scale", [2, (2, 3), (1, 2)], ids=str)
def test_upsample_backward_matches_finite_differences(scale):
    errors = check_layer(Upsample(scale), rng.standard_normal((2, 2, 3, 5)), rng=rng)
    assert set(errors) == {"x"} and errors["x"] < TOL, errors


@pytest.mark.parametrize("layer, shape", [(Flatten(), (2, 3, 5, 7)), (Reshape((3, 5, 7)), (2, 105))],
                         ids=["flatten", "reshape"])
def test_flatten_and_reshape_backward_match_finite_differences(layer, shape):
    errors = check_layer(layer, rng.standard_normal(shape), rng=rng)
    assert set(errors) == {"x"} and errors["x"] < TOL, errors


def test_flatten_and_reshape_are_inverse_layouts():
    x = rng.standard_normal((2, 3, 5, 7))
    flat = Flatten().forward(x)
    assert flat.shape == (2, 105)
    np.testing.assert_array_equal(flat, x.reshape(2, -1))
    np.testing.assert_array_equal(Reshape((3, 5, 7)).forward(flat), x)
    with pytest.raises(ValueError, match="105"):
        Reshape((3, 5, 7)).forward(rng.standard_normal((2, 104)))


# ---------------------------------------------------------------------------- forward against direct loops
@pytest.mark.parametrize("case", CONV_CASES, ids=case_id)
def test_conv2d_forward_matches_a_direct_nested_loop_convolution(case):
    layer = Conv2d(2, 3, *case, rng=rng, dtype=np.float64)
    x = rng.standard_normal((2, 2, 7, 9))
    expected = direct_conv2d(x, layer.params["W"], layer.params["b"], layer.stride, layer.padding)
    out = layer.forward(x)
    assert out.shape == expected.shape == layer.output_shape(x.shape)
    np.testing.assert_allclose(out, expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("case", CONV_T_CASES, ids=case_id)
def test_conv_transpose2d_forward_matches_a_direct_nested_loop(case):
    layer = ConvTranspose2d(3, 2, *case, rng=rng, dtype=np.float64)
    y = rng.standard_normal((2, 3, 3, 5))
    expected = direct_conv_transpose2d(y, layer.params["W"], layer.params["b"], layer.stride, layer.padding,
                                       layer.output_padding)
    out = layer.forward(y)
    assert out.shape == expected.shape == layer.output_shape(y.shape)
    np.testing.assert_allclose(out, expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("case", POOL_CASES, ids=case_id)
def test_maxpool2d_forward_matches_direct_loops_on_odd_sizes_and_drops_the_leftover_rows(case):
    layer = MaxPool2d(*case)
    x = distinct_values((2, 2, 7, 9))
    out = layer.forward(x)
    np.testing.assert_array_equal(out, direct_max_pool2d(x, layer.kernel_size, layer.stride))
    # every output is the input at its argmax, and `indices` names that pixel in the input plane
    np.testing.assert_array_equal(np.take_along_axis(x.reshape(2, 2, -1), layer.indices.reshape(2, 2, -1), 2),
                                  out.reshape(2, 2, -1))
    dx = layer.backward(np.ones_like(out))
    (kH, kW), (sH, sW) = layer.kernel_size, layer.stride
    last_row, last_col = sH * (out.shape[2] - 1) + kH, sW * (out.shape[3] - 1) + kW
    assert not dx[:, :, last_row:].any() and not dx[:, :, :, last_col:].any()  # rows past the last window


# ---------------------------------------------------------------------------- the adjoint
@pytest.mark.parametrize("case", CONV_CASES, ids=case_id)
def test_conv_transpose2d_is_the_adjoint_of_conv2d_with_the_same_weights(case):
    """<conv(x), y> = <x, conv_transpose(y)> for every x, y, with bias 0 and output_padding giving x's size back."""
    kernel, stride, padding = case
    conv = Conv2d(2, 3, kernel, stride, padding, rng=rng, dtype=np.float64)
    H, W = 7, 9
    output_padding = tuple(transpose_output_padding(s, k, st, p) for s, k, st, p in
                           zip((H, W), conv.kernel_size, conv.stride, conv.padding))
    conv_t = ConvTranspose2d(3, 2, kernel, stride, padding, output_padding, rng=rng, dtype=np.float64)
    conv_t.params["W"] = conv.params["W"]  # (3, 2, kH, kW) read as (C_in, C_out, kH, kW)
    conv.params["b"][:] = 0
    conv_t.params["b"][:] = 0
    x = rng.standard_normal((2, 2, H, W))
    y = rng.standard_normal(conv.output_shape(x.shape))
    back = conv_t.forward(y)
    assert back.shape == x.shape
    np.testing.assert_allclose(np.sum(conv.forward(x) * y), np.sum(x * back), rtol=1e-12)
    # and so the transposed convolution's forward is exactly the convolution's input gradient
    conv.forward(x)
    np.testing.assert_allclose(conv.backward(y), back, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("case", CONV_CASES, ids=case_id)
def test_col2im_is_the_adjoint_of_im2col(case):
    kernel, stride, padding = (tuple(v) if isinstance(v, tuple) else (v, v) for v in case)
    x = rng.standard_normal((2, 3, 7, 9))
    cols = im2col(x, kernel, stride, padding, np)
    C = rng.standard_normal(cols.shape)
    np.testing.assert_allclose(np.sum(cols * C), np.sum(x * col2im(C, x.shape, kernel, stride, padding, np)),
                               rtol=1e-12)


# ---------------------------------------------------------------------------- pooling: ties, NaN, unpooling
def test_maxpool2d_ties_the_first_index_in_row_major_order_wins_and_gets_the_whole_gradient():
    x = np.zeros((2, 3, 4, 6))                 # all-zero windows, as after a ReLU
    x[0, 0, :2, :2] = [[0.0, 3.0], [3.0, 1.0]]  # a tie between (0, 1) and (1, 0): (0, 1) comes first
    pool = MaxPool2d(2)
    out = pool.forward(x)
    expected_argmax = np.zeros(out.shape, dtype=int)
    expected_argmax[0, 0, 0, 0] = 1
    np.testing.assert_array_equal(pool.argmax, expected_argmax)
    G = rng.standard_normal(out.shape)
    dx = pool.backward(G)
    expected = np.zeros_like(x)
    expected[:, :, ::2, ::2] = G               # each window's top-left pixel takes all of its gradient
    expected[0, 0, 0, 0], expected[0, 0, 0, 1] = 0.0, G[0, 0, 0, 0]
    np.testing.assert_array_equal(dx, expected)


def test_maxpool2d_ties_in_overlapping_windows_pick_each_windows_first_pixel():
    pool = MaxPool2d(3, stride=2)
    out = pool.forward(np.zeros((1, 1, 7, 9)))
    assert not pool.argmax.any()
    dx = pool.backward(np.ones_like(out))
    expected = np.zeros((1, 1, 7, 9))
    expected[:, :, 0:5:2, 0:7:2] = 1.0
    np.testing.assert_array_equal(dx, expected)


def test_maxpool2d_propagates_nan():
    x = np.zeros((1, 1, 2, 4))
    x[0, 0, 1, 0] = np.nan
    x[0, 0, 0, 3] = 5.0
    out = MaxPool2d(2).forward(x)
    assert np.isnan(out[0, 0, 0, 0]) and out[0, 0, 0, 1] == 5.0


def test_maxunpool2d_routes_its_input_through_its_pools_last_argmax():
    pool = MaxPool2d(2)
    unpool = MaxUnpool2d(pool)
    for _ in range(2):  # a new pool forward is followed by the next unpool forward
        x = distinct_values((2, 3, 7, 9))
        pooled = pool.forward(x)
        z = rng.standard_normal(pooled.shape)
        out = unpool.forward(z)
        assert out.shape == x.shape
        expected = np.zeros((2, 3, 63))
        np.put_along_axis(expected, pool.indices.reshape(2, 3, -1), z.reshape(2, 3, -1), axis=2)
        np.testing.assert_array_equal(out, expected.reshape(x.shape))
        # unpooling the pool's own output keeps exactly the maxima
        np.testing.assert_array_equal(unpool.forward(pooled), np.where(out != 0, x, 0.0))
    with pytest.raises(ValueError, match="does not match"):
        unpool.forward(np.zeros((2, 3, 2, 2)))
    with pytest.raises(RuntimeError, match="not run forward"):
        MaxUnpool2d(MaxPool2d(2)).forward(np.zeros((1, 1, 2, 2)))


def test_upsample_repeats_each_pixel_as_a_block():
    x = rng.standard_normal((2, 3, 3, 5))
    out = Upsample((2, 3)).forward(x)
    np.testing.assert_array_equal(out, x.repeat(2, axis=2).repeat(3, axis=3))


# ---------------------------------------------------------------------------- dtypes, parameters, configs
def layers_and_inputs(dtype):
    pool = MaxPool2d(2)
    pool.forward(np.zeros((2, 3, 6, 6), dtype=dtype))
    return [(Conv2d(3, 4, (2, 3), 2, 1, dtype=dtype), (2, 3, 7, 9)),
            (ConvTranspose2d(3, 4, 3, 2, 1, 1, dtype=dtype), (2, 3, 4, 5)),
            (MaxPool2d(2), (2, 3, 7, 9)), (MaxUnpool2d(pool), (2, 3, 3, 3)),
            (Upsample(2), (2, 3, 4, 5)), (Flatten(), (2, 3, 4, 5)), (Reshape((3, 4, 5)), (2, 60))]


@pytest.mark.parametrize("index", range(7))
def test_float32_stays_float32(index):
    layer, shape = layers_and_inputs(np.float32)[index]
    x = rng.standard_normal(shape).astype(np.float32)
    out = layer.forward(x)
    assert out.dtype == np.float32, layer
    grad = layer.backward(rng.standard_normal(out.shape).astype(np.float32))
    assert grad.dtype == np.float32 and grad.shape == x.shape, layer
    for name in layer.params:
        assert layer.params[name].dtype == layer.grads[name].dtype == np.float32, (layer, name)


def test_every_layer_has_its_own_params_grads_and_training_flag():
    for layer, _ in layers_and_inputs(np.float32):
        assert isinstance(layer, Layer)
        for attr in ("params", "grads", "training"):
            assert attr in vars(layer), (layer, attr)  # set in __init__, not inherited from the class
        assert not hasattr(Layer, "params") and not hasattr(Layer, "grads")  # no class-level dicts to share
        assert set(layer.grads) == set(layer.params) and layer.training is True
    conv = Conv2d(1, 4, 3, padding=1)  # the default NumPy backend, float32
    assert conv.params["W"].shape == (4, 1, 3, 3) and conv.params["b"].shape == (4,)
    assert conv.forward(np.ones((1, 1, 5, 5), dtype=np.float32)).shape == (1, 4, 5, 5)
    assert ConvTranspose2d(4, 2, 3).params["W"].shape == (4, 2, 3, 3)


@pytest.mark.parametrize("cls, args", [(Conv2d, (2, 3, (2, 3), 2, 1)), (ConvTranspose2d, (3, 2, (2, 3), 2, 1, 1))],
                         ids=["conv2d", "conv_transpose2d"])
def test_assigning_new_parameters_changes_the_layer(cls, args):
    layer = cls(*args, rng=rng, dtype=np.float64)
    x = rng.standard_normal((2, args[0], 5, 7))
    before = layer.forward(x)
    fresh = cls(*args, rng=np.random.default_rng(99), dtype=np.float64)
    layer.params["W"] = fresh.params["W"]
    layer.params["b"] = fresh.params["b"]
    after = layer.forward(x)
    assert not np.allclose(before, after)
    np.testing.assert_array_equal(after, fresh.forward(x))
    G = rng.standard_normal(after.shape)
    np.testing.assert_array_equal(layer.backward(G), fresh.backward(G))
    np.testing.assert_array_equal(layer.grads["W"], fresh.grads["W"])
    layer.params["W"] = np.zeros((1, 1, 1, 1))
    with pytest.raises(ValueError, match="expected"):
        layer.forward(x)


def test_configs_are_json_and_name_the_hyper_parameters():
    pool = MaxPool2d((2, 3), stride=(1, 2))
    expected = [
        (Conv2d(1, 4, (2, 3), stride=2, padding=(1, 0)),
         {"type": "conv2d", "in_channels": 1, "out_channels": 4, "kernel_size": [2, 3], "stride": [2, 2],
          "padding": [1, 0]}),
        (ConvTranspose2d(4, 1, 3, stride=2, padding=1, output_padding=1),
         {"type": "conv_transpose2d", "in_channels": 4, "out_channels": 1, "kernel_size": [3, 3], "stride": [2, 2],
          "padding": [1, 1], "output_padding": [1, 1]}),
        (pool, {"type": "maxpool2d", "kernel_size": [2, 3], "stride": [1, 2]}),
        (MaxPool2d(2), {"type": "maxpool2d", "kernel_size": [2, 2], "stride": [2, 2]}),
        (MaxUnpool2d(pool), {"type": "maxunpool2d"}),
        (Upsample(2), {"type": "upsample", "scale_factor": [2, 2]}),
        (Flatten(), {"type": "flatten"}),
        (Reshape((4, 7, 7)), {"type": "reshape", "shape": [4, 7, 7]}),
    ]
    for layer, config in expected:
        assert json.loads(json.dumps(layer.config())) == config
    assert repr(expected[0][0]) == "Conv2d(1, 4, kernel_size=(2, 3), stride=(2, 2), padding=(1, 0))"
    assert "output_padding=(1, 1)" in repr(expected[1][0])
    assert repr(pool) == "MaxPool2d(kernel_size=(2, 3), stride=(1, 2))"


def test_bad_hyper_parameters_are_refused_in_one_line():
    with pytest.raises(ValueError, match="output_padding"):
        ConvTranspose2d(1, 1, 3, stride=2, output_padding=2)
    with pytest.raises(TypeError, match="kernel_size"):
        Conv2d(1, 1, (3, 3, 3))
    with pytest.raises(ValueError, match="init"):
        Conv2d(1, 1, 3, init="xavier")
    with pytest.raises(ValueError, match=r"\(B, 2, H, W\)"):
        Conv2d(2, 1, 3).forward(np.zeros((1, 3, 5, 5), dtype=np.float32))


def test_initialisation_spread_and_seed():
    conv = Conv2d(16, 32, 3, rng=np.random.default_rng(0), dtype=np.float64)
    bound = 1 / np.sqrt(16 * 9)
    W = conv.params["W"]
    assert np.abs(W).max() <= bound and abs(W.std() / (bound / np.sqrt(3)) - 1) < 0.05
    assert np.abs(conv.params["b"]).max() <= bound and conv.params["b"].any()
    he = Conv2d(16, 32, 3, init="he", rng=np.random.default_rng(0), dtype=np.float64)
    assert abs(he.params["W"].std() / np.sqrt(2 / (16 * 9)) - 1) < 0.05 and not he.params["b"].any()
    he_t = ConvTranspose2d(32, 16, 4, stride=2, init="he", rng=np.random.default_rng(0), dtype=np.float64)
    assert abs(he_t.params["W"].std() / np.sqrt(2 / (32 * 16 / 4)) - 1) < 0.05
    np.testing.assert_array_equal(Conv2d(2, 3, 3).params["W"], Conv2d(2, 3, 3, rng=np.random.default_rng(0)).params["W"])


# ---------------------------------------------------------------------------- the CuPy code path (stand-in)
def test_the_layers_run_on_cupy_arrays_without_host_copies(stand_in):
    """The same layers with xp = the NumPy stand-in for CuPy, which refuses NumPy functions on device
    arrays, equal bit for bit to the same reference layers on NumPy."""
    def run(xp, to_device, to_host):
        conv = Conv2d(2, 3, (2, 3), 2, 1, rng=np.random.default_rng(1), xp=xp, dtype=np.float64)
        conv_t = ConvTranspose2d(3, 2, (2, 3), 2, 1, 1, rng=np.random.default_rng(2), xp=xp, dtype=np.float64)
        pool, up = MaxPool2d(2, xp=xp), Upsample(2, xp=xp)
        layers = [conv, pool, MaxUnpool2d(pool), up, conv_t]
        x = to_device(np.random.default_rng(3).standard_normal((2, 2, 7, 9)))
        h = x
        for layer in layers:
            h = layer.forward(h)
        grad = to_device(np.random.default_rng(4).standard_normal(h.shape))
        for layer in reversed(layers):
            grad = layer.backward(grad)
        return [to_host(h), to_host(grad), to_host(pool.indices)] + [to_host(g) for layer in (conv, conv_t)
                                                                      for g in layer.grads.values()]

    on_device = run(stand_in, stand_in.asarray, stand_in.asnumpy)
    on_host = run(np, np.asarray, np.asarray)
    for a, b in zip(on_device, on_host):
        np.testing.assert_array_equal(a, b)


# ---------------------------------------------------------------------------- PyTorch, where installed
def _torch_backward(torch, out, G, *tensors):
    out.backward(torch.from_numpy(G))
    return [t.grad.numpy() for t in tensors]


@pytest.mark.parametrize("case", CONV_CASES, ids=case_id)
def test_conv2d_matches_torch_forward_and_backward(case):
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    layer = Conv2d(2, 3, *case, rng=rng, dtype=np.float64)
    x = rng.standard_normal((2, 2, 7, 9))
    out = layer.forward(x)
    G = rng.standard_normal(out.shape)
    dx = layer.backward(G)
    xt, Wt, bt = (torch.tensor(a, requires_grad=True) for a in (x, layer.params["W"], layer.params["b"]))
    ot = F.conv2d(xt, Wt, bt, stride=layer.stride, padding=layer.padding)
    np.testing.assert_allclose(out, ot.detach().numpy(), rtol=1e-10, atol=1e-12)
    for ours, theirs in zip((dx, layer.grads["W"], layer.grads["b"]), _torch_backward(torch, ot, G, xt, Wt, bt)):
        np.testing.assert_allclose(ours, theirs, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("case", CONV_T_CASES, ids=case_id)
def test_conv_transpose2d_matches_torch_forward_and_backward(case):
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    layer = ConvTranspose2d(3, 2, *case, rng=rng, dtype=np.float64)
    y = rng.standard_normal((2, 3, 3, 5))
    out = layer.forward(y)
    G = rng.standard_normal(out.shape)
    dy = layer.backward(G)
    yt, Wt, bt = (torch.tensor(a, requires_grad=True) for a in (y, layer.params["W"], layer.params["b"]))
    ot = F.conv_transpose2d(yt, Wt, bt, stride=layer.stride, padding=layer.padding,
                            output_padding=layer.output_padding)
    np.testing.assert_allclose(out, ot.detach().numpy(), rtol=1e-10, atol=1e-12)
    for ours, theirs in zip((dy, layer.grads["W"], layer.grads["b"]), _torch_backward(torch, ot, G, yt, Wt, bt)):
        np.testing.assert_allclose(ours, theirs, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("case", POOL_CASES, ids=case_id)
def test_maxpool2d_matches_torch_values_indices_and_gradient(case):
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    layer = MaxPool2d(*case)
    for x in (distinct_values((2, 2, 7, 9)), np.maximum(rng.standard_normal((2, 2, 7, 9)), 0)):  # ReLU'd: ties
        out = layer.forward(x)
        G = rng.standard_normal(out.shape)
        dx = layer.backward(G)
        xt = torch.tensor(x, requires_grad=True)
        ot, it = F.max_pool2d(xt, layer.kernel_size, layer.stride, return_indices=True)
        np.testing.assert_array_equal(out, ot.detach().numpy())
        np.testing.assert_array_equal(layer.indices, it.numpy())
        np.testing.assert_allclose(dx, _torch_backward(torch, ot, G, xt)[0], rtol=1e-12, atol=1e-15)


def test_maxunpool2d_and_upsample_match_torch():
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    pool = MaxPool2d((2, 3))
    unpool = MaxUnpool2d(pool)
    x = np.maximum(rng.standard_normal((2, 2, 7, 9)), 0)
    pooled = pool.forward(x)
    z = rng.standard_normal(pooled.shape)
    out = unpool.forward(z)
    G = rng.standard_normal(out.shape)
    dz = unpool.backward(G)
    zt = torch.tensor(z, requires_grad=True)
    ot = F.max_unpool2d(zt, torch.from_numpy(pool.indices), pool.kernel_size, pool.stride, output_size=x.shape[2:])
    np.testing.assert_array_equal(out, ot.detach().numpy())
    np.testing.assert_array_equal(dz, _torch_backward(torch, ot, G, zt)[0])

    up = Upsample((2, 3))
    out = up.forward(x)
    G = rng.standard_normal(out.shape)
    xt = torch.tensor(x, requires_grad=True)
    ot = F.interpolate(xt, scale_factor=(2, 3), mode="nearest")
    np.testing.assert_array_equal(out, ot.detach().numpy())
    np.testing.assert_allclose(up.backward(G), _torch_backward(torch, ot, G, xt)[0], rtol=1e-12)
