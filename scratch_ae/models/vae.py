"""The variational autoencoder (Kingma and Welling 2014), on the shared scikit-learn shell.

Encoder: a dense stack (`encoder="dense"`, widths `sizes` from the input, e.g.
784-200-200) or stride-2 convolutions (`encoder="conv"`, `channels` per stage
on images of `input_shape`), ending in a Dense layer of width 2K read as
[mu | logvar], then the sampling layer `GaussianReparameterize` (z = mu +
exp(logvar / 2) eps in training, z = mu in evaluation).  `encoder_` holds all
of it, so `transform` (evaluation mode) returns the posterior means mu.

Decoder: the mirror image, ending in logits, then the output activation:
a Sigmoid for the Bernoulli likelihood (`inverse_transform` and `reconstruct`
return pixel probabilities) or the identity for the Gaussian one (they return
the mean).  The loss reads the logits (the decoder without its last layer).

Loss per image: -log p(x | z) summed over the pixels + beta * KL(q(z|x) || N(0, I))
summed over the latent units, the mean over the batch (derivations/vae.md#vae-model).

Parameters are named by position in their Sequential: "encoder.<i>.W",
"decoder.<j>.b"; `layer_description()` is {"encoder": [...], "decoder": [...]},
one JSON entry per layer with every size, enough to rebuild the network.

Derivation: derivations/vae.md
"""
import math

import numpy as np

from ..backend import array_module
from ..fast.bernoulli import SharedExpBernoulliNLL
from ..layers import (HE_FAMILY, Conv2d, ConvTranspose2d, Dense, Flatten, Reshape, activation_name,
                      make_activation)
from ..layers.im2col import conv_output_size, conv_transpose_output_size
from ..layers.reparameterize import GaussianReparameterize
from ..penalties import L2WeightDecay
from ..sequential import Sequential
from . import vae_terms
from .base import DATA_RANGE_MARGIN, AutoencoderBase

ENCODERS = ("dense", "conv")
BINARIZATIONS = ("dynamic", "none")
CONV_KERNEL, CONV_STRIDE, CONV_PADDING = 4, 2, 1  # each stage halves H and W (floor), the transpose doubles back
VALIDATION_SEED = 0  # the fixed generator of `reconstruction_loss` (validation) and `score`


def binarize(X, rng):
    """Dynamic binarisation: each pixel set to 1 with probability equal to its intensity, as float32.

    X : intensities in [0, 1], (N, ...) NumPy or CuPy; rng : a NumPy Generator.
    The uniforms u ~ U[0, 1) (one per entry, float64) are drawn on the host and
    compared on X's array module: out = [u < x], so P(out = 1) = x exactly and
    binary input comes back unchanged.  Drawing anew for every minibatch (the
    `binarize="dynamic"` training of `VariationalAutoencoder`) is the usual
    protocol for MNIST log-likelihoods in nats.

    Derivation: derivations/vae.md#dynamic-binarization
    """
    xp = array_module(X)
    u = xp.asarray(rng.random(tuple(X.shape)))
    return (u < X).astype(np.float32)


def _rng(rng):
    """A NumPy Generator: `rng` itself, a seed's generator, or default_rng(0) for None (deterministic)."""
    return np.random.default_rng(0 if rng is None else rng)


def _int_tuple(value, name, length=None):
    try:
        out = tuple(value)
    except TypeError:
        raise ValueError(f"{name} must be a sequence of positive integers, got {value!r}") from None
    if not out or not all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) and v > 0 for v in out) \
            or (length is not None and len(out) != length):
        what = f"{length} positive integers" if length else "positive integers"
        raise ValueError(f"{name} must list {what}, got {value!r}")
    return tuple(int(v) for v in out)


