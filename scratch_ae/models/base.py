"""The scikit-learn shell every model family shares: fit, transform, inverse_transform, score, save, load.

A family (dense.py, conv.py, ...) builds an encoder and a decoder, two
`Sequential` containers of hand-derived layers, and names their parameters;
everything else lives here once:

* the input checks (shape, dtype, uint8 scaling, data range, GPU arrays);
* the training objective, loss + penalties, and its backward pass
  (`loss_and_grads`), run through the plain layer loop or the fused path;
* train/eval modes and the per-step generator for stochastic layers;
* fit with one Trainer, batched transform / inverse_transform, score;
* checkpoints: one .npz of named arrays and a JSON config, without pickle.

Every model's public boundary is flat, (n_samples, n_features), so data,
corruptions, metrics, Trainer and checkpoints serve every family unchanged;
convolutional models reshape inside their encoder and decoder.
"""
import numbers

import numpy as np
from sklearn.base import BaseEstimator

from ..backend import check_array_backend, get_backend, is_device_array
from ..checkpoint import CheckpointError, load_arrays, save_arrays
from ..layers import activation_name
from ..layers import fused
from ..sequential import collect_grads

CHECKPOINT_FORMAT = "scratch-ae/1"
DATA_RANGE_MARGIN = 0.01  # how far outside [0, 1] data may stray before a sigmoid/BCE model refuses it
EXPECTED_DTYPES = "float32, float64 or uint8 images (0-255)"


def _numeric(X, what, xp):
    """X as an array of a real numeric dtype, or a one-line TypeError naming `what` and what was expected."""
    if not hasattr(X, "dtype"):
        try:
            X = np.asarray(X)
        except ValueError:  # numpy: "setting an array element with a sequence ... inhomogeneous shape"
            raise TypeError(f"{what} must be a rectangular numeric array of {EXPECTED_DTYPES}; "
                            f"got ragged rows of different lengths") from None
    if X.dtype == object:
        try:  # None would silently become NaN under a plain float cast, so look at each entry
            if not all(isinstance(v, numbers.Real) for v in X.flat):
                raise TypeError
            X = np.asarray(X, dtype=np.float64)
        except (TypeError, ValueError):
            raise TypeError(f"{what} must be a numeric array of {EXPECTED_DTYPES}; got dtype object whose "
                            f"entries are not all numbers") from None
    if X.dtype.kind not in "fiub":
        raise TypeError(f"{what} must be a numeric array of {EXPECTED_DTYPES}; got dtype {X.dtype}")
    return X


def _scale_uint8(X, dtype):
    """uint8 pixels 0-255 -> [0, 1] as the bundled loader does: cast to float32, then divide by 255."""
    scaled = X.astype(np.float32)
    scaled /= 255.0
    return scaled if np.dtype(dtype) == np.float32 else scaled.astype(dtype)


