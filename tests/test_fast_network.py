"""scratch_ae/fast/network.py: to_fast maps each reference layer to the fast layer that replaces it,
shares the reference's arrays, keeps every other layer as the same object; a whole dense, dropout,
tied, stride-2 conv and pooled conv network's forward and backward equal the reference network's
(dense: bit for bit; conv: to rounding, float32 2e-5 and float64 1e-12 of the largest entry), on
the shapes training uses, on one thread or two."""
import numpy as np
import pytest

from scratch_ae import fast
from scratch_ae.fast import activations as fast_activations, conv as fast_conv, pool as fast_pool
from scratch_ae.fast.dense_relu import DenseReLU
from scratch_ae.fast.network import FastSequential
from scratch_ae.layers import (Conv2d, ConvTranspose2d, Dense, Dropout, Flatten, MaxPool2d, MaxUnpool2d, ReLU,
                               Reshape, Sigmoid, TiedDense, init_weights)
from scratch_ae.sequential import Sequential, collect_grads

pytestmark = pytest.mark.skipif(fast.unavailable_reason() is not None, reason=str(fast.unavailable_reason()))

rng = np.random.default_rng(7)


def dense(fan_in, fan_out, r, dtype=np.float32, need_input_grad=True):
    return Dense(init_weights(fan_in, fan_out, "he", r, dtype), r.standard_normal(fan_out).astype(dtype) * 0.1,
                 need_input_grad=need_input_grad)


def dense_network(dtype=np.float32, dropout=False):
    r = np.random.default_rng(3)
    layers = [dense(784, 128, r, dtype, need_input_grad=False), ReLU()]
    layers += [Dropout(0.2)] if dropout else []
    return Sequential(layers + [dense(128, 32, r, dtype), ReLU(), dense(32, 128, r, dtype), ReLU(),
                                dense(128, 784, r, dtype), Sigmoid()])


def pooled_network(dtype):
    r = np.random.default_rng(8)
    p1, p2 = MaxPool2d(2), MaxPool2d(2)
    return Sequential([Conv2d(1, 16, 3, 1, 1, rng=r, dtype=dtype, need_input_grad=False), ReLU(), p1,
                       Conv2d(16, 8, 3, 1, 1, rng=r, dtype=dtype), ReLU(), p2, MaxUnpool2d(p2),
                       ConvTranspose2d(8, 16, 3, 1, 1, rng=r, dtype=dtype), ReLU(), MaxUnpool2d(p1),
                       ConvTranspose2d(16, 1, 3, 1, 1, rng=r, dtype=dtype), Sigmoid()])


def stride2_network(dtype):
    r = np.random.default_rng(9)
    return Sequential([Conv2d(3, 16, 3, 2, 1, rng=r, dtype=dtype, need_input_grad=False), ReLU(),
                       Conv2d(16, 32, 3, 2, 1, rng=r, dtype=dtype), ReLU(), Flatten(),
                       dense(32 * 7 * 7, 64, r, dtype), ReLU(), dense(64, 32 * 7 * 7, r, dtype),
                       Reshape((32, 7, 7)),
                       ConvTranspose2d(32, 16, 3, 2, 1, 1, rng=r, dtype=dtype), ReLU(),
                       ConvTranspose2d(16, 3, 3, 2, 1, 1, rng=r, dtype=dtype), Sigmoid()])


def step(network, x, r=None):
    """One training step's passes through `network`: output and every gradient (copied)."""
    if r is not None:
        network.set_rng(np.random.default_rng(r))
    h = network.forward(x)
    g = network.backward(2 * (h - x) / h.size)
    return h, g, collect_grads(network.named_layers())


