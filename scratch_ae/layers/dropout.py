"""Inverted dropout (derivations/dropout.md)."""
import math
from numbers import Real

import numpy as np

from .base import Layer


class Dropout(Layer):
    """Inverted dropout: in training, out = x * mask with mask = [u >= p] / (1 - p), u ~ U[0, 1).

    p is the DROP probability: each entry is zeroed with probability p and the survivors are
    scaled by 1/(1 - p), so E[out] = x and evaluation needs no rescaling.  PyTorch's
    `nn.Dropout(p)` and Keras' `Dropout(rate)` mean the same; some course notes (cs231n's
    `p`, the original paper's `p`) use the KEEP probability instead, which is 1 - p here.

    Attributes: params = {} and grads = {} (nothing to learn); training (True: drop, False:
    the identity, for evaluation); rng, a numpy Generator the caller sets before each training
    forward (e.g. numpy.random.default_rng([seed, epoch, step, layer_index])), so a run is
    reproducible and resumable; xp, numpy or cupy, like Dense.  The mask is drawn on the host,
    `rng.random(x.shape) >= p`, then copied with xp.asarray in x's dtype, so a NumPy and a CuPy
    run with the same generator see the same masks; float32 stays float32.

    Cache: the scaled mask (None when the forward was the identity), reused by backward.
    """

    stochastic = True

    def __init__(self, p=0.5, xp=np):
        if isinstance(p, bool) or not isinstance(p, Real) or not math.isfinite(p) or not 0.0 <= p < 1.0:
            raise ValueError(f"Dropout p (the drop probability) must be a number in [0, 1), got {p!r}")
        self.p = float(p)
        self.xp = xp
        self.params = {}
        self.grads = {}
        self.training = True
        self.rng = None
        self.mask = None

    def forward(self, x):
        """Training: x * mask, mask = [rng.random(x.shape) >= p] / (1 - p); evaluation or p = 0: x itself.

        Derivation: derivations/dropout.md#inverted-dropout
        """
        if not self.training or self.p == 0.0:
            self.mask = None  # the identity: nothing drawn, backward passes grad_out through
            return x
        if self.rng is None:
            raise ValueError(f"Dropout(p={self.p}) in training mode needs a random generator: set layer.rng = "
                             "numpy.random.default_rng(...) before the forward, or layer.training = False to evaluate")
        keep = self.rng.random(x.shape) >= self.p  # on the host, whatever the backend
        dtype = np.dtype(x.dtype)
        host_mask = keep.astype(dtype)
        host_mask *= dtype.type(1.0 / (1.0 - self.p))
        self.mask = self.xp.asarray(host_mask)
        return x * self.mask

    def backward(self, grad_out):
        """dL/dx = grad_out * mask, the forward's own mask (grad_out itself after an identity forward).

        Derivation: derivations/dropout.md#dropout-backward
        """
        if self.mask is None:
            return grad_out
        return grad_out * self.mask

    def config(self):
        return {"type": "dropout", "p": self.p}

    def __repr__(self):
        return f"Dropout(p={self.p})"
