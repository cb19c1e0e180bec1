"""Reconstruction losses.  Each is a forward/backward pair like a layer.

Both are means over all B*D elements, so the learning rate does not depend on
the image size.  The literature's MNIST unit, the squared error summed over an
image's pixels, is `scratch_ae.metrics.sse_per_image`.

`bce_with_logits` and `sigmoid` are the elementwise formulas every Bernoulli
loss here uses (this module's BCEWithLogitsLoss, the VAE's BernoulliNLL and its
evaluation in nats): written once.
"""

from .backend import array_module as _xp


def bce_with_logits(logits, target):
    """softplus(z) - x z elementwise, = -[x log sigma(z) + (1-x) log(1 - sigma(z))]; never overflows.

    softplus(z) = max(z, 0) + log1p(exp(-|z|)): exp of a non-positive number only.
    Shapes: logits and target alike (or broadcasting).

    Derivation: derivations/losses.md#bce-with-logits
    """
    xp = _xp(logits)
    softplus = xp.maximum(logits, 0) + xp.log1p(xp.exp(-xp.abs(logits)))
    return softplus - target * logits


def sigmoid(logits):
    """1 / (1 + exp(-z)) as 0.5 (1 + tanh(z / 2)): the same function, with no overflow for any z."""
    return 0.5 * (1.0 + _xp(logits).tanh(0.5 * logits))


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
        self.probs = sigmoid(logits)
        self.target = target
        return bce_with_logits(logits, target).mean()

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


__all__ = ["MSELoss", "BCEWithLogitsLoss", "LOSSES", "make_loss", "bce_with_logits", "sigmoid"]