def test_to_fast_puts_each_fast_layer_in_its_references_place_and_keeps_the_rest():
    p = MaxPool2d(2)
    inner = Sequential([Conv2d(8, 8, 3, 1, 1), ReLU()])
    enc = Dense(np.ones((4, 3), np.float32), np.zeros(3, np.float32))
    net = Sequential([Conv2d(1, 8, 3, 1, 1), ReLU(), p, inner, MaxUnpool2d(p), ConvTranspose2d(8, 1, 3, 1, 1),
                      Sigmoid(), Flatten(), Dropout(0.5), enc, ReLU(), TiedDense(enc, np.zeros(4, np.float32)),
                      Dense(np.ones((4, 2), np.float32), np.zeros(2, np.float32)), Sigmoid()])
    fast_net = fast.to_fast(net)
    kinds = [type(layer) for layer in fast_net.layers]
    assert kinds == [fast_conv.Conv2d, fast_activations.ReLU, fast_pool.MaxPool2d, FastSequential,
                     fast_pool.MaxUnpool2d, fast_conv.ConvTranspose2d, Sigmoid, Flatten, Dropout, DenseReLU,
                     TiedDense, Dense, Sigmoid]
    assert [type(layer) for layer in fast_net[3].layers] == [fast_conv.Conv2d, fast_activations.ReLU]
    for i, j in ((6, 6), (7, 7), (8, 8), (10, 11), (11, 12), (12, 13)):  # no fast form: the very same objects
        assert fast_net[i] is net[j]
    assert fast_net[0].reference is net[0] and fast_net[4].reference is net[4]
    assert fast_net[9].dense is enc and fast_net[9].relu is net[10]
    # the same parameter and gradient arrays: nothing counted twice, nothing copied
    ref_arrays = {id(a) for a in Sequential(net.layers).named_parameters().values()}
    fast_arrays = {id(a) for a in fast_net.named_parameters().values()}
    assert fast_arrays == ref_arrays
    assert isinstance(fast_net, Sequential) and fast_net.splits_work
    assert type(net[0]) is Conv2d and type(net[3][0]) is Conv2d  # the reference network is left as it was
    # a dense network: no thread hold (BLAS keeps its threads, so its products round as the reference's)
    assert not fast.to_fast(Sequential([enc, ReLU(), TiedDense(enc, np.zeros(4, np.float32)), ReLU()])).splits_work


def test_networks_sharing_a_layer_share_its_fast_form():
    """A model's encoder and its body (a slice of the same layers) converted apart: a forward through
    one and the backward through the other give the reference's gradients."""
    conv1 = Conv2d(1, 8, 3, 2, 1, rng=np.random.default_rng(1), dtype=np.float64)
    body = [conv1, ReLU(), Conv2d(8, 8, 3, 2, 1, rng=np.random.default_rng(2), dtype=np.float64)]
    encoder = Sequential(body + [Sigmoid()])
    fast_encoder, fast_body = fast.to_fast(encoder), fast.to_fast(Sequential(body))
    assert fast_encoder[0] is fast_body[0]
    x = rng.random((3, 1, 12, 12))
    out = encoder.forward(x)
    G = rng.standard_normal(out.shape)
    encoder.backward(G)
    expected = {k: v.copy() for k, v in collect_grads(encoder.named_layers()).items()}
    fast_encoder.forward(x)
    fast_body.backward(encoder[3].backward(G))
    for name, grad in collect_grads(encoder.named_layers()).items():
        assert_close(grad, expected[name], np.float64, name)


def test_the_sequential_helpers_work_on_the_fast_network():
    net = dense_network(dropout=True)
    fast_net = fast.to_fast(net)
    assert fast_net.stochastic and net.stochastic
    fast_net.eval()
    assert all(layer.training is False for layer in net.layers)  # the references' own flags
    fast_net.train()
    assert all(layer.training is True for layer in net.layers)
    assert (sum(a.size for a in fast_net.named_parameters().values())
            == sum(a.size for a in net.named_parameters().values()))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("dropout", [False, True])
