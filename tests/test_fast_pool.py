"""scratch_ae/fast/pool.py against scratch_ae/layers/pool.py: MaxPool2d and MaxUnpool2d bit for bit
(outputs, argmax, indices, both gradients), ties, signed zeros, NaN and inf, both input layouts;
the fast unpool follows the argmax its source pool's fast form left; the reference where the loops
do not take the arrays."""
import numpy as np
import pytest

from scratch_ae import fast
from scratch_ae.fast import pool as fast_pool
from scratch_ae.layers import MaxPool2d, MaxUnpool2d

pytestmark = pytest.mark.skipif(fast.unavailable_reason() is not None, reason=str(fast.unavailable_reason()))

rng = np.random.default_rng(7)


def channels_last_view(x):
    return np.ascontiguousarray(x.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2)


def run(pool, unpool, x):
    out = pool.forward(x)
    up = unpool.forward(out)
    G = np.arange(up.size, dtype=x.dtype).reshape(up.shape) / up.size
    G.flat[::97] = -0.0                # signed zeros and infinities through the routing
    G.flat[5::101] = np.inf
    with np.errstate(invalid="ignore"):  # inf * 0 in the reference's masked products
        g_unpool = unpool.backward(G)
        g_pool = pool.backward(g_unpool)
    reference_pool = getattr(pool, "reference", pool)
    return [out, reference_pool.argmax, reference_pool.indices, up, g_unpool, g_pool]


# 2x2 windows tiling (the loops' written-out 2x2 case and one-write route), 2x2 overlapping, other windows
@pytest.mark.parametrize("case", [(2, None, (8, 8)), (2, None, (7, 9)), (2, 1, (7, 8)), ((2, 3), (1, 2), (7, 8)),
                                  (3, 2, (9, 9)), (3, None, (8, 7))],
                         ids=lambda c: "-".join(str(v).replace(" ", "") for v in c))
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_maxpool_and_unpool_equal_the_reference_bit_for_bit(case, dtype):
    k, s, hw = case
    x = rng.standard_normal((3, 10) + hw).astype(dtype)
    x[0, 0, :2, :2] = 1.0                  # ties: the first index wins
    x[1, 1] = np.maximum(x[1, 1], 0) * 0   # all-zero windows (+0 and -0)
    x[2, 3, 1, 1] = np.nan                 # a NaN wins its windows
    reference = MaxPool2d(k, s)
    expected = run(reference, MaxUnpool2d(reference), x)
    for name, xx in {"nchw": x, "nhwc-view": channels_last_view(x)}.items():
        pool = MaxPool2d(k, s)
        got = run(fast_pool.MaxPool2d(pool), fast_pool.MaxUnpool2d(MaxUnpool2d(pool)), xx)
        for a, b in zip(got, expected):
            np.testing.assert_array_equal(a, b, err_msg=name)


def test_a_fast_unpool_follows_the_argmax_left_by_the_fast_pool_of_another_network():
    """Encoder and decoder converted by separate to_fast calls: the decoder's unpool reads the argmax
    the encoder's fast pool left on the reference pool, for each new batch."""
    pool = MaxPool2d(2)
    fast_p, fast_u = fast_pool.MaxPool2d(pool), fast_pool.MaxUnpool2d(MaxUnpool2d(pool))
    reference = MaxPool2d(2)
    for _ in range(2):
        x = rng.standard_normal((2, 8, 6, 6)).astype(np.float32)
        up = fast_u.forward(fast_p.forward(x))
        np.testing.assert_array_equal(up, MaxUnpool2d(reference).forward(reference.forward(x)))


def test_arrays_the_loops_do_not_take_run_the_reference():
    x = rng.integers(-5, 5, (2, 3, 4, 4))  # integers: the reference's own dtype rules
    pool = MaxPool2d(2)
    fast_p, fast_u = fast_pool.MaxPool2d(pool), fast_pool.MaxUnpool2d(MaxUnpool2d(pool))
    reference = MaxPool2d(2)
    ref_u = MaxUnpool2d(reference)
    np.testing.assert_array_equal(fast_u.forward(fast_p.forward(x)), ref_u.forward(reference.forward(x)))
    G = rng.integers(-5, 5, x.shape)
    np.testing.assert_array_equal(fast_p.backward(fast_u.backward(G)), reference.backward(ref_u.backward(G)))


def test_the_fast_pools_are_their_references_to_the_container():
    pool = MaxPool2d(2)
    fast_p = fast_pool.MaxPool2d(pool)
    assert fast_p.params is pool.params and fast_p.grads is pool.grads and fast_p.config() == pool.config()
    fast_p.training = False
    assert pool.training is False
    with pytest.raises(TypeError, match="wraps a scratch_ae.layers.pool.MaxPool2d"):
        fast_pool.MaxPool2d(MaxUnpool2d(pool))
    with pytest.raises(RuntimeError, match="has not run forward"):
        fast_pool.MaxUnpool2d(MaxUnpool2d(MaxPool2d(2))).forward(np.zeros((1, 1, 2, 2), np.float32))
