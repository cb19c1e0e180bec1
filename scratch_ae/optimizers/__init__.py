"""Optimizers behind one interface: `step(params, grads)` (derivations/optimizers.md)."""
from .adam import Adam, AdamW
from .base import Optimizer
from .fused import adam_fused_update
from .sgd import SGD

OPTIMIZERS = ("sgd", "momentum", "nesterov", "adam", "adamw")


def make_optimizer(name, lr, weight_decay=0.0, momentum=0.9, fused=True):
    """Build an optimizer by its command-line name.

    For "adamw", `weight_decay` is the decoupled decay; for the others an L2
    weight penalty belongs in the loss (the model's `weight_decay`), not here.
    `fused` (Adam/AdamW): the fused update of optimizers/fused.py, on NumPy
    bit-for-bit equal to the reference `Adam.update` and faster; False runs the
    reference itself.
    """
    if name == "sgd":
        return SGD(lr)
    if name == "momentum":
        return SGD(lr, momentum=momentum)
    if name == "nesterov":
        return SGD(lr, momentum=momentum, nesterov=True)
    if name == "adam":
        return Adam(lr, fused=fused)
    if name == "adamw":
        return AdamW(lr, weight_decay=weight_decay, fused=fused)
    raise ValueError(f"unknown optimizer {name!r}; expected one of: {', '.join(OPTIMIZERS)}")


__all__ = ["Optimizer", "SGD", "Adam", "AdamW", "OPTIMIZERS", "make_optimizer", "adam_fused_update"]
