"""Stochastic gradient descent, with optional (Nesterov) momentum."""
from .. import validation
from .base import Optimizer


class SGD(Optimizer):
    """Plain:     W <- W - lr g
    Momentum:  v <- mu v + g;  W <- W - lr v
    Nesterov:  v <- mu v + g;  W <- W - lr (g + mu v)

    (The velocity form PyTorch uses; the derivation shows it equals the
    look-ahead gradient form.)

    engine : accepted and checked like every optimizer's ("auto", "reference", "fast"), so one
        `engine=` reaches every optimizer; SGD has no fast form (its update is one or two
        in-place lines already), so every engine runs `update`.
    """

    def __init__(self, lr=0.01, momentum=0.0, nesterov=False, engine="auto"):
        super().__init__(lr, engine)
        self.momentum = validation.number("momentum", momentum, 0, 1, high_open=True)
        if nesterov and momentum == 0.0:
            raise ValueError("nesterov=True needs a momentum > 0")
        self.nesterov = bool(nesterov)
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
