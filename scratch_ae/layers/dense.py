"""The fully connected (affine) layer, and its tied-weight twin for decoders."""
import math

import numpy as np

from .base import Layer


def init_weights(fan_in, fan_out, init, rng, dtype=np.float32):
    """Draw a (fan_in, fan_out) weight matrix on the host.

    "he": N(0, 2/fan_in), for layers followed by ReLU or LeakyReLU;
    "glorot": U(-a, a) with a = sqrt(6/(fan_in+fan_out)), for everything else.

    Derivation: derivations/dense-autoencoder.md#initialisation
    """
    if init == "he":
        return (rng.standard_normal((fan_in, fan_out)) * math.sqrt(2.0 / fan_in)).astype(dtype)
    if init == "glorot":
        limit = math.sqrt(6.0 / (fan_in + fan_out))
        return rng.uniform(-limit, limit, (fan_in, fan_out)).astype(dtype)
    raise ValueError(f"unknown init {init!r}; expected 'he' or 'glorot'")


class Dense(Layer):
    """out = x @ W + b.

    Shapes: x (B, fan_in), W (fan_in, fan_out), b (fan_out,), out (B, fan_out).
    Cache: x (the backward needs it for grad_W).
    """

    def __init__(self, W, b, xp=np, need_input_grad=True):
        super().__init__()
        self.xp = xp
        self.params = {"W": W, "b": b}
        self.grads = {"W": xp.zeros_like(W), "b": xp.zeros_like(b)}
        # The first layer's input is the data: nobody needs dL/dx there, and
        # skipping that product saves a third of the layer's backward work.
        self.need_input_grad = need_input_grad
        self.x = None

    @classmethod
    def create(cls, fan_in, fan_out, init, rng, backend, dtype=np.float32, need_input_grad=True):
        """A Dense layer with weights drawn on the host by `rng` and copied to `backend`."""
        W = backend.asarray(init_weights(fan_in, fan_out, init, rng, dtype))
        b = backend.xp.zeros(fan_out, dtype=dtype)
        return cls(W, b, backend.xp, need_input_grad)

    @property
    def fan_in(self):
        return self.params["W"].shape[0]

    @property
    def fan_out(self):
        return self.params["W"].shape[1]

    def forward(self, x):
        self.x = x
        out = x @ self.params["W"]
        out += self.params["b"]
        return out

    def backward(self, grad_out):
        """grad_out = dL/d(out), (B, fan_out). Returns dL/dx, (B, fan_in), or None.

        grad_W = x^T grad_out, grad_b = column sums of grad_out, dL/dx = grad_out W^T.

        Derivation: derivations/dense-autoencoder.md#dense-backward
        """
        xp = self.xp
        xp.matmul(self.x.T, grad_out, out=self.grads["W"])
        xp.sum(grad_out, axis=0, out=self.grads["b"])
        if not self.need_input_grad:
            return None
        return grad_out @ self.params["W"].T

    def config(self):
        return {"type": "dense", "in": int(self.fan_in), "out": int(self.fan_out)}

    def __repr__(self):
        return f"Dense({self.fan_in}, {self.fan_out})"


class TiedDense(Layer):
    """A decoder layer whose weights are the transpose of an encoder layer's.

    out = x @ source.W^T + b.  Only b is its own parameter; `grads["W"]` holds
    dL/d(source.W) from this layer's use (shape of source.W), which the model
    adds to the source's own gradient.

    Derivation: derivations/dense-autoencoder.md#tied-weights
    """

    def __init__(self, source, b, xp=np):
        super().__init__()
        self.xp = xp
        self.source = source
        self.params = {"b": b}
        self.grads = {"W": xp.zeros_like(source.params["W"]), "b": xp.zeros_like(b)}
        self.need_input_grad = True
        self.x = None

    @property
    def fan_in(self):
        return self.source.fan_out

    @property
    def fan_out(self):
        return self.source.fan_in

    def forward(self, x):
        self.x = x
        out = x @ self.source.params["W"].T
        out += self.params["b"]
        return out

    def backward(self, grad_out):
        """grad_out (B, fan_out) -> dL/dx (B, fan_in); dL/dW_source = grad_out^T x.

        Derivation: derivations/dense-autoencoder.md#tied-weights
        """
        xp = self.xp
        xp.matmul(grad_out.T, self.x, out=self.grads["W"])
        xp.sum(grad_out, axis=0, out=self.grads["b"])
        return grad_out @ self.source.params["W"]

    def config(self):
        return {"type": "tied_dense", "in": int(self.fan_in), "out": int(self.fan_out)}

    def __repr__(self):
        return f"TiedDense({self.fan_in}, {self.fan_out})"
