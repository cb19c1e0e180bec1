"""`Sequential`: a container of hand-derived layers, run by the plain loop.

    for layer in layers: x = layer.forward(x)              (forward)
    for layer in reversed(layers): g = layer.backward(g)   (backward: the chain rule)

That loop is what every model runs, whatever its engine: the fast engine
(scratch_ae.fast.to_fast) hands it a container of fast layers in the places of
the reference layers, run by the same loop.

Parameters are named by position: `named_parameters("encoder.")` gives
"encoder.0.W", "encoder.0.b", "encoder.3.W", ... (the index of the layer in the
container).  `collect_grads` gathers the matching gradients of one or more
containers and adds each tied layer's gradient to its source's, once.
"""
from .layers.base import Layer


class Sequential(Layer):
    """Layers applied in order.  Shapes: whatever the first layer takes, to whatever the last returns."""

    def __init__(self, layers):
        super().__init__()
        self.layers = list(layers)

    def forward(self, x):
        for layer in self.layers:
            x = layer.forward(x)
        return x

    def backward(self, grad_out):
        """grad_out = dL/d(output) -> dL/d(input) (None when the first layer skips it), layer by layer in reverse.

        Derivation: derivations/dense-autoencoder.md#sequential-backward
        """
        for layer in reversed(self.layers):
            grad_out = layer.backward(grad_out)
            if grad_out is None:  # a first layer reading the data skipped dL/dx: nothing below needs it
                return None
        return grad_out

    # ------------------------------------------------------------------ modes and randomness
    def train(self, mode=True):
        """Training mode (True) or evaluation mode (False) for every layer; returns self."""
        self.training = mode
        for layer in self.layers:
            if isinstance(layer, Sequential):
                layer.train(mode)
            layer.training = mode
        return self

    def eval(self):
        return self.train(False)

    def set_rng(self, rng):
        """Hand `rng` (a NumPy Generator) to every stochastic layer for the next forward."""
        for layer in self.layers:
            if isinstance(layer, Sequential):
                layer.set_rng(rng)
            elif layer.stochastic:
                layer.rng = rng

    @property
    def stochastic(self):
        return any(layer.stochastic for layer in self.layers)

    # ------------------------------------------------------------------ parameters
    def named_layers(self, prefix=""):
        """[(prefix + index, layer)] for every layer, in order."""
        return [(f"{prefix}{i}", layer) for i, layer in enumerate(self.layers)]

    def named_parameters(self, prefix=""):
        """{"<prefix><i>.<key>": live array} for every layer's params."""
        return {f"{name}.{key}": arr for name, layer in self.named_layers(prefix) for key, arr in layer.params.items()}

    def config(self):
        return {"type": "sequential", "layers": [layer.config() for layer in self.layers]}

    def __len__(self):
        return len(self.layers)

    def __getitem__(self, index):
        return self.layers[index]

    def __repr__(self):
        inner = ",\n  ".join(repr(layer) for layer in self.layers)
        return f"Sequential(\n  {inner}\n)"


def collect_grads(named_layers):
    """The gradients of `named_layers` ([(name, layer)]), keyed "<name>.<key>" like their params.

    A tied layer (one with a `source` layer, such as TiedDense) has no W of its own: its
    grads["W"] is dL/d(source.W) from this use, added to the source's gradient, so a
    shared parameter's gradient is the sum over its uses (derivations/dense-autoencoder.md#tied-weights).
    The arrays are the layers' own gradient buffers where nothing had to be added:
    they are overwritten by the next backward pass.
    """
    grads, owner = {}, {}
    for name, layer in named_layers:
        for key, param in layer.params.items():
            grads[f"{name}.{key}"] = layer.grads[key]
            owner[id(param)] = f"{name}.{key}"
    for name, layer in named_layers:
        source = getattr(layer, "source", None)  # MaxUnpool2d has a source too, but shares no parameter
        if source is not None and "W" in layer.grads and "W" not in layer.params:
            # the source's W by the array itself: a fast layer wrapping the source holds the same one
            key = owner[id(source.params["W"])]
            grads[key] = grads[key] + layer.grads["W"]
    return grads
