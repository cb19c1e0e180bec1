"""The Sequential container: the plain loop, dropout's masks, tied gradients added once (the fast engine's
network against this loop: tests/test_fast_network.py)."""
import numpy as np
import pytest

from scratch_ae import Autoencoder
from scratch_ae.gradcheck import numerical_gradient, relative_error
from scratch_ae.layers import Dense, Dropout, ReLU, Sigmoid, TiedDense
from scratch_ae.sequential import Sequential, collect_grads


def small_network(rng, dtype=np.float64):
    backend_rng = np.random.default_rng(1)

    def dense(i, o, need_input_grad=True):
        return Dense(backend_rng.standard_normal((i, o)).astype(dtype) * 0.5, backend_rng.standard_normal(o).astype(dtype),
                     need_input_grad=need_input_grad)
    return Sequential([dense(6, 5), ReLU(), Dropout(0.3), dense(5, 4), Sigmoid()])


def test_sequential_backward_matches_finite_differences():
    net = small_network(np.random.default_rng(0))
    x = np.random.default_rng(2).uniform(size=(7, 6))

    class Replayed(Sequential):  # each forward hands the dropout the same generator: the same mask
        def forward(self, x):
            self.set_rng(np.random.default_rng(5))
            return super().forward(x)
    replayed = Replayed(net.layers)
    G = np.random.default_rng(3).standard_normal((7, 4))  # a random upstream gradient, not all ones
    replayed.forward(x)
    analytic = {"x": replayed.backward(G)}
    analytic.update({f"{i}.{k}": layer.grads[k].copy() for i, layer in enumerate(net.layers) for k in layer.params})
    f = lambda: (replayed.forward(x) * G).sum()
    for name, grad in analytic.items():
        target = x if name == "x" else net.layers[int(name.split(".")[0])].params[name.split(".")[1]]
        assert relative_error(grad, numerical_gradient(f, target)) < 1e-7, name
    assert set(analytic) == {"x", "0.W", "0.b", "3.W", "3.b"}


def test_the_plain_loop_is_forward_then_reverse_backward():
    net = small_network(None)
    net.eval()
    x = np.random.default_rng(2).uniform(size=(3, 6))
    out = x
    for layer in net.layers:
        out = layer.forward(out)
    np.testing.assert_array_equal(net.forward(x), out)
    assert all(layer.training is False for layer in net.layers)
    net.train()
    assert all(layer.training is True for layer in net.layers)


def test_parameters_are_named_by_position_and_tied_gradients_added_once():
    rng = np.random.default_rng(0)
    enc = Dense(rng.standard_normal((6, 3)), np.zeros(3))
    dec = TiedDense(enc, np.zeros(6))
    encoder, decoder = Sequential([enc, ReLU()]), Sequential([dec])
    assert sorted(encoder.named_parameters("encoder.")) == ["encoder.0.W", "encoder.0.b"]
    x = rng.uniform(size=(4, 6))
    g = rng.standard_normal((4, 6))
    decoder.forward(encoder.forward(x))
    encoder.backward(decoder.backward(g))
    named = encoder.named_layers("encoder.") + decoder.named_layers("decoder.")
    grads = collect_grads(named)
    assert sorted(grads) == ["decoder.0.b", "encoder.0.W", "encoder.0.b"]
    np.testing.assert_allclose(grads["encoder.0.W"], enc.grads["W"] + dec.grads["W"])


def test_loss_and_grads_copy_returns_arrays_the_next_call_does_not_overwrite(mnist_test_images):
    model = Autoencoder(sizes=[784, 16])
    _, live = model.loss_and_grads(mnist_test_images[:20])
    _, kept = model.loss_and_grads(mnist_test_images[:20], copy=True)
    before = {k: v.copy() for k, v in kept.items()}
    model.loss_and_grads(mnist_test_images[20:40])
    for name in kept:
        np.testing.assert_array_equal(kept[name], before[name])
    assert any(not np.array_equal(live[n], before[n]) for n in live)  # the views did change


def test_a_dropout_model_needs_a_generator_and_replays_its_masks(mnist_test_images):
    model = Autoencoder(sizes=[784, 32], dropout=0.5)
    with pytest.raises(ValueError, match="pass rng"):
        model.loss_and_grads(mnist_test_images[:10])
    a = model.loss_and_grads(mnist_test_images[:10], rng=np.random.default_rng(9), copy=True)
    b = model.loss_and_grads(mnist_test_images[:10], rng=np.random.default_rng(9), copy=True)
    assert float(a[0]) == float(b[0])
    c = model.loss_and_grads(mnist_test_images[:10], rng=np.random.default_rng(10))
    assert float(c[0]) != float(a[0])



def test_dropout_in_evaluation_mode_is_the_network_without_dropout():
    """Evaluation uses no mask and no 1/(1-p) scaling: the same outputs as the same layers without it."""
    net = small_network(None)
    without = Sequential([layer for layer in net.layers if not isinstance(layer, Dropout)])
    x = np.random.default_rng(2).uniform(size=(5, 6))
    net.eval()
    np.testing.assert_array_equal(net.forward(x), without.forward(x))
    net.train()
    net.set_rng(np.random.default_rng(0))
    assert not np.array_equal(net.forward(x), without.forward(x))  # in training mode the mask does change it


def test_no_class_level_mutable_defaults():
    from scratch_ae.layers import Identity
    a, b = Identity(), Identity()
    a.params["x"] = 1
    assert b.params == {} and a.params is not b.params
