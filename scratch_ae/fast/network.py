"""`to_fast(network)`: a network of reference layers with fast layers in the places of the references.

    reference layer(s)                    fast layer (wrapping them)
    Dense followed by ReLU            ->  fast.dense_relu.DenseReLU(dense, relu)
    Conv2d, ConvTranspose2d           ->  fast.conv.Conv2d(ref), fast.conv.ConvTranspose2d(ref)
    MaxPool2d, MaxUnpool2d            ->  fast.pool.MaxPool2d(ref), fast.pool.MaxUnpool2d(ref)
    ReLU (not after a Dense)          ->  fast.activations.ReLU(ref)
    a nested Sequential               ->  to_fast of it
    anything else (Dropout, Sigmoid, Flatten, Reshape, TiedDense, GaussianReparameterize, ...)
                                      ->  the same object

A fast layer computes with its reference's own parameter and gradient arrays (and leaves its
caches on the reference where another layer reads them, as a pool's argmax), so parameter names,
checkpoints, optimizer state and `collect_grads` over the REFERENCE network hold whichever network
ran.  Tested by tests/test_fast_network.py.
"""
import weakref

from ..layers.activations import ReLU
from ..layers.conv import Conv2d, ConvTranspose2d
from ..layers.dense import Dense
from ..layers.pool import MaxPool2d, MaxUnpool2d
from ..sequential import Sequential
from . import activations, conv, dense_relu, pool
from .jit import numba_unavailable_reason
from .threads import threads_held

# reference type -> the fast layer that wraps one (Dense + ReLU pairs are found first, in to_fast)
_ONE_FOR_ONE = {Conv2d: conv.Conv2d, ConvTranspose2d: conv.ConvTranspose2d, MaxPool2d: pool.MaxPool2d,
                MaxUnpool2d: pool.MaxUnpool2d, ReLU: activations.ReLU}

# id(reference layer) -> its fast layer, while that fast layer lives (it keeps the reference alive,
# so the id cannot be reused meanwhile).  One fast form per reference layer: a fast conv layer keeps
# its forward's cache on itself, so a forward through one converted network (a model's whole
# encoder) and the backward through another holding the same layers (its body) must meet the
# same fast layer.
_FAST_FORMS = weakref.WeakValueDictionary()


def _fast_form(layer):
    """The fast layer standing in for the reference `layer`, made once."""
    form = _FAST_FORMS.get(id(layer))
    if form is None or form.reference is not layer:
        form = _FAST_FORMS[id(layer)] = _ONE_FOR_ONE[type(layer)](layer)
    return form


class FastSequential(Sequential):
    """A Sequential of fast layers (see `to_fast`), run by the same plain loop.

    Its only addition: when it holds a layer that splits work over threads (a fast conv or pool
    layer), forward and backward run inside `fast.threads.threads_held()`, where BLAS is held
    at one thread and those layers' chunks use two (counted and process-wide, so nesting and
    several models in several Python threads are fine).  Everything else is Sequential's:
    `train`/`eval`, `set_rng`, `stochastic`, `named_parameters` (named by position in THIS
    container, where a Dense + ReLU pair is one layer: use the reference network for the model's
    names), `collect_grads`.
    """

    def __init__(self, layers):
        super().__init__(layers)
        self.splits_work = any(getattr(layer, "splits_work", False) for layer in self.layers)

    def forward(self, x):
        if not self.splits_work:
            return super().forward(x)
        with threads_held():
            return super().forward(x)

    def backward(self, grad_out):
        """Sequential.backward, inside the thread hold where a layer splits work.

        Derivation: derivations/dense-autoencoder.md#sequential-backward
        """
        if not self.splits_work:
            return super().backward(grad_out)
        with threads_held():
            return super().backward(grad_out)

    def __repr__(self):
        return "Fast" + super().__repr__()


def to_fast(network):
    """A FastSequential running `network` (a Sequential of reference layers) with fast layers in the
    places of the references they replace (the module docstring lists them); `network` itself and
    its layers are left as they are, and the layers kept are the same objects.  A reference layer
    gets one fast form, whichever networks holding it are converted (so a forward through one and
    the backward through another, e.g. a model's encoder and its body, meet the same fast layer).

    Needs Numba (the `[fast]` extra): without it a one-line ValueError.  Meant for NumPy networks:
    on CuPy arrays every fast layer runs its reference.
    """
    if not isinstance(network, Sequential):
        raise TypeError(f"to_fast expects a Sequential of reference layers, got {type(network).__name__}")
    reason = numba_unavailable_reason()
    if reason is not None:
        raise ValueError(f"to_fast needs Numba: {reason}")
    layers, i = [], 0
    source = network.layers
    while i < len(source):
        layer = source[i]
        following = source[i + 1] if i + 1 < len(source) else None
        if type(layer) is Dense and type(following) is ReLU:
            layers.append(dense_relu.DenseReLU(layer, following))
            i += 2
            continue
        if isinstance(layer, Sequential):
            layers.append(to_fast(layer))
        elif type(layer) in _ONE_FOR_ONE:
            layers.append(_fast_form(layer))
        else:
            layers.append(layer)
        i += 1
    fast = FastSequential(layers)
    fast.training = network.training
    return fast


__all__ = ["FastSequential", "to_fast"]
