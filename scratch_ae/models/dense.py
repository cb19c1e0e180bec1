"""The dense autoencoder: a stack of Dense layers and activations, mirrored.

`sizes` lists the encoder's widths from the input to the code; the decoder
mirrors them.  [784, 256] is the standard 784-256-784 network, [784, 128, 32]
the deep 784-128-32-128-784 one.  Parameters and gradients are named
"layers.<i>.W" / "layers.<i>.b", i counting the Dense layers from the input
(the checkpoint layout the README documents).
"""
import numbers

import numpy as np

from ..layers import HE_FAMILY, Dense, Dropout, TiedDense, activation_name, make_activation
from ..losses import make_loss
from ..penalties import KLSparsityPenalty, L1ActivityPenalty, L2WeightDecay
from ..sequential import Sequential
from .base import AutoencoderBase, _numeric


class Autoencoder(AutoencoderBase):
    """A dense autoencoder with hand-written forward and backward passes.

    Constructor arguments are stored as given (scikit-learn style); the network
    is built from them at once, and rebuilt by `set_params` and `fit`.  So a
    constructed model is an untrained network you can use before fit
    (loss_and_grads, transform, parameters).  With sizes[0] None (or "auto") the
    input width is taken from X at fit instead: such a model has no network, and
    raises NotFittedError, until fit; that is the form scikit-learn's estimator
    checks run on (tests/test_estimator_checks.py).  `sizes` itself is never
    changed: the widths in use are `sizes_` (and `n_features_in_` after fit), and
    checkpoints store them.

    sizes : encoder widths, input first, code last, e.g. (784, 256); (None, 256) takes the input
        width from the data at fit.
    activation : hidden activation ("relu", "leaky_relu", "sigmoid", "tanh", "identity"/"linear").
    output_activation : the decoder's last activation; "sigmoid" is required by loss="bce".
    loss : "mse" (mean over elements) or "bce" (binary cross-entropy from the logits).
    code_activation : the code layer's activation (default: `activation`).
    tied : decoder weights are the transposes of the encoder's.
    l1 : L1 activity penalty weight on the code, l1 * (1/B) * sum |h|.
    kl_rho, kl_beta : KL sparsity penalty: target mean activation rho in (0, 1) and its weight
        beta (used only when kl_rho is given; needs a sigmoid code).
    weight_decay : L2 penalty (weight_decay/2) sum ||W||^2 in the loss; with optimizer="adamw"
        it is instead AdamW's decoupled decay.
    dropout : the DROP probability of inverted dropout after every hidden activation and on the
        code as the decoder reads it (the code itself, `transform`'s output, is never dropped);
        0 (default) adds no layer.
    optimizer, lr, epochs, batch_size, noise, patience : how `fit` trains (see `Trainer`).
    early_stopping : fit(X) holds out validation_fraction of X's rows (seeded by `seed`) and stops
        when their loss has not improved for `patience` epochs (5 when patience is None), keeping
        the best epoch's weights (MLPRegressor's early_stopping; see AutoencoderBase).
    validation_fraction : the share of X held out by early_stopping, in (0, 1).
    backend : "numpy" or "cupy".  seed : initialisation and batch-order seed.
    dtype : "float32" (default) or "float64" (for gradient checks).
    engine : "auto" (default), "reference" or "fast": which code runs the network and the optimizer.
        "reference" runs the reference layers of scratch_ae/layers/, the derivations' algorithms;
        "fast" runs `scratch_ae.fast.to_fast` of the same network (compiled Numba loops,
        channels-last convolutions, the fused Adam update), equal to the reference to rounding
        (tests/test_fast_*.py); "auto" is "fast" on the CPU where Numba is installed, else
        "reference".  On the GPU the layers are the reference (CuPy's kernels) and "fast" picks
        the fused CuPy Adam kernel.  `engine_` holds the resolved choice; checkpoints record it.
    """

    family = "dense"

    def __init__(self, sizes=(784, 256), activation="relu", output_activation="relu", loss="mse",
                 code_activation=None, tied=False, l1=0.0, kl_rho=None, kl_beta=1.0, weight_decay=0.0,
                 leaky_slope=0.01, dropout=0.0, optimizer="adam", lr=1e-3, epochs=8, batch_size=100, noise=None,
                 patience=None, backend="numpy", seed=0, dtype="float32", progress=False, early_stopping=False,
                 validation_fraction=0.1, engine="auto"):
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
        self.dropout = dropout
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
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.engine = engine
        self._build()

    # ------------------------------------------------------------------ building
    def _width_from_data(self):
        """True when sizes[0] is None or "auto": the input width comes from X at fit."""
        sizes = self.sizes
        return (isinstance(sizes, (list, tuple)) and len(sizes) > 0
                and (sizes[0] is None or (isinstance(sizes[0], str) and sizes[0] == "auto")))

    def _validate(self, width=None):
        sizes = list(self.sizes)
        if self._width_from_data():
            sizes[0] = width
        if len(sizes) < 2 or not all(isinstance(s, (int, np.integer)) and s > 0 for s in sizes):
            raise ValueError(f"sizes must list at least two positive integers (input width, ..., code width; the "
                             f"input width may be None, taken from X at fit), got {self.sizes!r}")
        sizes = [int(s) for s in sizes]
        if self.loss not in ("mse", "bce"):
            raise ValueError(f"unknown loss {self.loss!r}; expected one of: mse, bce")
        if self.loss == "bce" and activation_name(self.output_activation) != "sigmoid":
            raise ValueError(f"loss='bce' needs output_activation='sigmoid' (BCE compares probabilities), got {self.output_activation!r}")
        code_act = activation_name(self.code_activation or self.activation)
        activation_name(self.activation)
        for name in ("l1", "kl_beta", "weight_decay"):
            if not getattr(self, name) >= 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)!r}")
        if self.kl_rho is not None and code_act != "sigmoid":
            raise ValueError(f"the KL sparsity penalty needs a sigmoid code (code_activation='sigmoid'), got {code_act!r}")
        if not 0 <= self.dropout < 1:
            raise ValueError(f"dropout (the drop probability) must be in [0, 1), got {self.dropout!r}")
        if self.dtype not in ("float32", "float64"):
            raise ValueError(f"dtype must be 'float32' or 'float64', got {self.dtype!r}")
        if not isinstance(self.early_stopping, (bool, np.bool_)):
            raise ValueError(f"early_stopping must be True or False, got {self.early_stopping!r}")
        fraction = self.validation_fraction
        if isinstance(fraction, bool) or not isinstance(fraction, numbers.Real) or not 0 < fraction < 1:
            raise ValueError(f"validation_fraction must be a fraction in (0, 1), got {fraction!r}")
        return sizes, code_act

    def _build_for_fit(self, X):
        """With sizes[0] None, build for X's width (refusing X that is not 2-D or has no features); else as always."""
        if not self._width_from_data():
            self._build()
            return X
        if not hasattr(X, "shape"):
            X = _numeric(X, "X", np)
        shape = tuple(X.shape)
        if len(shape) != 2:
            raise ValueError(f"X must have shape (n_samples, n_features), got {shape}")
        if shape[1] == 0:
            raise ValueError(f"X has 0 feature(s) (shape={shape}) while a minimum of 1 is required.")
        self._build(width=shape[1])
        return X

    def _build(self, width=None):
        """Build the network; with sizes[0] None, at `width` (else the width built last; else not at all)."""
        if self._width_from_data():
            width = width or self.__dict__.get("sizes_", [None])[0]
            if width is None:
                return
        sizes, code_act = self._validate(width)
        backend = self._backend_for_build()
        xp, dtype = backend.xp, np.dtype(self.dtype)
        rng = np.random.default_rng(self.seed)
        widths = sizes + sizes[-2::-1]
        n_dense, n_encoder = len(widths) - 1, len(sizes) - 1
        self.dense_layers_, self.layer_config_ = [], []
        encoder, decoder = [], []
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
                dense = Dense.create(widths[i], widths[i + 1], init, rng, backend, dtype, need_input_grad=i > 0)
            self.dense_layers_.append(dense)
            side = encoder if i < n_encoder else decoder
            if self.dropout and i >= n_encoder:  # the decoder's input: the code, or a hidden layer's output
                side.append(Dropout(self.dropout, xp))
                self.layer_config_.append({"type": "dropout", "p": self.dropout})
            side += [dense, make_activation(act, self.leaky_slope)]
            self.layer_config_.append(entry)
            if self.dropout and i < n_encoder - 1:  # after each encoder hidden layer, not after the code
                side.append(Dropout(self.dropout, xp))
                self.layer_config_.append({"type": "dropout", "p": self.dropout})
        self.sizes_ = sizes  # the widths in use: sizes, with the input width filled in
        self.encoder_, self.decoder_ = Sequential(encoder), Sequential(decoder)
        self.layers_ = encoder + decoder
        self.n_encoder_layers_ = len(encoder)  # layers_[:n] is the encoder, its output the code
        self.loss_fn_ = make_loss(self.loss)
        self.penalties_ = []
        if self.l1:
            self.penalties_.append(L1ActivityPenalty(self.l1))
        if self.kl_rho is not None and self.kl_beta:
            self.penalties_.append(KLSparsityPenalty(self.kl_rho, self.kl_beta))
        # With AdamW the decay is decoupled and lives in the optimizer, not in the loss.
        self.weight_penalty_ = L2WeightDecay(self.weight_decay) if self.weight_decay and self.optimizer != "adamw" else None

    def _named_layers(self):
        return [(f"layers.{i}", layer) for i, layer in enumerate(self.dense_layers_)]

    def layer_description(self):
        return self.layer_config_

    def _params_for_config(self):
        params = self.get_params()
        params["sizes"] = [int(s) for s in self.sizes_]  # the widths in use (a data-sized model's too)
        return params

    @property
    def code_size(self):
        return self.sizes_[-1]

    @property
    def input_size(self):
        return self.sizes_[0]


__all__ = ["Autoencoder"]
