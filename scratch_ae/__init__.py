"""scratch-ae: autoencoders from scratch in NumPy/CuPy, every gradient derived by hand."""
from .backend import BackendError, get_backend
from .checkpoint import CheckpointError
from .models import Autoencoder
from .optimizers import SGD, Adam, AdamW, make_optimizer
from .training import Trainer, TrainingInterrupted

__version__ = "0.1.0"

__all__ = ["Autoencoder", "Trainer", "TrainingInterrupted", "get_backend", "BackendError", "CheckpointError",
           "SGD", "Adam", "AdamW", "make_optimizer", "__version__"]
