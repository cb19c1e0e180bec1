"""Optimizers behind one interface: `step(params, grads)` (derivations/optimizers.md)."""
from .adam import Adam, AdamW
from .base import Optimizer
from .sgd import SGD

OPTIMIZERS = ("sgd", "momentum", "nesterov", "adam", "adamw")


def make_optimizer(name, lr, weight_decay=0.0, momentum=0.9, engine="auto"):
    """Build an optimizer by its command-line name.

    For "adamw", `weight_decay` is the decoupled decay; for the others an L2
    weight penalty belongs in the loss (the model's `weight_decay`), not here.
    engine : "auto", "reference" or "fast", passed to the optimizer (`Optimizer`); the models pass
    their own `engine` here when they fit.
    """
    if name == "sgd":
        return SGD(lr, engine=engine)
    if name == "momentum":
        return SGD(lr, momentum=momentum, engine=engine)
    if name == "nesterov":
        return SGD(lr, momentum=momentum, nesterov=True, engine=engine)
    if name == "adam":
        return Adam(lr, engine=engine)
    if name == "adamw":
        return AdamW(lr, weight_decay=weight_decay, engine=engine)
    raise ValueError(f"unknown optimizer {name!r}; expected one of: {', '.join(OPTIMIZERS)}")


__all__ = ["Optimizer", "SGD", "Adam", "AdamW", "OPTIMIZERS", "make_optimizer"]
