"""Flatten and Reshape: between convolutional (B, C, H, W) and dense (B, D) layouts.

A reshape renames entries without changing them, so the gradient is the
upstream gradient given the input's shape back.

Derivation: derivations/convolution.md
"""
import math

from .base import Layer


class Flatten(Layer):
    """(B, C, H, W) -> (B, C*H*W), row-major (PyTorch's nn.Flatten()).  Cache: the input's shape."""

    def __init__(self):
        self.params = {}
        self.grads = {}
        self.training = True
        self.input_shape = None

    def forward(self, x):
        if x.ndim < 2:
            raise ValueError(f"Flatten expects a batch of shape (B, ...), got {tuple(x.shape)}")
        self.input_shape = x.shape
        return x.reshape(x.shape[0], -1)

    def backward(self, grad_out):
        """grad_out (B, C*H*W) -> dL/dx (B, C, H, W): the same numbers, reshaped back.

        Derivation: derivations/convolution.md#flatten-reshape
        """
        return grad_out.reshape(self.input_shape)

    def config(self):
        return {"type": "flatten"}

    def __repr__(self):
        return "Flatten()"


class Reshape(Layer):
    """(B, D) -> (B, *shape) with D = prod(shape), row-major; e.g. Reshape((C, H, W)) before a ConvTranspose2d.

    Cache: the input's shape.
    """

    def __init__(self, shape):
        self.shape = tuple(int(s) for s in shape)
        if not self.shape or min(self.shape) < 1:
            raise ValueError(f"Reshape needs a shape of positive ints, got {shape!r}")
        self.params = {}
        self.grads = {}
        self.training = True
        self.input_shape = None

    def forward(self, x):
        if x.ndim != 2 or x.shape[1] != math.prod(self.shape):
            raise ValueError(f"{self!r} expects an input of shape (B, {math.prod(self.shape)}), got {tuple(x.shape)}")
        self.input_shape = x.shape
        return x.reshape((x.shape[0],) + self.shape)

    def backward(self, grad_out):
        """grad_out (B, *shape) -> dL/dx (B, D): the same numbers, reshaped back.

        Derivation: derivations/convolution.md#flatten-reshape
        """
        return grad_out.reshape(self.input_shape)

    def config(self):
        return {"type": "reshape", "shape": list(self.shape)}

    def __repr__(self):
        return f"Reshape({self.shape})"
