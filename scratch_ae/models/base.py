"""The scikit-learn shell every model family shares: fit, transform, inverse_transform, score, save, load.

A family (dense.py, conv.py, ...) builds an encoder and a decoder, two
`Sequential` containers of hand-derived layers, and names their parameters;
everything else lives here once:

* the input checks (shape, dtype, uint8 scaling, data range, GPU arrays);
* the training objective, loss + penalties, and its backward pass
  (`loss_and_grads`), a template whose family hooks (`_training_pair`, `_code_terms`,
  `_encoder_backward`) let the VAE supply its objective and gradient terms;
* the engine: every pass runs a network by `Sequential.forward` / `backward`, the plain
  loop, on the reference layers themselves (engine "reference", and always on the GPU) or on
  `fast.to_fast(network)`, the same network with the fast engine's layers in their places
  (engine "fast"; "auto" is "fast" on the CPU where Numba is installed);
* train/eval modes and the per-step generator for stochastic layers;
* fit with one Trainer (and, with early_stopping=True, a validation split carved
  from fit's own X), batched transform / inverse_transform, score;
* checkpoints: one .npz of named arrays and a JSON config, without pickle;
  pickling (joblib workers, copy.deepcopy) stores the same: parameters, weights
  and plain-data attributes, and rebuilds the layers from the parameters.

scikit-learn conformance (tests/test_estimator_checks.py runs
sklearn.utils.estimator_checks on the dense model and lists the checks it
skips, with reasons): `fit(X, y=None)` ignores y and sets `n_features_in_`;
`score` is higher-is-better (minus the squared reconstruction error per
image); transform and score refuse NaN/inf and a wrong width ("X has 3
features, but Autoencoder is expecting 4 features as input").  Fitted means
`fit` ran (or the weights came from a checkpoint): `check_is_fitted` says so
through `__sklearn_is_fitted__`.  A model whose input width is known at
construction has its (untrained) network at once, usable before fit, so
transform before fit works there; a model that takes its width from the data
(the dense `sizes=(None, ...)`) has no network until fit, and every use of it
before then raises sklearn's NotFittedError.

Every model's public boundary is flat, (n_samples, n_features), so data,
corruptions, metrics, Trainer and checkpoints serve every family unchanged;
convolutional models reshape inside their encoder and decoder.
"""
import numbers

import numpy as np
from sklearn.base import BaseEstimator, ClassNamePrefixFeaturesOutMixin, TransformerMixin
from sklearn.exceptions import NotFittedError

from ..backend import check_array_backend, get_backend, is_device_array
from ..checkpoint import CheckpointError, load_arrays, save_arrays
from .. import fast
from ..layers import activation_name
from ..sequential import Sequential, collect_grads

CHECKPOINT_FORMAT = "scratch-ae/1"
DATA_RANGE_MARGIN = 0.01  # how far outside [0, 1] data may stray before a sigmoid/BCE model refuses it
EXPECTED_DTYPES = "float32, float64 or uint8 images (0-255)"
EARLY_STOPPING_PATIENCE = 5  # epochs without improvement, when early_stopping=True and patience is None
# Names that exist only once the network does (besides attributes ending in "_").
_NETWORK_NAMES = ("xp", "input_size", "code_size", "stochastic_", "loss_decoder_")


class ComplexDataError(TypeError, ValueError):
    """Complex input: a TypeError like every other wrong dtype here, and a ValueError, which is what
    scikit-learn raises (and its estimator checks expect) for complex data."""


def _numeric(X, what, xp):
    """X as an array of a real numeric dtype, or a one-line TypeError naming `what` and what was expected."""
    if type(X).__module__.startswith("scipy.sparse"):
        raise TypeError(f"{what} is a scipy sparse matrix: sparse input is not supported; pass a dense array "
                        f"(X.toarray())")
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
    if X.dtype.kind == "c":
        raise ComplexDataError(f"{what} must be a real numeric array of {EXPECTED_DTYPES}; got dtype {X.dtype}: "
                               f"Complex data not supported")
    if X.dtype.kind not in "fiub":
        raise TypeError(f"{what} must be a numeric array of {EXPECTED_DTYPES}; got dtype {X.dtype}")
    return X


