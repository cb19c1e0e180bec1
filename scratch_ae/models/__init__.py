"""Model families, one file each, on one scikit-learn shell (base.py)."""
from ..checkpoint import CheckpointError, load_arrays
from .base import AutoencoderBase
from .conv import ConvAutoencoder
from .dense import Autoencoder
from .vae import VariationalAutoencoder

FAMILIES = {"dense": Autoencoder, "conv": ConvAutoencoder, "vae": VariationalAutoencoder}


def register(cls):
    FAMILIES[cls.family] = cls
    return cls


def load(path, backend="numpy", engine=None):
    """Rebuild any scratch-ae model from a checkpoint, whatever its family, on `backend`.

    engine : None (default) runs the engine the checkpoint records ("auto" for files written before
    engines existed); "auto", "reference" or "fast" overrides it.  The weights are the same either way."""
    arrays, config = load_arrays(path)
    family = config.get("family", "dense") if isinstance(config, dict) else None
    if family not in FAMILIES:
        raise CheckpointError(f"checkpoint {str(path)!r}: unknown model family {family!r}; "
                              f"expected one of: {', '.join(FAMILIES)}")
    cls = FAMILIES[family]
    model = cls.from_config(config, backend, source=f"checkpoint {str(path)!r}", engine=engine)
    model.load_state_arrays(arrays, source=f"checkpoint {str(path)!r}")
    model.n_features_in_ = model.input_size
    return model


__all__ = ["AutoencoderBase", "Autoencoder", "ConvAutoencoder", "VariationalAutoencoder", "FAMILIES", "load"]
