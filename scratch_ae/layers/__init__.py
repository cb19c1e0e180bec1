"""Layers: small forward/backward classes (see derivations/dense-autoencoder.md)."""
from .activations import ACTIVATIONS, HE_FAMILY, Identity, LeakyReLU, ReLU, Sigmoid, Tanh, activation_name, make_activation
from .base import Layer
from .dense import Dense, TiedDense, init_weights

__all__ = ["Layer", "Dense", "TiedDense", "init_weights", "ReLU", "LeakyReLU", "Sigmoid", "Tanh", "Identity",
           "ACTIVATIONS", "HE_FAMILY", "activation_name", "make_activation"]