def _check_finite(X, what, chunk_rows=4096):
    """ValueError naming the first row with NaN or inf (checked in chunks, on X's own device)."""
    from ..backend import array_module
    xp = array_module(X)
    for start in range(0, X.shape[0], chunk_rows):
        bad = ~xp.isfinite(X[start:start + chunk_rows]).all(axis=1)
        if bool(bad.any()):
            raise ValueError(f"{what} contains NaN or inf (first at row {start + int(bad.argmax())}); "
                             "clean or drop those rows")


def _plain(value):
    """True for JSON-like data (numbers, strings, None, NumPy arrays, lists and str-keyed dicts of them)."""
    if value is None or isinstance(value, (bool, int, float, str, np.generic)):
        return True
    if isinstance(value, np.ndarray):
        return value.dtype != object
    if isinstance(value, (list, tuple)):
        return all(_plain(v) for v in value)
    if isinstance(value, dict):
        return all(isinstance(k, str) and _plain(v) for k, v in value.items())
    return False


def _scale_uint8(X, dtype):
    """uint8 pixels 0-255 -> [0, 1] as the bundled loader does: cast to float32, then divide by 255."""
    scaled = X.astype(np.float32)
    scaled /= 255.0
    return scaled if np.dtype(dtype) == np.float32 else scaled.astype(dtype)


