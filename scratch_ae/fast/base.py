"""What every fast layer that stands in for one reference layer shares."""
from ..layers.base import Layer


class FastLayer(Layer):
    """A layer computing what its `reference` (a reference layer object) computes, faster.

    `params` and `grads` are the reference's own dicts (the same arrays: counting parameters,
    stepping an optimizer or saving a checkpoint sees one set of arrays whichever layer ran);
    `training` is the reference's; `config()` is the reference's (a fast layer is a way of running
    it, not another layer).  `splits_work`: True when the layer calls fast.threads.split_run, so
    that fast.network.FastSequential enters threads_held() around it.
    """

    reference_type = None  # the reference class this fast layer replaces
    splits_work = False

    def __init__(self, reference):
        if type(reference) is not self.reference_type:
            raise TypeError(f"{type(self).__module__}.{type(self).__name__} wraps a "
                            f"{self.reference_type.__module__}.{self.reference_type.__name__}, got {reference!r}")
        self.reference = reference

    @property
    def params(self):
        return self.reference.params

    @property
    def grads(self):
        return self.reference.grads

    @property
    def training(self):
        return self.reference.training

    @training.setter
    def training(self, mode):
        self.reference.training = mode

    def config(self):
        return self.reference.config()

    def __repr__(self):
        return f"fast.{self.reference!r}"