def test_a_dense_network_gives_the_reference_results_bit_for_bit(dtype, dropout, mnist_test_images):
    x = mnist_test_images[:64].astype(dtype)
    net = dense_network(dtype, dropout)
    expected = step(net, x, r=4)
    expected = (expected[0], expected[1], {k: v.copy() for k, v in expected[2].items()})
    fast_net = fast.to_fast(net)
    h, g, _ = step(fast_net, x, r=4)
    np.testing.assert_array_equal(h, expected[0])
    assert g is None and expected[1] is None
    got = collect_grads(net.named_layers())  # the reference network's names, the fast run's gradients
    for name, grad in expected[2].items():
        np.testing.assert_array_equal(got[name], grad, err_msg=name)


def test_a_tied_network_gives_the_reference_results_bit_for_bit(mnist_test_images):
    """The tied autoencoder's shapes (a ReLU after the TiedDense too): gradients added up once, the
    same bits (no thread hold in a dense network, so BLAS rounds as it does for the reference)."""
    r = np.random.default_rng(0)
    enc = dense(784, 64, r)
    encoder = Sequential([enc, ReLU()])
    decoder = Sequential([TiedDense(enc, np.zeros(784, np.float32)), ReLU()])
    x = mnist_test_images[:32]
    results = []
    for e, d in ((encoder, decoder), (fast.to_fast(encoder), fast.to_fast(decoder))):
        h = d.forward(e.forward(x))
        e.backward(d.backward(h - x))
        grads = collect_grads(e.named_layers("encoder.") + d.named_layers("decoder."))
        results.append({k: v.copy() for k, v in grads.items()})
    assert sorted(results[0]) == sorted(results[1]) == ["decoder.0.b", "encoder.0.W", "encoder.0.b"]
    for name in results[0]:
        np.testing.assert_array_equal(results[1][name], results[0][name])


def assert_close(a, b, dtype, what):
    tol = 2e-5 if dtype == np.float32 else 1e-12
    scale = max(float(np.max(np.abs(b))), 1e-30)
    assert a.shape == b.shape and a.dtype == b.dtype, what
    assert float(np.max(np.abs(a - b))) <= tol * scale, f"{what}: {np.max(np.abs(a - b))} vs scale {scale}"


@pytest.mark.parametrize("make, shape", [(pooled_network, (16, 1, 28, 28)), (stride2_network, (16, 3, 28, 28))],
                         ids=["pooled", "stride2"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_conv_networks_give_the_reference_results_to_rounding(make, shape, dtype):
    x = rng.random(shape).astype(dtype)
    net = make(dtype)
    h_ref, _, grads = step(net, x)
    expected = {k: v.copy() for k, v in grads.items()}
    h, _, _ = step(fast.to_fast(net), x)
    assert_close(h, h_ref, dtype, "output")
    got = collect_grads(net.named_layers())
    for name in expected:
        assert_close(got[name], expected[name], dtype, name)


@pytest.mark.parametrize("make, shape", [(pooled_network, (8, 1, 28, 28)), (stride2_network, (8, 3, 28, 28))],
                         ids=["pooled", "stride2"])
def test_two_threads_give_the_bits_of_one(make, shape):
    """Inside the hold (BLAS allowed two threads) the chunks split over two threads: the same chunks
    and images, and the weight gradients' parts added in the same order, so the same bits."""
    threadpoolctl = pytest.importorskip("threadpoolctl")
    x = rng.random(shape).astype(np.float32)
    runs = []
    for blas_threads in (1, 2):
        net = make(np.float32)
        fast_net = fast.to_fast(net)
        for i, layer in enumerate(fast_net.layers):  # several chunks per layer
            if isinstance(layer, (fast_conv.Conv2d, fast_conv.ConvTranspose2d)):
                fast_net.layers[i] = type(layer)(layer.reference, chunk_bytes=20000)
        with threadpoolctl.threadpool_limits(blas_threads, user_api="blas"):
            h, _, grads = step(fast_net, x)
        runs.append([h] + [grads[k].copy() for k in sorted(grads)])
    for a, b in zip(*runs):
        np.testing.assert_array_equal(a, b)


def test_to_fast_refuses_what_is_not_a_sequential():
    with pytest.raises(TypeError, match="to_fast expects a Sequential"):
        fast.to_fast([ReLU()])
