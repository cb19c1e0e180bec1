"""`scratch_ae.model` is where `Autoencoder` used to live; it now lives in `scratch_ae.models.dense`.

Kept so that `from scratch_ae.model import Autoencoder` keeps working.
"""
from .models.base import CHECKPOINT_FORMAT
from .models.dense import Autoencoder

__all__ = ["Autoencoder", "CHECKPOINT_FORMAT"]