class VariationalAutoencoder(AutoencoderBase):
    """A variational autoencoder with hand-written forward and backward passes.

    Constructor arguments are stored as given (scikit-learn style); the network
    is built from them at once, and rebuilt by `set_params` and `fit`.

    encoder : "dense" or "conv" (the decoder mirrors it).
    sizes : dense encoder widths from the input, before the latent layer, e.g. (784, 200, 200)
        (the IWAE paper's one-stochastic-layer MNIST network with latent=50); the decoder is
        latent-200-200-784.  Ignored by the conv encoder.
    latent : K, the number of latent units; the encoder's last Dense layer has width 2K.
    channels, input_shape : the conv encoder's output channels per stage and the (C, H, W) of one
        image (X stays flat, (N, C*H*W)).  Each stage is Conv2d(kernel 4, stride 2, padding 1) + ReLU,
        halving H and W (floor); then Flatten and Dense(C_last*h*w, 2K).  The decoder is
        Dense(K, C_last*h*w) + ReLU, Reshape, then ConvTranspose2d(kernel 4, stride 2, padding 1) stages
        with the output padding that restores each size exactly (ReLU between, none after the last), Flatten.
    activation : hidden activation, "relu" by default (it trains faster in a few epochs than the
        VAE and IWAE papers' "tanh", which is one argument away, and the fast engine runs each
        Dense + ReLU pair as one layer, fast.dense_relu.DenseReLU); the conv network's stages use it too.
    likelihood : "bernoulli" (the decoder's outputs are logits; BCE from the logits, summed over
        pixels) or "gaussian" (the outputs are the mean of N(mean, sigma^2 I) with a FIXED `sigma`:
        SSE / (2 sigma^2) + (D/2) log(2 pi sigma^2) per image).
    beta : the KL weight (1: the ELBO; > 1: a beta-VAE).
    kl_warmup : N epochs of linear warm-up, beta_t = beta * min(1, t / N) in epoch t (0-based):
        `beta_` holds the weight in use; `fit` updates it after each epoch (`start_epoch`). 0: none.
    binarize : "dynamic" (each training step binarises its batch anew, Bernoulli(pixel), from the
        step's generator), "none", or None (default): "dynamic" for the Bernoulli likelihood,
        "none" for the Gaussian.  Evaluation methods take X as given: binarise a test set once
        with `binarize(X, rng)` for log-likelihoods in nats.
    weight_decay : L2 on every W in the loss, or AdamW's decoupled decay with optimizer="adamw".
    optimizer, lr, epochs, batch_size, patience, backend, seed, dtype, progress : as for `Autoencoder`.

    Validation (`reconstruction_loss`, what the Trainer reports as val_loss, and `score`):
    the negative ELBO per image with beta = 1, z sampled from a generator seeded
    VALIDATION_SEED = 0 at every call (and the batch binarised from it first when binarize is
    dynamic), so it is deterministic and does not depend on the step count or on warm-up.
    engine : "auto" (default), "reference" or "fast": which code runs the network and the optimizer.
        "reference" runs the reference layers of scratch_ae/layers/, the derivations' algorithms;
        "fast" runs `scratch_ae.fast.to_fast` of the same network (compiled Numba loops,
        channels-last convolutions, the fused Adam update), equal to the reference to rounding
        (tests/test_fast_*.py); "auto" is "fast" on the CPU where Numba is installed, else
        "reference".  On the GPU the layers are the reference (CuPy's kernels) and "fast" picks
        the fused CuPy Adam kernel.  `engine_` holds the resolved choice; checkpoints record it.
    """

    family = "vae"

    def __init__(self, encoder="dense", sizes=(784, 200, 200), latent=50, channels=(32, 64), input_shape=(1, 28, 28),
                 activation="relu", likelihood="bernoulli", sigma=1.0, beta=1.0, kl_warmup=0, binarize=None,
                 weight_decay=0.0, optimizer="adam", lr=1e-3, epochs=8, batch_size=100, patience=None,
                 backend="numpy", seed=0, dtype="float32", progress=False, engine="auto"):
        self.encoder = encoder
        self.sizes = sizes
        self.latent = latent
        self.channels = channels
        self.input_shape = input_shape
        self.activation = activation
        self.likelihood = likelihood
        self.sigma = sigma
        self.beta = beta
        self.kl_warmup = kl_warmup
        self.binarize = binarize
        self.weight_decay = weight_decay
        self.optimizer = optimizer
        self.lr = lr
        self.epochs = epochs
        self.batch_size = batch_size
        self.patience = patience
        self.backend = backend
        self.seed = seed
        self.dtype = dtype
        self.progress = progress
        self.engine = engine
        self._build()

    # ------------------------------------------------------------------ building
    def _validate(self):
        if self.encoder not in ENCODERS:
            raise ValueError(f"unknown encoder {self.encoder!r}; expected one of: {', '.join(ENCODERS)}")
        if not (isinstance(self.latent, (int, np.integer)) and not isinstance(self.latent, bool) and self.latent > 0):
            raise ValueError(f"latent must be a positive integer, got {self.latent!r}")
        if self.likelihood not in vae_terms.LIKELIHOODS:
            raise ValueError(f"unknown likelihood {self.likelihood!r}; expected one of: "
                             f"{', '.join(vae_terms.LIKELIHOODS)}")
        for name in ("sigma", "beta", "kl_warmup", "weight_decay"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)) \
                    or not math.isfinite(value) or value < 0 or (name == "sigma" and value == 0):
                bound = "> 0" if name == "sigma" else ">= 0"
                raise ValueError(f"{name} must be a finite number {bound}, got {value!r}")
        if self.binarize is not None and self.binarize not in BINARIZATIONS:
            raise ValueError(f"unknown binarize {self.binarize!r}; expected one of: {', '.join(BINARIZATIONS)} (or None)")
        if self.dtype not in ("float32", "float64"):
            raise ValueError(f"dtype must be 'float32' or 'float64', got {self.dtype!r}")
        activation = activation_name(self.activation)
        if self.encoder == "dense":
            _int_tuple(self.sizes, "sizes")
        else:
            _int_tuple(self.channels, "channels")
            _int_tuple(self.input_shape, "input_shape", 3)
        return activation

    def _architecture(self, activation):
        """(encoder entries, decoder entries): one JSON-able dict per layer, in order (the layer description)."""
        K = int(self.latent)
        act = {"type": activation}
        dense = lambda a, b: {"type": "dense", "in": int(a), "out": int(b)}
        sampling = GaussianReparameterize().config()
        out_act = {"type": "sigmoid" if self.likelihood == "bernoulli" else "identity"}
        if self.encoder == "dense":
            sizes = list(_int_tuple(self.sizes, "sizes"))
            encoder = []
            for a, b in zip(sizes[:-1], sizes[1:]):
                encoder += [dense(a, b), act]
            encoder += [dense(sizes[-1], 2 * K), sampling]
            widths = [K] + sizes[:0:-1]
            decoder = []
            for a, b in zip(widths[:-1], widths[1:]):
                decoder += [dense(a, b), act]
            decoder += [dense(widths[-1], sizes[0]), out_act]
            return encoder, decoder
        shape = list(_int_tuple(self.input_shape, "input_shape", 3))
        k, s, p = CONV_KERNEL, CONV_STRIDE, CONV_PADDING
        shapes, encoder = [shape], [{"type": "reshape", "shape": shape}]
        for c in _int_tuple(self.channels, "channels"):
            c_in, h, w = shapes[-1]
            h2, w2 = conv_output_size(h, k, s, p), conv_output_size(w, k, s, p)
            if h2 < 1 or w2 < 1:
                raise ValueError(f"input_shape {tuple(self.input_shape)} is too small for {len(self.channels)} "
                                 f"stride-2 stages: stage {len(shapes)} would take {h}x{w} to {h2}x{w2}")
            encoder += [{"type": "conv2d", "in_channels": c_in, "out_channels": c, "kernel_size": [k, k],
                         "stride": [s, s], "padding": [p, p]}, act]
            shapes.append([c, h2, w2])
        flat = math.prod(shapes[-1])
        encoder += [{"type": "flatten"}, dense(flat, 2 * K), sampling]
        decoder = [dense(K, flat), act, {"type": "reshape", "shape": shapes[-1]}]
        for i in range(len(shapes) - 1, 0, -1):
            (c_in, h, w), (c_out, h_t, w_t) = shapes[i], shapes[i - 1]
            pad = [h_t - conv_transpose_output_size(h, k, s, p, 0), w_t - conv_transpose_output_size(w, k, s, p, 0)]
            decoder.append({"type": "conv_transpose2d", "in_channels": c_in, "out_channels": c_out,
                            "kernel_size": [k, k], "stride": [s, s], "padding": [p, p], "output_padding": pad})
            if i > 1:
                decoder.append(act)
        decoder += [{"type": "flatten"}, out_act]
        return encoder, decoder

    @staticmethod
    def _make_layers(entries, rng, backend, dtype, reads_data):
        """The layers an architecture list describes, weights drawn in order from the host generator `rng`.

        reads_data: the list's input is the data, so its first layer with parameters skips dL/dx."""
        xp, layers = backend.xp, []
        for i, entry in enumerate(entries):
            following = entries[i + 1]["type"] if i + 1 < len(entries) else None
            skip_input_grad = reads_data and not any(e["type"] in ("dense", "conv2d") for e in entries[:i])
            kind = entry["type"]
            if kind == "dense":
                init = "he" if following in HE_FAMILY else "glorot"
                layers.append(Dense.create(entry["in"], entry["out"], init, rng, backend, dtype,
                                           need_input_grad=not skip_input_grad))
            elif kind == "conv2d":
                layers.append(Conv2d(entry["in_channels"], entry["out_channels"], entry["kernel_size"], entry["stride"],
                                     entry["padding"], init="he" if following in HE_FAMILY else "pytorch", rng=rng,
                                     xp=xp, dtype=dtype, need_input_grad=not skip_input_grad))
            elif kind == "conv_transpose2d":
                layers.append(ConvTranspose2d(entry["in_channels"], entry["out_channels"], entry["kernel_size"],
                                              entry["stride"], entry["padding"], entry["output_padding"],
                                              init="he" if following in HE_FAMILY else "pytorch", rng=rng, xp=xp,
                                              dtype=dtype))
            elif kind == "reshape":
                layers.append(Reshape(entry["shape"]))
            elif kind == "flatten":
                layers.append(Flatten())
            elif kind == "gaussian_reparameterize":
                layers.append(GaussianReparameterize(xp))
            else:
                layers.append(make_activation(kind))
        return layers

    def _build(self):
        activation = self._validate()
        backend = self._backend_for_build()
        dtype = np.dtype(self.dtype)
        rng = np.random.default_rng(self.seed)
        encoder_entries, decoder_entries = self._architecture(activation)
        self.layer_config_ = {"encoder": encoder_entries, "decoder": decoder_entries}
        encoder = self._make_layers(encoder_entries, rng, backend, dtype, reads_data=True)
        decoder = self._make_layers(decoder_entries, rng, backend, dtype, reads_data=False)
        self.encoder_, self.decoder_ = Sequential(encoder), Sequential(decoder)
        self.reparameterize_ = encoder[-1]
        self.activation_ = activation
        # The same layer objects, seen as the loss needs them: the encoder up to [mu | logvar] (the
        # decoder up to the logits is `loss_decoder_`).
        self.encoder_body_ = Sequential(encoder[:-1])
        # The fast engine's Bernoulli loss (one exp shared by the loss and the sigmoid) replaces the
        # reference class under engine "fast"; evaluation in nats (per_example) is the reference's.
        bernoulli = SharedExpBernoulliNLL if self.engine_ == "fast" else vae_terms.BernoulliNLL
        self.nll_ = bernoulli() if self.likelihood == "bernoulli" else vae_terms.GaussianNLL(self.sigma)
        self.kl_ = vae_terms.GaussianKL()
        self.loss_fn_ = self.nll_
        self.penalties_ = []
        self.weight_penalty_ = (L2WeightDecay(self.weight_decay) if self.weight_decay and self.optimizer != "adamw"
                                else None)
        self.binarize_ = self.binarize or ("dynamic" if self.likelihood == "bernoulli" else "none")
        self.beta_ = float(self.beta)  # the KL weight in use; start_epoch(t) applies the warm-up

    def _loss_decoder_layers(self):
        """The decoder up to its logits (Bernoulli) or means (Gaussian): without the output activation."""
        return self.decoder_.layers[:-1]

    def _named_layers(self):
        return ([(f"encoder.{i}", layer) for i, layer in enumerate(self.encoder_.layers) if layer.params]
                + [(f"decoder.{i}", layer) for i, layer in enumerate(self.decoder_.layers) if layer.params])

    def layer_description(self):
        return self.layer_config_

    def _params_for_config(self):
        params = self.get_params()
        for name in ("sizes", "channels", "input_shape"):
            params[name] = [int(v) for v in params[name]]
        return params

    @property
    def code_size(self):
        return int(self.latent)

    @property
    def input_size(self):
        if self.encoder == "conv":
            return math.prod(_int_tuple(self.input_shape, "input_shape", 3))
        return int(list(self.sizes)[0])

    # ------------------------------------------------------------------ KL warm-up
    def start_epoch(self, epoch):
        """Set `beta_` for (0-based) epoch `epoch`: beta * min(1, epoch / kl_warmup) (beta itself without warm-up).

        Called by `fit` before the first epoch and after each one; a resumed run calls it with
        the epoch it resumes at.  Returns the weight."""
        self.beta_ = vae_terms.kl_warmup(self.beta, epoch, self.kl_warmup)
        return self.beta_

    def kl_warmup_callback(self, trainer, epoch):
        """A Trainer callback (called after each epoch): records the epoch's beta, sets the next one's."""
        trainer.history.setdefault("beta", []).append(self.beta_)
        self.start_epoch(epoch + 1)

    # ------------------------------------------------------------------ the objective and its gradient
    # AutoencoderBase.loss_and_grads and .objective run the VAE through three hooks: the batch
    # (binarised from the step's generator), the KL term on the code, and the backward through the
    # sampling layer, which adds the KL's gradient at [mu | logvar].  The encoder's last layer draws
    # z; the loss reads the decoder's logits (`loss_decoder_`), so the base's forward is
    # -log p(target | z) + beta_ KL (+ the weight penalty), the batch means (0-d).
    _stochastic_what = "a variational autoencoder samples z"

    def _training_pair(self, x, target, rng):
        """The batch a step trains on: with `rng` and binarize="dynamic", the target is binarised from
        rng first (before the sampling layer draws eps from the same generator), and so is the input
        when it is the target.  Without rng (a forward-only objective in evaluation mode, z = mu): as given."""
        same = target is None or target is x
        x = self._as_batch(x)
        target = x if same else self._as_batch(target, "target")
        if rng is None or self.binarize_ != "dynamic":
            return x, target
        target = binarize(target, rng).astype(self.dtype, copy=False)
        return (target if same else x), target

    def _code_terms(self, objective, z):
        """objective + beta_ KL(q(z|x) || N(0, I)), the KL from the sampling layer's mu and logvar.

        Derivation: derivations/vae.md#vae-model
        """
        layer = self.reparameterize_
        return objective + self.beta_ * self.kl_.forward(layer.mu, layer.logvar)

    def _encoder_backward(self, grad_z):
        """dL/dz back through the sampling layer, which adds beta_ times the KL's (dmu, dlogvar) at
        [mu | logvar] (under the clamp's mask), then through the encoder's body.

        Derivation: derivations/vae.md#vae-model
        """
        d_mu, d_logvar = self.kl_.backward()
        beta = self.beta_
        grad_h = self.reparameterize_.backward(grad_z, beta * d_mu, beta * d_logvar)
        self._run(self.encoder_body_).backward(grad_h)

    def reconstruction_loss(self, x, target=None):
        """Validation: the negative ELBO per image (beta = 1), batch mean as a 0-d backend array.

        z sampled with a generator seeded VALIDATION_SEED at every call (the batch binarised from it
        first when binarize is dynamic): deterministic, the same whatever the step count or warm-up.
        Unlike the other families this includes the KL: a VAE's reconstruction at z = mu alone
        would reward ignoring the prior.

        Derivation: derivations/vae.md#vae-model
        """
        rng = np.random.default_rng(VALIDATION_SEED)
        x, target = self._training_pair(x, target, rng)
        self._prepare_step(rng)
        z = self._run(self.encoder_).forward(x)
        rec = self.nll_.forward(self._run(self.loss_decoder_).forward(z), target)
        kl = self.kl_.forward(self.reparameterize_.mu, self.reparameterize_.logvar)
        self._mode(False)
        return self.xp.asarray(rec + kl)

    def check_data_range(self, X, what="X", chunk_rows=4096):
        """The Bernoulli likelihood needs data in [0, 1] (beyond a 0.01 margin); the Gaussian takes any values."""
        if self.likelihood != "bernoulli":
            return
        for start in range(0, X.shape[0], chunk_rows):
            chunk = X[start:start + chunk_rows]
            low, high = float(chunk.min()), float(chunk.max())
            if low < -DATA_RANGE_MARGIN or high > 1 + DATA_RANGE_MARGIN:
                raise ValueError(f"{what} has values in [{low:.4g}, {high:.4g}] (rows from {start}), but "
                                 f"likelihood='bernoulli' needs data in [0, 1]: scale it (e.g. divide 0-255 pixels "
                                 f"by 255) or use likelihood='gaussian'")

    # ------------------------------------------------------------------ training
    def _fit_callbacks(self):
        """KL warm-up: `beta_` set for epoch 0 now and after each epoch by `kl_warmup_callback`
        (history_["beta"] lists each epoch's weight)."""
        self.start_epoch(0)
        return [self.kl_warmup_callback]

    def _after_fit(self, X, X_val):
        """history_["active_units"]: the latent units in use after training (on X_val, or the first
        10,000 training images); 0 means the posterior collapsed onto the prior."""
        probe = X_val if X_val is not None and len(X_val) else X[:10000]
        self.history_["active_units"] = self.active_units(probe)

    def score(self, X, y=None):
        """The ELBO per image (minus `reconstruction_loss`, the validation loss), averaged over X: higher is better."""
        X = self._as_samples(X, self.input_size)
        self.check_data_range(X)
        total = 0.0
        for start in range(0, X.shape[0], 2000):
            chunk = X[start:start + 2000]
            total += float(self.reconstruction_loss(chunk)) * chunk.shape[0]
        return -total / max(X.shape[0], 1)

    # ------------------------------------------------------------------ evaluation
    def _device_samples(self, X):
        return self.backend_.asarray(self._as_samples(X, self.input_size), dtype=self.dtype)

    def posterior(self, x):
        """x (B, D) on the backend -> (mu, logvar), each (B, K), raw (unclamped), in evaluation mode."""
        self._mode(False)
        h = self._run(self.encoder_body_).forward(self._as_batch(x))
        K = self.code_size
        return h[:, :K], h[:, K:]

    def decode_logits(self, z):
        """z (B, K) on the backend -> the decoder's logits (Bernoulli) or means (Gaussian), (B, D), evaluation mode."""
        self._mode(False)
        return self._run(self.loss_decoder_).forward(self._as_batch(z, "z", self.code_size))

    def negative_elbo(self, X, rng=None, batch_size=100, per_image=False):
        """-ELBO in nats (beta = 1), one z sampled per image from `rng` (None: default_rng(0)): the mean over X.

        X is used as given (binarise a test set once with `binarize` for the literature's nats);
        per_image=True returns the NumPy (N,) values."""
        values = vae_terms.negative_elbo_sampled(self.posterior, self.decode_logits, self._device_samples(X),
                                                 _rng(rng), self.likelihood, batch_size, self.sigma)
        return values if per_image else float(values.mean())

    def nll_importance_sampled(self, X, k=5000, rng=None, batch_k=100, batch_size=100, per_image=False):
        """-log p(x) in nats estimated with k importance samples from q(z|x) (Burda et al.): the mean over X.

        At most the negative ELBO in expectation, decreasing towards -log p(x) with k.  The
        decoder sees batch_k * batch_size rows at once.  per_image=True returns the (N,) values."""
        values = vae_terms.importance_sampled_nll(self.posterior, self.decode_logits, self._device_samples(X), k,
                                                  _rng(rng), self.likelihood, batch_k, batch_size, self.sigma)
        return values if per_image else float(values.mean())

    def kl_and_reconstruction(self, X, rng=None, batch_size=100):
        """{"kl", "reconstruction", "negative_elbo"}: means over X in nats, z sampled once per image.

        reconstruction = -log p(x | z), kl = KL(q(z|x) || p(z)) (analytic, logvar clamped as in
        training); with the same `rng` their sum equals `negative_elbo(X, rng)` up to rounding."""
        X, rng = self._device_samples(X), _rng(rng)
        layer, totals = self.reparameterize_, np.zeros(2)
        for start in range(0, X.shape[0], batch_size):
            x = X[start:start + batch_size]
            self._mode(False)
            h = self._run(self.encoder_body_).forward(x)
            layer.training, layer.rng = True, rng  # z = mu + std eps, eps drawn as negative_elbo_sampled draws it
            z = layer.forward(h)
            rec = self.nll_.per_example(self._run(self.loss_decoder_).forward(z), x)
            kl = self.kl_.per_example(layer.mu, layer.logvar)
            totals += [float(kl.astype(np.float64).sum()), float(rec.astype(np.float64).sum())]
        self._mode(False)
        kl, rec = totals / max(X.shape[0], 1)
        return {"kl": float(kl), "reconstruction": float(rec), "negative_elbo": float(kl + rec)}

    def active_units(self, X, threshold=0.01):
        """The number of latent units with Var_x(mu_k(x)) > threshold over X (Burda et al.'s 0.01)."""
        return vae_terms.active_units(self.transform(X), threshold)

    def sample(self, n, rng=None):
        """n images decoded from z ~ N(0, I) drawn on the host from `rng`: (n, D) NumPy probabilities or means."""
        z = _rng(rng).standard_normal((int(n), self.code_size)).astype(self.dtype)
        return self.inverse_transform(z)

    def interpolate(self, x_a, x_b, steps=10):
        """Decode the straight line from mu(x_a) to mu(x_b) in `steps` points (ends included): (steps, D) NumPy."""
        ends = self.transform(np.concatenate([np.reshape(np.asarray(x_a), (1, -1)),
                                              np.reshape(np.asarray(x_b), (1, -1))]))
        t = np.linspace(0.0, 1.0, int(steps))[:, None]
        return self.inverse_transform(((1.0 - t) * ends[0] + t * ends[1]).astype(self.dtype))


__all__ = ["VariationalAutoencoder", "binarize", "VALIDATION_SEED"]
