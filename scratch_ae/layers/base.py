"""The interface every layer follows (cs231n style: a forward/backward pair)."""


class Layer:
    """A layer maps an input batch to an output batch and back-propagates.

    `forward(x)` caches exactly what `backward` needs; `backward(grad_out)`
    returns dL/d(input) and stores dL/d(parameter) in `self.grads` under the
    same keys as `self.params`.  A layer never updates its own parameters:
    the optimizer does, so gradients stay inspectable after `backward`.
    """

    params: dict = {}
    grads: dict = {}

    def forward(self, x):
        raise NotImplementedError

    def backward(self, grad_out):
        raise NotImplementedError

    def __call__(self, x):
        return self.forward(x)

    def __repr__(self):
        return f"{type(self).__name__}()"