class AutoencoderBase(BaseEstimator):
    """What every family shares.  A family sets, in `_build`:

    backend_, encoder_, decoder_ (Sequentials), loss_fn_, penalties_, weight_penalty_,
    and implements `_named_layers()` ([(name, layer)] for every layer with parameters,
    which names `parameters()` and the checkpoint's arrays), `input_size`, `code_size`
    and `layer_description()` (the checkpoint's "layers" entry).
    """

    family = None  # "dense", "conv", ...: stored in checkpoints, so `models.load` knows the class

    # ------------------------------------------------------------------ building
    def set_params(self, **params):
        super().set_params(**params)
        self._build()
        return self

    @property
    def xp(self):
        return self.backend_.xp

    @property
    def stochastic_(self):
        """True when some layer draws random numbers in training mode (Dropout, a VAE's sampling)."""
        return self.encoder_.stochastic or self.decoder_.stochastic

    def parameters(self):
        """dict name -> the live parameter arrays, named as `_named_layers` says (tied layers have only b)."""
        return {f"{name}.{key}": arr for name, layer in self._named_layers() for key, arr in layer.params.items()}

    def _collect_grads(self):
        grads = collect_grads(self._named_layers())
        if self.weight_penalty_ is not None:
            for name, param in self.parameters().items():
                if name.endswith(".W"):
                    grads[name] = grads[name] + self.weight_penalty_.gradient(param)
        return grads

    def _backend_for_build(self):
        self.backend_ = get_backend(self.backend)
        return self.backend_

    # ------------------------------------------------------------------ input checks
    def _as_batch(self, x, what="x", width=None):
        """x as a (B, width) array of the model's dtype on its backend; a ValueError for a wrong shape,
        a TypeError for a CuPy array given to a model on the NumPy backend or a non-numeric dtype.
        uint8 images (0-255) are scaled to [0, 1] as the bundled loader does."""
        width = width or self.input_size
        check_array_backend(x, self.backend_, what)
        x = _numeric(x, what, self.xp)
        if x.dtype == np.uint8:
            x = _scale_uint8(x, self.dtype)
        x = self.xp.asarray(x, dtype=self.dtype)
        if x.ndim != 2 or x.shape[1] != width:
            raise ValueError(f"{what} must have shape (batch, {width}), got {tuple(x.shape)}")
        return x

    def _as_samples(self, X, width, what="X"):
        """X as an (n_samples, width) NumPy or CuPy array (not copied to the device); errors as `_as_batch`.

        uint8 images (0-255) are scaled to [0, 1] exactly as the bundled loader does (float32 / 255);
        object arrays that hold numbers are converted; strings, ragged rows and other
        non-numeric input get a one-line TypeError naming `what`.
        """
        check_array_backend(X, self.backend_, what)
        X = _numeric(X, what, self.xp if is_device_array(X) else np)
        if X.dtype == np.uint8:
            X = _scale_uint8(X, self.dtype)
        if X.ndim != 2 or X.shape[1] != width:
            raise ValueError(f"{what} must have shape (n_samples, {width}), got {tuple(X.shape)}")
        return X

    def check_data_range(self, X, what="X", chunk_rows=4096):
        """Refuse data outside [0, 1] (beyond a 0.01 margin) when the model needs targets in [0, 1].

        A sigmoid output can only produce values in (0, 1), and BCE compares probabilities, so
        data on another scale (raw 0-255 floats, standardised pixels) cannot be fitted: one
        ValueError saying which range is expected, instead of a quietly useless run.
        """
        if self.loss != "bce" and activation_name(self.output_activation) != "sigmoid":
            return
        for start in range(0, X.shape[0], chunk_rows):
            chunk = X[start:start + chunk_rows]
            low, high = float(chunk.min()), float(chunk.max())
            if low < -DATA_RANGE_MARGIN or high > 1 + DATA_RANGE_MARGIN:
                needs = "loss='bce'" if self.loss == "bce" else "output_activation='sigmoid'"
                raise ValueError(f"{what} has values in [{low:.4g}, {high:.4g}] (rows from {start}), but {needs} "
                                 f"needs data in [0, 1]: scale it (e.g. divide 0-255 pixels by 255) or use "
                                 f"another output activation and loss")

    # ------------------------------------------------------------------ forward
    def _mode(self, training):
        self.encoder_.train(training)
        self.decoder_.train(training)

    def encode(self, x):
        """x (B, D) -> code (B, K), on the model's backend, in evaluation mode."""
        self._mode(False)
        return self._encode(self._as_batch(x))

    def decode(self, code):
        """code (B, K) -> reconstruction (B, D), after the output activation, in evaluation mode."""
        self._mode(False)
        return self._decode(self._as_batch(code, "code", self.code_size))

    def _encode(self, x):
        return fused.forward(self.encoder_, x)

    def _decode(self, code):
        return fused.forward(self.decoder_, code)

    def reconstruct(self, x):
        """x (B, D) -> reconstruction (B, D)."""
        self._mode(False)
        return fused.forward(self.decoder_, fused.forward(self.encoder_, self._as_batch(x)))

    def _decoder_for_loss(self):
        """The decoder as the loss sees it: with BCE the final sigmoid is left out and the loss takes
        the logits, fusing the sigmoid in (losses.md#bce-with-logits)."""
        from ..sequential import Sequential
        if self.loss == "bce":
            return Sequential(self.decoder_.layers[:-1])
        return self.decoder_

    def _objective(self, x, target):
        """Forward pass: the scalar objective (caches filled for backward), and the decoder that ran."""
        code = fused.forward(self.encoder_, x)
        decoder = self._decoder_for_loss()
        objective = self.loss_fn_.forward(fused.forward(decoder, code), target)
        for penalty in self.penalties_:
            objective = objective + penalty.forward(code)
        if self.weight_penalty_ is not None:
            objective = objective + self.weight_penalty_.forward(
                [arr for name, arr in self.parameters().items() if name.endswith(".W")])
        return objective, decoder

    def objective(self, x, target=None, rng=None):
        """The training objective (reconstruction loss plus penalties), forward only.

        In evaluation mode unless `rng` is given (then in training mode, stochastic layers drawing from it)."""
        x = self._as_batch(x)
        target = x if target is None else self._as_batch(target, "target")
        self._prepare_step(rng)
        return self._objective(x, target)[0]

    def reconstruction_loss(self, x, target=None):
        """The reconstruction loss alone (no penalties), forward only, in evaluation mode, as a 0-d array."""
        x = self._as_batch(x)
        target = x if target is None else self._as_batch(target, "target")
        self._mode(False)
        code = fused.forward(self.encoder_, x)
        return self.loss_fn_.forward(fused.forward(self._decoder_for_loss(), code), target)

    def _prepare_step(self, rng):
        """Training mode with `rng` handed to the stochastic layers; evaluation mode without one."""
        if rng is None and self.stochastic_:
            self._mode(False)
            return
        self._mode(True)
        self.encoder_.set_rng(rng)
        self.decoder_.set_rng(rng)

    def loss_and_grads(self, x, target=None, rng=None, copy=False):
        """One forward and backward pass, in training mode.

        x : (B, D) input; target : (B, D) what to reconstruct (x itself unless denoising).
        rng : a NumPy Generator for the stochastic layers (Dropout), drawn from during the
            forward pass; the same seed replays the same masks.  Needed only by such models.
        Returns (loss, grads): loss a 0-d array on the backend (float(loss) reads it), grads
        a dict keyed exactly like `parameters()`.  The gradient arrays are the layers' own
        buffers (views, not copies: the next call overwrites them); copy=True returns copies
        the caller may keep.

        Derivation: derivations/dense-autoencoder.md#autoencoder-backward
        """
        x = self._as_batch(x)
        target = x if target is None else self._as_batch(target, "target")
        if rng is None and self.stochastic_:
            raise ValueError("loss_and_grads: this model has stochastic layers (dropout); pass rng, a "
                             "numpy.random.Generator, e.g. np.random.default_rng(0)")
        self._prepare_step(rng)
        objective, decoder = self._objective(x, target)
        grad = fused.backward(decoder, self.loss_fn_.backward())
        for penalty in self.penalties_:
            grad = grad + penalty.backward()
        fused.backward(self.encoder_, grad)
        grads = self._collect_grads()
        if copy:
            grads = {name: g.copy() for name, g in grads.items()}
        return objective, grads

    # ------------------------------------------------------------------ scikit-learn shape
    def fit(self, X, y=None, X_val=None):
        """Re-initialise from `seed` and train on X (N, D); returns self. `history_` holds the curves.

        X : float images in [0, 1], or uint8 images (0-255), which are scaled to [0, 1] exactly as the
        bundled loader does.  With a sigmoid output or BCE loss, data outside [0, 1] is refused.
        """
        from ..optimizers import make_optimizer
        from ..training import Trainer
        self._build()
        trainer = Trainer(self, make_optimizer(self.optimizer, self.lr, self.weight_decay), epochs=self.epochs,
                          batch_size=self.batch_size, noise=self.noise, patience=self.patience, seed=self.seed,
                          progress=self.progress)
        self.history_ = trainer.fit(X, X_val)
        return self

    def _batched(self, fn, X, width, batch_size=4096):
        X = self._as_samples(X, width)
        # An empty X still runs once, as an empty batch, so the result has the output's width.
        starts = range(0, max(X.shape[0], 1), batch_size)
        return np.concatenate([self.backend_.to_numpy(fn(X[i:i + batch_size])) for i in starts])

    def transform(self, X):
        """X (N, D) -> codes (N, K) as a NumPy array (uint8 images are scaled to [0, 1] first)."""
        return self._batched(self.encode, X, self.input_size)

    def inverse_transform(self, codes):
        """codes (N, K) -> reconstructions (N, D) as a NumPy array."""
        return self._batched(self.decode, codes, self.code_size)

    def score(self, X, y=None):
        """Minus the mean squared reconstruction error per image (summed over pixels): higher is better.

        uint8 images are scaled to [0, 1] first, as in `fit`."""
        from ..metrics import reconstruction_metrics
        X = self._as_samples(X, self.input_size)
        self.check_data_range(X)
        return -reconstruction_metrics(self, X)["sse_per_image"]

    # ------------------------------------------------------------------ checkpoints
    def config(self):
        """The JSON-able description stored in checkpoints."""
        return {"format": CHECKPOINT_FORMAT, "family": self.family, "layers": self.layer_description(),
                "model": self._params_for_config()}

    def _params_for_config(self):
        return self.get_params()

    def state_arrays(self):
        """Host copies of every parameter, keyed like `parameters()`."""
        return {name: self.backend_.to_numpy(arr) for name, arr in self.parameters().items()}

    def load_state_arrays(self, arrays, source="arrays"):
        """Copy host arrays into the parameters, checking names, shapes and finiteness."""
        params = self.parameters()
        missing = sorted(set(params) - set(arrays))
        if missing:
            raise CheckpointError(f"{source} lacks parameter(s) {', '.join(missing)}")
        for name, param in params.items():
            if tuple(arrays[name].shape) != tuple(param.shape):
                raise CheckpointError(f"{source}: {name} has shape {tuple(arrays[name].shape)}, the config says {tuple(param.shape)}")
            if not np.isfinite(arrays[name]).all():
                raise CheckpointError(f"{source}: {name} holds NaN or inf values; these weights come from a "
                                      f"diverged run and cannot be used")
            param[...] = self.xp.asarray(arrays[name], dtype=param.dtype)

    def save(self, path):
        """Write a single .npz checkpoint (atomically); readable with numpy.load(allow_pickle=False)."""
        save_arrays(path, self.state_arrays(), self.config())

    @classmethod
    def from_config(cls, config, backend=None, source="config"):
        if not isinstance(config, dict) or "model" not in config or "layers" not in config:
            raise CheckpointError(f"{source}: config lacks the 'model' and 'layers' entries")
        family = config.get("family", "dense")  # files from before families existed are dense
        if family != cls.family:
            raise CheckpointError(f"{source} holds a {family!r} model, not a {cls.family!r} one; load it with "
                                  f"scratch_ae.models.load")
        params = dict(config["model"])
        if backend is not None:
            params["backend"] = backend
        try:
            model = cls(**params)
        except (TypeError, ValueError) as exc:
            raise CheckpointError(f"{source}: cannot rebuild the model from its config ({exc})") from None
        if model.layer_description() != config["layers"]:
            raise CheckpointError(f"{source}: the 'layers' config does not match the model it describes")
        return model

    @classmethod
    def load(cls, path, backend="numpy"):
        """Rebuild a model from a checkpoint written by `save`, on `backend` (NumPy unless asked)."""
        arrays, config = load_arrays(path)
        model = cls.from_config(config, backend, source=f"checkpoint {str(path)!r}")
        model.load_state_arrays(arrays, source=f"checkpoint {str(path)!r}")
        return model
