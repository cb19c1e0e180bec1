"""The interface every layer follows (cs231n style: a forward/backward pair)."""


class Layer:
    """A layer maps an input batch to an output batch and back-propagates.

    `forward(x)` caches exactly what `backward` needs; `backward(grad_out)`
    returns dL/d(input) and stores dL/d(parameter) in `self.grads` under the
    same keys as `self.params`.  A layer never updates its own parameters:
    the optimizer does, so gradients stay inspectable after `backward`.

    `training` is True in training mode and False in evaluation mode; only
    stochastic layers (Dropout, the VAE's sampling layer) behave differently.
    They draw their randomness from `self.rng`, a NumPy Generator the caller
    hands them for each step, so a gradient check can replay exactly the same
    masks or noise by handing them a generator seeded the same way.

    Every instance has its own `params` and `grads` dicts (set here, never
    shared through class attributes, so one layer's entries cannot leak into another's).
    """

    stochastic = False  # True for layers that read `self.rng` in training mode

    def __init__(self):
        self.params = {}
        self.grads = {}
        self.training = True

    def forward(self, x):
        raise NotImplementedError

    def backward(self, grad_out):
        raise NotImplementedError

    def config(self):
        """A JSON-able description: the layer's type and hyper-parameters (checkpoints store it)."""
        return {"type": type(self).__name__.lower()}

    def __call__(self, x):
        return self.forward(x)

    def __repr__(self):
        return f"{type(self).__name__}()"
