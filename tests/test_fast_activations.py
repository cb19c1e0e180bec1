"""scratch_ae/fast/activations.py against scratch_ae/layers/activations.py: ReLU bit for bit on 4-D
feature maps (NaN, +-0, +-inf), the input's memory layout kept, and the reference for every other
array (2-D batches, strided views)."""
import numpy as np
import pytest

from scratch_ae import fast
from scratch_ae.fast import activations as fast_activations
from scratch_ae.layers import ReLU, Sigmoid

pytestmark = pytest.mark.skipif(fast.unavailable_reason() is not None, reason=str(fast.unavailable_reason()))

rng = np.random.default_rng(7)


def channels_last_view(x):
    return np.ascontiguousarray(x.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_relu_equals_the_reference_bit_for_bit_and_keeps_the_layout(dtype):
    x = rng.standard_normal((3, 5, 4, 6)).astype(dtype)
    x[0, 0, 0, :3] = [np.nan, -0.0, 0.0]
    x[1, 1, 1, :2] = [np.inf, -np.inf]
    G = rng.standard_normal(x.shape).astype(dtype)
    G[2, 2, 2, :2] = [np.nan, np.inf]
    cases = {"nchw": (x, G), "nhwc-view": (channels_last_view(x), channels_last_view(G)),
             "mixed layouts": (channels_last_view(x), G), "strided": (x[:, :, ::2], G[:, :, ::2]),
             "2-D": (x.reshape(3, -1), G.reshape(3, -1))}
    for name, (xx, GG) in cases.items():
        results = []
        for relu in (ReLU(), fast_activations.ReLU(ReLU())):
            with np.errstate(invalid="ignore"):  # -inf * 0 in the reference's masked product
                out = relu.forward(xx)
                dx = relu.backward(GG)
            results.append((out, dx))
        for a, b in zip(results[1], results[0]):
            assert a.strides == b.strides, name
            np.testing.assert_array_equal(a, b, err_msg=name)
            assert (np.signbit(a) == np.signbit(b)).all(), name  # -0 stays -0


def test_the_cache_is_the_references_so_either_backward_follows_either_forward():
    x = channels_last_view(rng.standard_normal((2, 8, 5, 5)).astype(np.float32))
    G = rng.standard_normal(x.shape).astype(np.float32)
    reference = ReLU()
    layer = fast_activations.ReLU(reference)
    out = layer.forward(x)
    assert reference.out is out
    np.testing.assert_array_equal(reference.backward(G), layer.backward(G))
    with pytest.raises(TypeError, match="wraps a scratch_ae.layers.activations.ReLU"):
        fast_activations.ReLU(Sigmoid())
