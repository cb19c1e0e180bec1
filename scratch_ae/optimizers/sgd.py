"""Stochastic gradient descent, with optional (Nesterov) momentum."""
from .base import Optimizer


class SGD(Optimizer):
    """Plain:     W <- W - lr g
    Momentum:  v <- mu v + g;  W <- W - lr v
    Nesterov:  v <- mu v + g;  W <- W - lr (g + mu v)

    (The velocity form PyTorch uses; the derivation shows it equals the
    look-ahead gradient form.)
    """

    def __init__(self, lr=0.01, momentum=0.0, nesterov=False):
        super().__init__(lr)
        if not 0.0 <= momentum < 1.0:
            raise ValueError(f"momentum must be in [0, 1), got {momentum!r}")
        if nesterov and momentum == 0.0:
            raise ValueError("nesterov=True needs a momentum > 0")
        self.momentum = momentum
        self.nesterov = nesterov
        self.slots = ("velocity",) if momentum else ()

    def update(self, name, param, grad, state):
        """Derivation: derivations/optimizers.md#sgd"""
        if not self.momentum:
            param -= self.lr * grad
            return
        velocity = state["velocity"]
        velocity *= self.momentum
        velocity += grad
        if self.nesterov:
            param -= self.lr * (grad + self.momentum * velocity)
        else:
            param -= self.lr * velocity
