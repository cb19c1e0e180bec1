"""Reconstruction losses.  Each is a forward/backward pair like a layer.

Both are means over all B*D elements, so the learning rate does not depend on
the image size.  The literature's MNIST unit, the squared error summed over an
image's pixels, is `scratch_ae.metrics.sse_per_image`.
"""

from .backend import array_module as _xp


class MSELoss:
    """L = (1/(B*D)) * sum (reconstruction - target)^2.  Cache: the difference."""

    def forward(self, reconstruction, target):
        self.diff = reconstruction - target
        return (self.diff * self.diff).mean()

    def backward(self):
        """dL/d(reconstruction) = 2 (reconstruction - target) / (B*D), shape (B, D).

        Derivation: derivations/losses.md#mse
        """
        return (2.0 / self.diff.size) * self.diff


class BCEWithLogitsLoss:
    """Binary cross-entropy of sigmoid(z) against targets x in [0, 1], from the logits z.

    L = (1/(B*D)) * sum [softplus(z) - x z], the stable form of
    -[x log sigma(z) + (1-x) log(1 - sigma(z))].  Cache: sigma(z) and x.
    """

    def forward(self, logits, target):
        xp = _xp(logits)
        # softplus(z) = max(z, 0) + log1p(exp(-|z|)): no overflow for any z.
        softplus = xp.maximum(logits, 0) + xp.log1p(xp.exp(-xp.abs(logits)))
        self.probs = 0.5 * (1.0 + xp.tanh(0.5 * logits))
        self.target = target
        return (softplus - target * logits).mean()

    def backward(self):
        """dL/dz = (sigma(z) - x) / (B*D): the sigmoid's derivative cancels.

        Derivation: derivations/losses.md#bce-with-logits
        """
        return (self.probs - self.target) * (1.0 / self.probs.size)


LOSSES = {"mse": MSELoss, "bce": BCEWithLogitsLoss}


def make_loss(name):
    if name not in LOSSES:
        raise ValueError(f"unknown loss {name!r}; expected one of: {', '.join(LOSSES)}")
    return LOSSES[name]()


__all__ = ["MSELoss", "BCEWithLogitsLoss", "LOSSES", "make_loss"]