class AutoencoderBase(ClassNamePrefixFeaturesOutMixin, TransformerMixin, BaseEstimator):
    """What every family shares.  A family sets, in `_build`:

    backend_, encoder_, decoder_ (Sequentials), loss_fn_, penalties_, weight_penalty_,
    and implements `_named_layers()` ([(name, layer)] for every layer with parameters,
    which names `parameters()` and the checkpoint's arrays), `input_size`, `code_size`
    and `layer_description()` (the checkpoint's "layers" entry).  A family whose input
    width comes from the data overrides `_build_for_fit(X)` and leaves the network
    unbuilt (no encoder_) until then.

    Early stopping the scikit-learn way (MLPRegressor's): with `early_stopping=True`,
    `fit(X)` holds out `validation_fraction` of X's rows (seeded by `seed`, the split
    `data.train_val_split` makes, which `scratch-ae train --val-fraction` uses too), trains on
    the rest and stops when the validation loss has not improved for `patience` epochs
    (EARLY_STOPPING_PATIENCE = 5 when patience is None), restoring the best epoch's
    weights.  Inside cross-validation the held-out fold is therefore never used to stop.
    An explicit `fit(X, X_val=...)` uses X_val instead.  Families without these
    constructor arguments train as before.
    """

    family = None  # "dense", "conv", ...: stored in checkpoints, so `models.load` knows the class
    engine = "auto"  # for a model pickled before `engine` existed (a checkpoint's config falls back to __init__'s)

    # ------------------------------------------------------------------ building
    def set_params(self, **params):
        """Set parameters and rebuild the network (fresh weights from `seed`); a value the build
        refuses is raised and the previous parameters (and network) are kept.  After a rebuild the
        model is no longer fitted (`n_features_in_` and `history_` go): its weights are untrained."""
        before = self.get_params(deep=False)
        super().set_params(**params)
        try:
            self._build()
        except Exception:
            super().set_params(**{name: before[name] for name in params if name in before})
            raise
        for name in ("n_features_in_", "history_"):
            self.__dict__.pop(name, None)
        return self

    def _is_built(self):
        return "encoder_" in self.__dict__

    def __getattr__(self, name):
        """Only called for missing attributes: before a data-sized model is fitted, its network
        attributes raise NotFittedError (an AttributeError, so hasattr() stays False)."""
        if not name.startswith("_") and (name.endswith("_") or name in _NETWORK_NAMES) and not self._is_built():
            raise NotFittedError(f"This {type(self).__name__} has no network yet ({name} needs one): it takes its "
                                 f"input width from the data, so call fit(X) first, or give the width in the "
                                 f"constructor to use the untrained network")
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def __sklearn_is_fitted__(self):
        return "n_features_in_" in self.__dict__

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        dtype = getattr(self, "dtype", "float32")
        tags.transformer_tags.preserves_dtype = [dtype] if dtype in ("float32", "float64") else []
        return tags

    @property
    def _n_features_out(self):
        """get_feature_names_out's width: the code (names autoencoder0, autoencoder1, ...)."""
        return self.code_size

    def __getstate__(self):
        """Pickle parameters, weights (host copies) and plain-data attributes; not the layers,
        which `__setstate__` rebuilds from the parameters."""
        state = super().__getstate__()
        params = set(self.get_params(deep=False))
        kept = {k: v for k, v in state.items() if k in params or k == "_sklearn_version" or _plain(v)}
        if self._is_built():
            kept["_pickled_weights"] = self.state_arrays()
        return kept

    def __setstate__(self, state):
        state = dict(state)
        weights = state.pop("_pickled_weights", None)
        super().__setstate__(state)
        if weights is not None:
            self._build()
            self.load_state_arrays(weights, source="pickled model")

    _stochastic_what = "dropout"  # what draws random numbers in training, for loss_and_grads' message

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
        """The backend for a (re)build, and the engine on it: `engine_` is "reference" or "fast"
        (scratch_ae.fast.resolve_engine); the fast networks of an earlier build are dropped."""
        self.backend_ = get_backend(self.backend)
        self.engine_ = fast.resolve_engine(self.engine, self.backend_.xp)
        self._running, self._loss_decoder = {}, None
        return self.backend_

    def _run(self, network):
        """The network that runs `network` (a Sequential of reference layers) under the model's engine.

        Engine "reference" (and every CuPy model: there the reference layers are the GPU path):
        `network` itself.  Engine "fast": `fast.to_fast(network)`, made once per build, whose fast
        layers share the reference layers' parameter and gradient arrays, so `parameters()`,
        checkpoints and the optimizer see the same arrays whichever engine ran.  Either way the
        caller runs it with the plain loop, `.forward(x)` and `.backward(grad)`."""
        if self.engine_ == "reference" or self.xp is not np:
            return network
        if id(network) not in self._running:  # the reference kept alive beside it, so its id stays unique
            self._running[id(network)] = (network, fast.to_fast(network))
        return self._running[id(network)][1]

    @property
    def loss_decoder_(self):
        """The decoder as the loss sees it: with BCE the final sigmoid is left out and the loss takes
        the logits, fusing the sigmoid in (losses.md#bce-with-logits).  A family whose decoder ends
        otherwise overrides `_loss_decoder_layers`.  Made once per build."""
        if self._loss_decoder is None:
            layers = self._loss_decoder_layers()
            self._loss_decoder = self.decoder_ if layers is self.decoder_.layers else Sequential(layers)
        return self._loss_decoder

    def _loss_decoder_layers(self):
        return self.decoder_.layers[:-1] if self.loss == "bce" else self.decoder_.layers

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
        if X.ndim != 2:
            hint = ": Reshape your data, e.g. X.reshape(1, -1) for one sample" if X.ndim == 1 else ""
            raise ValueError(f"{what} must have shape (n_samples, {width}), got {tuple(X.shape)}{hint}")
        if X.shape[1] != width:
            raise ValueError(f"{what} has {X.shape[1]} features, but {type(self).__name__} is expecting {width} "
                             f"features as input ({what} must have shape (n_samples, {width}), got {tuple(X.shape)})")
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
        return self._run(self.encoder_).forward(x)

    def _decode(self, code):
        return self._run(self.decoder_).forward(code)

    def reconstruct(self, x):
        """x (B, D) -> reconstruction (B, D)."""
        self._mode(False)
        return self._run(self.decoder_).forward(self._run(self.encoder_).forward(self._as_batch(x)))

    # ------------------------------------------------------------------ the objective: a template
    # loss_and_grads and objective are written once, here; a family changes what they compute
    # through three hooks: `_training_pair` (the batch a step trains on), `_code_terms` (the
    # objective's terms on the code) and `_encoder_backward` (dL/dcode back through the encoder).
    def _training_pair(self, x, target, rng):
        """(x, target) on the backend for one training step (or a forward-only objective with rng)."""
        x = self._as_batch(x)
        return x, (x if target is None else self._as_batch(target, "target"))

    def _code_terms(self, objective, code):
        """`objective` plus its terms on the code, forward (penalties_: L1 activity, KL sparsity)."""
        for penalty in self.penalties_:
            objective = objective + penalty.forward(code)
        return objective

    def _encoder_backward(self, grad_code):
        """dL/dcode (from the decoder) plus the code terms' gradients, back through the encoder."""
        for penalty in self.penalties_:
            grad_code = grad_code + penalty.backward()
        self._run(self.encoder_).backward(grad_code)

    def _objective(self, x, target):
        """Forward pass: the scalar objective, loss + code terms + weight penalty (caches filled for backward)."""
        code = self._run(self.encoder_).forward(x)
        objective = self.loss_fn_.forward(self._run(self.loss_decoder_).forward(code), target)
        objective = self._code_terms(objective, code)
        if self.weight_penalty_ is not None:
            objective = objective + self.weight_penalty_.forward(
                [arr for name, arr in self.parameters().items() if name.endswith(".W")])
        return self.xp.asarray(objective)

    def objective(self, x, target=None, rng=None):
        """The training objective (reconstruction loss plus penalties), forward only.

        In evaluation mode unless `rng` is given (then in training mode, stochastic layers drawing
        from it exactly as `loss_and_grads` with the same generator)."""
        x, target = self._training_pair(x, target, rng)
        self._prepare_step(rng)
        return self._objective(x, target)

    def reconstruction_loss(self, x, target=None):
        """The reconstruction loss alone (no penalties), forward only, in evaluation mode, as a 0-d array."""
        x = self._as_batch(x)
        target = x if target is None else self._as_batch(target, "target")
        self._mode(False)
        code = self._run(self.encoder_).forward(x)
        return self.loss_fn_.forward(self._run(self.loss_decoder_).forward(code), target)

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
        if rng is None and self.stochastic_:
            raise ValueError(f"loss_and_grads: this model has stochastic layers ({self._stochastic_what}); pass "
                             f"rng, a numpy.random.Generator, e.g. np.random.default_rng(0)")
        x, target = self._training_pair(x, target, rng)
        self._prepare_step(rng)
        objective = self._objective(x, target)
        self._encoder_backward(self._run(self.loss_decoder_).backward(self.loss_fn_.backward()))
        grads = self._collect_grads()
        if copy:
            grads = {name: g.copy() for name, g in grads.items()}
        return objective, grads

    # ------------------------------------------------------------------ scikit-learn shape
    def fit(self, X, y=None, X_val=None, callbacks=()):
        """Re-initialise from `seed` and train on X (N, D); returns self. `history_` holds the curves.

        X : float images in [0, 1], or uint8 images (0-255), which are scaled to [0, 1] exactly as the
        bundled loader does.  With a sigmoid output or BCE loss, data outside [0, 1] is refused.
        y : ignored (scikit-learn's signature; an autoencoder reconstructs X).
        X_val : validation images for the curves and for early stopping (`patience`); with
        `early_stopping=True` and no X_val, the validation rows are carved from X (class docstring).
        callbacks : further f(trainer, epoch) functions, called after each epoch (the Trainer's).
        Sets `n_features_in_` (and `history_`).  The optimizer runs on the model's `engine`.
        """
        from ..optimizers import make_optimizer
        from ..training import Trainer
        X = self._build_for_fit(X)
        patience = self.patience
        if getattr(self, "early_stopping", False):
            patience = EARLY_STOPPING_PATIENCE if patience is None else patience
            if X_val is None:
                X, X_val = self._early_stopping_split(X)
        optimizer = make_optimizer(self.optimizer, self.lr, self.weight_decay, engine=self.engine)
        trainer = Trainer(self, optimizer, epochs=self.epochs, batch_size=self.batch_size,
                          noise=getattr(self, "noise", None), patience=patience, seed=self.seed,
                          progress=self.progress, callbacks=[*self._fit_callbacks(), *callbacks])
        self.history_ = trainer.fit(X, X_val)
        self.n_features_in_ = self.input_size
        self._after_fit(X, X_val)
        return self

    def _fit_callbacks(self):
        """The family's own per-epoch Trainer callbacks, before the caller's (the VAE's KL warm-up)."""
        return []

    def _after_fit(self, X, X_val):
        """What a family records in history_ once training ended (the VAE's active units)."""

    def _build_for_fit(self, X):
        """(Re)build the network from the parameters for fitting X; returns X (possibly converted)."""
        self._build()
        return X

    def _early_stopping_split(self, X):
        """(train rows, validation rows) of X: round(validation_fraction * N) rows, chosen by `seed`."""
        from ..data import train_val_split
        fraction = getattr(self, "validation_fraction", 0.1)
        if isinstance(fraction, bool) or not isinstance(fraction, numbers.Real) or not 0 < fraction < 1:
            raise ValueError(f"validation_fraction must be a fraction in (0, 1) when early_stopping=True, got {fraction!r}")
        X = self._as_samples(X, self.input_size)
        n = X.shape[0]
        X_train, _, X_val, _ = train_val_split(X, np.zeros(n), fraction, self.seed)
        if X_val.shape[0] == 0 or X_train.shape[0] == 0:
            raise ValueError(f"early_stopping: validation_fraction={fraction:g} of {n} samples leaves "
                             f"{X_train.shape[0]} for training and {X_val.shape[0]} for validation; both need at "
                             f"least one (give more samples, change validation_fraction, or early_stopping=False)")
        return X_train, X_val

    def _batched(self, fn, X, width, batch_size=4096, what="X"):
        X = self._as_samples(X, width, what)
        _check_finite(X, what)
        # An empty X still runs once, as an empty batch, so the result has the output's width.
        starts = range(0, max(X.shape[0], 1), batch_size)
        return np.concatenate([self.backend_.to_numpy(fn(X[i:i + batch_size])) for i in starts])

    def transform(self, X):
        """X (N, D) -> codes (N, K) as a NumPy array (uint8 images are scaled to [0, 1] first).

        Works before fit when the network exists (an explicit input width: the untrained
        network's codes); a model that takes its width from the data raises NotFittedError."""
        return self._batched(self.encode, X, self.input_size)

    def inverse_transform(self, codes):
        """codes (N, K) -> reconstructions (N, D) as a NumPy array."""
        return self._batched(self.decode, codes, self.code_size, what="codes")

    def score(self, X, y=None):
        """Minus the mean squared reconstruction error per image (summed over pixels): higher is better,
        as scikit-learn's model selection expects (GridSearchCV, cross_validate).  y is ignored.

        uint8 images are scaled to [0, 1] first, as in `fit`."""
        from ..metrics import reconstruction_metrics
        X = self._as_samples(X, self.input_size)
        _check_finite(X, "X")
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
    def from_config(cls, config, backend=None, source="config", engine=None):
        if not isinstance(config, dict) or "model" not in config or "layers" not in config:
            raise CheckpointError(f"{source}: config lacks the 'model' and 'layers' entries")
        family = config.get("family", "dense")  # files from before families existed are dense
        if family != cls.family:
            raise CheckpointError(f"{source} holds a {family!r} model, not a {cls.family!r} one; load it with "
                                  f"scratch_ae.models.load")
        params = dict(config["model"])
        if backend is not None:
            params["backend"] = backend
        if engine is not None:
            params["engine"] = engine
        try:
            model = cls(**params)
        except (TypeError, ValueError) as exc:
            raise CheckpointError(f"{source}: cannot rebuild the model from its config ({exc})") from None
        if model.layer_description() != config["layers"]:
            raise CheckpointError(f"{source}: the 'layers' config does not match the model it describes")
        return model

    @classmethod
    def load(cls, path, backend="numpy", engine=None):
        """Rebuild a model from a checkpoint written by `save`, on `backend` (NumPy unless asked) and
        `engine` (None: the one the checkpoint records, "auto" for files from before engines)."""
        arrays, config = load_arrays(path)
        model = cls.from_config(config, backend, source=f"checkpoint {str(path)!r}", engine=engine)
        model.load_state_arrays(arrays, source=f"checkpoint {str(path)!r}")
        model.n_features_in_ = model.input_size  # trained weights: fitted, as far as scikit-learn asks
        return model
