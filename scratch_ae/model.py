"""The dense autoencoder: a stack of Dense layers and activations, mirrored.

`sizes` lists the encoder's widths from the input to the code; the decoder
mirrors them.  [784, 256] is the standard 784-256-784 network, [784, 128, 32]
the deep 784-128-32-128-784 one.  Parameters and gradients are named
"layers.<i>.W" / "layers.<i>.b", i counting the Dense layers from the input.
"""
import numbers

import numpy as np
from sklearn.base import BaseEstimator

from .backend import check_array_backend, get_backend, is_device_array
from .checkpoint import CheckpointError, load_arrays, save_arrays
from .layers import HE_FAMILY, Dense, Sigmoid, TiedDense, activation_name, make_activation
from .layers.fused import backward_through, forward_through
from .losses import make_loss
from .penalties import KLSparsityPenalty, L1ActivityPenalty, L2WeightDecay

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


def _scale_uint8(X, xp, dtype):
    """uint8 pixels 0-255 -> [0, 1] as the bundled loader does: cast to float32, then divide by 255."""
    scaled = X.astype(np.float32)
    scaled /= 255.0
    return scaled if np.dtype(dtype) == np.float32 else scaled.astype(dtype)


class Autoencoder(BaseEstimator):
    """A dense autoencoder with hand-written forward and backward passes.

    Constructor arguments are stored as given (scikit-learn style); the network
    is built from them at once, and rebuilt by `set_params` and `fit`.

    sizes : encoder widths, input first, code last, e.g. (784, 256).
    activation : hidden activation ("relu", "leaky_relu", "sigmoid", "tanh", "identity"/"linear").
    output_activation : the decoder's last activation; "sigmoid" is required by loss="bce".
    loss : "mse" (mean over elements) or "bce" (binary cross-entropy from the logits).
    code_activation : the code layer's activation (default: `activation`).
    tied : decoder weights are the transposes of the encoder's.
    l1 : L1 activity penalty weight on the code, l1 * (1/B) * sum |h|.
    kl_rho, kl_beta : KL sparsity penalty (target mean activation rho, weight beta; sigmoid code).
    weight_decay : L2 penalty (weight_decay/2) sum ||W||^2 in the loss; with optimizer="adamw"
        it is instead AdamW's decoupled decay.
    optimizer, lr, epochs, batch_size, noise, patience : how `fit` trains (see `Trainer`).
    backend : "numpy" or "cupy".  seed : initialisation and batch-order seed.
    dtype : "float32" (default) or "float64" (for gradient checks).
    """

    def __init__(self, sizes=(784, 256), activation="relu", output_activation="relu", loss="mse",
                 code_activation=None, tied=False, l1=0.0, kl_rho=None, kl_beta=0.0, weight_decay=0.0,
                 leaky_slope=0.01, optimizer="adam", lr=1e-3, epochs=8, batch_size=100, noise=None,
                 patience=None, backend="numpy", seed=0, dtype="float32", progress=False):
        self.sizes = sizes
        self.activation = activation
        self.output_activation = output_activation
        self.loss = loss
        self.code_activation = code_activation
        self.tied = tied
        self.l1 = l1
        self.kl_rho = kl_rho
        self.kl_beta = kl_beta
        self.weight_decay = weight_decay
        self.leaky_slope = leaky_slope
        self.optimizer = optimizer
        self.lr = lr
        self.epochs = epochs
        self.batch_size = batch_size
        self.noise = noise
        self.patience = patience
        self.backend = backend
        self.seed = seed
        self.dtype = dtype
        self.progress = progress
        self._build()

    # ------------------------------------------------------------------ building
    def _validate(self):
        sizes = list(self.sizes)
        if len(sizes) < 2 or not all(isinstance(s, (int, np.integer)) and s > 0 for s in sizes):
            raise ValueError(f"sizes must list at least two positive integers (input width, ..., code width), got {self.sizes!r}")
        if self.loss not in ("mse", "bce"):
            raise ValueError(f"unknown loss {self.loss!r}; expected one of: mse, bce")
        if self.loss == "bce" and activation_name(self.output_activation) != "sigmoid":
            raise ValueError(f"loss='bce' needs output_activation='sigmoid' (BCE compares probabilities), got {self.output_activation!r}")
        code_act = activation_name(self.code_activation or self.activation)
        activation_name(self.activation)
        for name in ("l1", "kl_beta", "weight_decay"):
            if not getattr(self, name) >= 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)!r}")
        if self.kl_beta and self.kl_rho is None:
            raise ValueError("kl_beta > 0 needs a target activation kl_rho in (0, 1)")
        if self.kl_rho is not None and code_act != "sigmoid":
            raise ValueError(f"the KL sparsity penalty needs a sigmoid code (code_activation='sigmoid'), got {code_act!r}")
        if self.dtype not in ("float32", "float64"):
            raise ValueError(f"dtype must be 'float32' or 'float64', got {self.dtype!r}")
        return sizes, code_act

    def _build(self):
        sizes, code_act = self._validate()
        self.backend_ = get_backend(self.backend)
        xp, dtype = self.backend_.xp, np.dtype(self.dtype)
        rng = np.random.default_rng(self.seed)
        widths = sizes + sizes[-2::-1]
        n_dense, n_encoder = len(widths) - 1, len(sizes) - 1
        self.dense_layers_, self.layers_, self.layer_config_ = [], [], []
        for i in range(n_dense):
            act = (code_act if i == n_encoder - 1 else
                   activation_name(self.output_activation) if i == n_dense - 1 else activation_name(self.activation))
            entry = {"type": "dense", "in": widths[i], "out": widths[i + 1], "activation": act}
            if self.tied and i >= n_encoder:
                source_index = n_dense - 1 - i
                dense = TiedDense(self.dense_layers_[source_index], xp.zeros(widths[i + 1], dtype=dtype), xp)
                entry["tied_to"] = source_index
            else:
                init = "he" if act in HE_FAMILY else "glorot"
                dense = Dense.create(widths[i], widths[i + 1], init, rng, self.backend_, dtype, need_input_grad=i > 0)
            self.dense_layers_.append(dense)
            self.layers_ += [dense, make_activation(act, self.leaky_slope)]
            self.layer_config_.append(entry)
        self.n_encoder_layers_ = 2 * n_encoder  # layers_[:n] is the encoder, its output the code
        self.loss_fn_ = make_loss(self.loss)
        self.penalties_ = []
        if self.l1:
            self.penalties_.append(L1ActivityPenalty(self.l1))
        if self.kl_rho is not None and self.kl_beta:
            self.penalties_.append(KLSparsityPenalty(self.kl_rho, self.kl_beta))
        # With AdamW the decay is decoupled and lives in the optimizer, not in the loss.
        self.weight_penalty_ = L2WeightDecay(self.weight_decay) if self.weight_decay and self.optimizer != "adamw" else None

    def set_params(self, **params):
        super().set_params(**params)
        self._build()
        return self

    # ------------------------------------------------------------------ arrays
    @property
    def xp(self):
        return self.backend_.xp

    @property
    def code_size(self):
        return list(self.sizes)[-1]

    @property
    def input_size(self):
        return list(self.sizes)[0]

    def parameters(self):
        """dict "layers.<i>.W"/"layers.<i>.b" -> the live parameter arrays (tied layers have only b)."""
        return {f"layers.{i}.{key}": arr for i, layer in enumerate(self.dense_layers_) for key, arr in layer.params.items()}

    def _as_batch(self, x, what="x", width=None):
        """x as a (B, width) array of the model's dtype on its backend; a ValueError for a wrong shape,
        a TypeError for a CuPy array given to a model on the NumPy backend or a non-numeric dtype.
        uint8 images (0-255) are scaled to [0, 1] as the bundled loader does."""
        width = width or self.input_size
        check_array_backend(x, self.backend_, what)
        x = _numeric(x, what, self.xp)
        if x.dtype == np.uint8:
            x = _scale_uint8(x, self.xp, self.dtype)
        x = self.xp.asarray(x, dtype=self.dtype)
        if x.ndim != 2 or x.shape[1] != width:
            raise ValueError(f"{what} must have shape (batch, {width}), got {tuple(x.shape)}")
        return x

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
    def encode(self, x):
        """x (B, D) -> code (B, K), on the model's backend."""
        return forward_through(self.layers_[:self.n_encoder_layers_], self._as_batch(x))

    def decode(self, code):
        """code (B, K) -> reconstruction (B, D), after the output activation."""
        return forward_through(self.layers_[self.n_encoder_layers_:], self._as_batch(code, "code", self.code_size))

    def reconstruct(self, x):
        """x (B, D) -> reconstruction (B, D)."""
        return self.decode(self.encode(x))

    def _forward_to_loss(self, x):
        """x -> (code, what the loss takes, the decoder layers run): with BCE the loss takes
        the logits and fuses the final sigmoid in (losses.md#bce-with-logits)."""
        code = forward_through(self.layers_[:self.n_encoder_layers_], x)
        decoder = self.layers_[self.n_encoder_layers_:]
        if self.loss == "bce":
            decoder = decoder[:-1]
        return code, forward_through(decoder, code), decoder

    def _objective(self, x, target):
        """Forward pass for training: the scalar objective (caches filled for backward)."""
        code, out, decoder = self._forward_to_loss(x)
        objective = self.loss_fn_.forward(out, target)
        for penalty in self.penalties_:
            objective = objective + penalty.forward(code)
        if self.weight_penalty_ is not None:
            objective = objective + self.weight_penalty_.forward([l.params["W"] for l in self.dense_layers_ if "W" in l.params])
        return objective, decoder

    def objective(self, x, target=None):
        """The training objective (reconstruction loss plus penalties), forward only."""
        x = self._as_batch(x)
        target = x if target is None else self._as_batch(target, "target")
        return self._objective(x, target)[0]

    def reconstruction_loss(self, x, target=None):
        """The reconstruction loss alone (no penalties), forward only, as a 0-d backend array."""
        x = self._as_batch(x)
        target = x if target is None else self._as_batch(target, "target")
        return self.loss_fn_.forward(self._forward_to_loss(x)[1], target)

    def loss_and_grads(self, x, target=None):
        """One forward and backward pass.

        x : (B, D) input; target : (B, D) what to reconstruct (x itself unless denoising).
        Returns (loss, grads): loss a 0-d array on the backend (float(loss) reads
        it), grads a dict keyed exactly like `parameters()`.

        Derivation: derivations/dense-autoencoder.md#autoencoder-backward
        """
        x = self._as_batch(x)
        target = x if target is None else self._as_batch(target, "target")
        objective, decoder = self._objective(x, target)
        grad = backward_through(decoder, self.loss_fn_.backward())
        for penalty in self.penalties_:
            grad = grad + penalty.backward()
        backward_through(self.layers_[:self.n_encoder_layers_], grad)
        return objective, self._collect_grads()

    def _collect_grads(self):
        grads = {}
        for i, layer in enumerate(self.dense_layers_):
            grads[f"layers.{i}.b"] = layer.grads["b"]
            if "W" in layer.params:
                grads[f"layers.{i}.W"] = layer.grads["W"]
        for layer in self.dense_layers_:
            if isinstance(layer, TiedDense):
                key = f"layers.{self.dense_layers_.index(layer.source)}.W"
                grads[key] = grads[key] + layer.grads["W"]
        if self.weight_penalty_ is not None:
            for i, layer in enumerate(self.dense_layers_):
                if "W" in layer.params:
                    grads[f"layers.{i}.W"] = grads[f"layers.{i}.W"] + self.weight_penalty_.gradient(layer.params["W"])
        return grads

    # ------------------------------------------------------------------ scikit-learn shape
    def fit(self, X, y=None, X_val=None):
        """Re-initialise from `seed` and train on X (N, D); returns self. `history_` holds the curves.

        X : float images in [0, 1], or uint8 images (0-255), which are scaled to [0, 1] exactly as the
        bundled loader does.  With a sigmoid output or BCE loss, data outside [0, 1] is refused.
        """
        from .optimizers import make_optimizer
        from .training import Trainer
        self._build()
        trainer = Trainer(self, make_optimizer(self.optimizer, self.lr, self.weight_decay), epochs=self.epochs,
                          batch_size=self.batch_size, noise=self.noise, patience=self.patience, seed=self.seed,
                          progress=self.progress)
        self.history_ = trainer.fit(X, X_val)
        return self

    def _as_samples(self, X, width, what="X"):
        """X as an (n_samples, width) NumPy or CuPy array (not copied to the device); errors as `_as_batch`.

        uint8 images (0-255) are scaled to [0, 1] exactly as the bundled loader does (float32 / 255);
        object arrays that hold numbers are converted; strings, ragged rows and other
        non-numeric input get a one-line TypeError naming `what`.
        """
        check_array_backend(X, self.backend_, what)
        is_device = is_device_array(X)
        X = _numeric(X, what, self.xp if is_device else np)
        if X.dtype == np.uint8:
            X = _scale_uint8(X, self.xp if is_device else np, self.dtype)
        if X.ndim != 2 or X.shape[1] != width:
            raise ValueError(f"{what} must have shape (n_samples, {width}), got {tuple(X.shape)}")
        return X

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
        from .metrics import reconstruction_metrics
        X = self._as_samples(X, self.input_size)
        self.check_data_range(X)
        return -reconstruction_metrics(self, X)["sse_per_image"]

    # ------------------------------------------------------------------ checkpoints
    def config(self):
        """The JSON-able description stored in checkpoints."""
        params = self.get_params()
        params["sizes"] = [int(s) for s in params["sizes"]]
        return {"format": CHECKPOINT_FORMAT, "layers": self.layer_config_, "model": params}

    def state_arrays(self):
        """Host copies of every parameter, keyed like `parameters()`."""
        return {name: self.backend_.to_numpy(arr) for name, arr in self.parameters().items()}

    def load_state_arrays(self, arrays, source="arrays"):
        """Copy host arrays into the parameters, checking names and shapes."""
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
        params = dict(config["model"])
        if backend is not None:
            params["backend"] = backend
        try:
            model = cls(**params)
        except (TypeError, ValueError) as exc:
            raise CheckpointError(f"{source}: cannot rebuild the model from its config ({exc})") from None
        if model.layer_config_ != config["layers"]:
            raise CheckpointError(f"{source}: the 'layers' config does not match the model it describes")
        return model

    @classmethod
    def load(cls, path, backend="numpy"):
        """Rebuild a model from a checkpoint written by `save`, on `backend` (NumPy unless asked)."""
        arrays, config = load_arrays(path)
        model = cls.from_config(config, backend, source=f"checkpoint {str(path)!r}")
        model.load_state_arrays(arrays, source=f"checkpoint {str(path)!r}")
        return model
