"""Layers: small forward/backward classes (see derivations/dense-autoencoder.md)."""
from .activations import ACTIVATIONS, HE_FAMILY, Identity, LeakyReLU, ReLU, Sigmoid, Tanh, activation_name, make_activation
from .base import Layer
from .conv import Conv2d, ConvTranspose2d
from .dense import Dense, TiedDense, init_weights
from .dropout import Dropout
from .pool import MaxPool2d, MaxUnpool2d, Upsample
from .reshape import Flatten, Reshape

__all__ = ["Layer", "Dense", "TiedDense", "init_weights", "ReLU", "LeakyReLU", "Sigmoid", "Tanh", "Identity",
           "ACTIVATIONS", "HE_FAMILY", "activation_name", "make_activation",
           "Dropout", "Conv2d", "ConvTranspose2d", "MaxPool2d", "MaxUnpool2d", "Upsample", "Flatten", "Reshape"]
