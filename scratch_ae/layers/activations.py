"""Elementwise activations.  Each caches the one array its backward needs."""
from ..backend import array_module
from .base import Layer


class ReLU(Layer):
    """out = max(x, 0).  Cache: out, since [out > 0] is exactly the mask [x > 0].

    dL/dx = grad_out * [out > 0]; at x = 0 we use the sub-gradient 0.  Caching
    out rather than a boolean mask lets the fast engine's Dense + ReLU pair
    (scratch_ae/fast/dense_relu.py) fill the same cache without writing a mask.
    """

    def forward(self, x):
        # x * [x > 0] rather than maximum(x, 0): the same values (NaN stays NaN),
        # and in NumPy the faster of the two.
        self.out = x * (x > 0)
        return self.out

    def backward(self, grad_out):
        """dL/dx = grad_out * [out > 0].

        Derivation: derivations/dense-autoencoder.md#relu-backward
        """
        return grad_out * (self.out > 0)


class LeakyReLU(Layer):
    """out = x for x > 0, slope * x otherwise.  Cache: the mask x > 0."""

    def __init__(self, slope=0.01):
        super().__init__()
        self.slope = slope

    def forward(self, x):
        self.mask = x > 0
        return x * self.mask + (self.slope * x) * ~self.mask

    def backward(self, grad_out):
        """dL/dx = grad_out * (1 if x > 0 else slope).

        Derivation: derivations/dense-autoencoder.md#leaky-relu-backward
        """
        return grad_out * self.mask + (self.slope * grad_out) * ~self.mask

    def config(self):
        return {"type": "leaky_relu", "slope": self.slope}

    def __repr__(self):
        return f"LeakyReLU(slope={self.slope})"


class Sigmoid(Layer):
    """out = 1 / (1 + exp(-x)).  Cache: out, since sigma' = out (1 - out)."""

    def forward(self, x):
        # 0.5 (1 + tanh(x/2)) equals the logistic function and never overflows exp.
        self.out = 0.5 * (1.0 + array_module(x).tanh(0.5 * x))
        return self.out

    def backward(self, grad_out):
        """dL/dx = grad_out * out * (1 - out).

        Derivation: derivations/dense-autoencoder.md#sigmoid-backward
        """
        return grad_out * self.out * (1.0 - self.out)


class Tanh(Layer):
    """out = tanh(x).  Cache: out, since tanh' = 1 - out^2."""

    def forward(self, x):
        self.out = array_module(x).tanh(x)
        return self.out

    def backward(self, grad_out):
        """dL/dx = grad_out * (1 - out^2).

        Derivation: derivations/dense-autoencoder.md#tanh-backward
        """
        return grad_out * (1.0 - self.out * self.out)


class Identity(Layer):
    """out = x (the linear autoencoder's activation).  Caches nothing."""

    def forward(self, x):
        return x

    def backward(self, grad_out):
        """dL/dx = grad_out.

        Derivation: derivations/dense-autoencoder.md#identity-backward
        """
        return grad_out


ACTIVATIONS = {
    "relu": ReLU,
    "leaky_relu": LeakyReLU,
    "sigmoid": Sigmoid,
    "tanh": Tanh,
    "identity": Identity,
}
ALIASES = {"linear": "identity", "leaky-relu": "leaky_relu", "leakyrelu": "leaky_relu", "none": "identity"}
HE_FAMILY = ("relu", "leaky_relu")


def activation_name(name):
    """Canonical activation name, or a ValueError naming the valid ones."""
    key = ALIASES.get(str(name).lower(), str(name).lower())
    if key not in ACTIVATIONS:
        raise ValueError(f"unknown activation {name!r}; expected one of: {', '.join(ACTIVATIONS)} (or 'linear')")
    return key


def make_activation(name, leaky_slope=0.01):
    key = activation_name(name)
    return LeakyReLU(leaky_slope) if key == "leaky_relu" else ACTIVATIONS[key]()
