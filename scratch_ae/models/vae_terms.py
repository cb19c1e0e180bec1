"""The terms of a variational autoencoder's objective, and its evaluation.

Training terms (forward/backward pairs in the style of `scratch_ae.losses`):
`GaussianKL` (the analytic KL of the posterior from the N(0, I) prior) and
two decoder likelihoods, `BernoulliNLL` (from the logits) and `GaussianNLL`
(fixed sigma).  Unlike `scratch_ae.losses`, which average over all B*D
elements, these are SUMS over an example's pixels (or latent units) and
MEANS over the batch, so the objective is the negative ELBO per image in
nats: `nll.forward(...) + beta * kl.forward(...)`.  Each `per_example`
returns the (B,) values before the batch mean.

Evaluation: `negative_elbo_sampled` (one z per image), the importance-sampled
negative log-likelihood `importance_sampled_nll` (Burda et al.'s k-sample
bound), their helpers (`log_normal_pdf`, `log_standard_normal`,
`log_mean_exp`) and `active_units`.  `kl_warmup` is the linear beta schedule.

Every function works on NumPy or CuPy arrays alike, taking the array module
from its inputs, and keeps float32 float32.  Derivation: derivations/vae.md
"""
import math

import numpy as np

from ..backend import array_module
from ..layers.reparameterize import GaussianReparameterize
from ..losses import bce_with_logits, sigmoid

LOG_2PI = math.log(2.0 * math.pi)
LIKELIHOODS = ("bernoulli", "gaussian")


def _flat(a):
    """(B, ...) -> (B, prod(...)): per-example sums run over every non-batch axis."""
    return a.reshape(a.shape[0], -1)


def _gaussian_nll_elementwise(mean, x, sigma):
    """0.5 ((x - m)^2 / sigma^2 + log(2 pi sigma^2)), elementwise."""
    diff = x - mean
    return (0.5 / sigma ** 2) * (diff * diff) + 0.5 * (LOG_2PI + 2.0 * math.log(sigma))


class GaussianKL:
    """KL(N(mu, diag exp(logvar)) || N(0, I)), summed over latent units, mean over the batch.

    KL = (1/B) sum_i 0.5 sum_k (mu_ik^2 + exp(logvar_ik) - 1 - logvar_ik).
    Shapes: mu, logvar (B, K).  Cache: mu, exp(logvar).
    """

    def per_example(self, mu, logvar):
        """(B,) KL of each example's posterior from the prior, in nats.

        Derivation: derivations/vae.md#gaussian-kl
        """
        xp = array_module(mu)
        return 0.5 * (mu * mu + xp.exp(logvar) - 1.0 - logvar).sum(axis=1)

    def forward(self, mu, logvar):
        """0-d array: the batch mean of `per_example`.

        Derivation: derivations/vae.md#gaussian-kl
        """
        xp = array_module(mu)
        self.mu = mu
        self.var = xp.exp(logvar)
        per_unit = mu * mu + self.var - 1.0 - logvar
        return xp.asarray(0.5 * per_unit.sum() / mu.shape[0])

    def backward(self):
        """(dKL/dmu, dKL/dlogvar) = (mu / B, 0.5 (exp(logvar) - 1) / B), each (B, K).

        Derivation: derivations/vae.md#gaussian-kl
        """
        batch = self.mu.shape[0]
        return self.mu * (1.0 / batch), (self.var - 1.0) * (0.5 / batch)


class BernoulliNLL:
    """-log p(x|z) for a Bernoulli decoder, from the logits l: sum over pixels, mean over the batch.

    Per image: sum_d [softplus(l_d) - x_d l_d] (`losses.bce_with_logits`, summed here over the pixels
    where BCEWithLogitsLoss averages), in nats.  Shapes: logits and
    x (B, ...) alike (x in [0, 1]; binarised data for a true likelihood).
    Cache: sigmoid(l) and x.
    """

    def per_example(self, logits, x):
        """(B,) negative log-likelihood of each image, in nats.

        Derivation: derivations/vae.md#bernoulli-nll
        """
        return _flat(bce_with_logits(logits, x)).sum(axis=1)

    def forward(self, logits, x):
        """0-d array: the batch mean of `per_example`.

        Derivation: derivations/vae.md#bernoulli-nll
        """
        self.probs = sigmoid(logits)
        self.target = x
        return array_module(logits).asarray(bce_with_logits(logits, x).sum() / logits.shape[0])

    def backward(self):
        """dL/dlogits = (sigmoid(l) - x) / B, shape of the logits.

        Derivation: derivations/vae.md#bernoulli-nll
        """
        return (self.probs - self.target) * (1.0 / self.probs.shape[0])


class GaussianNLL:
    """-log N(x; m, sigma^2 I) with a fixed sigma, m the decoder's output: sum over pixels, mean over the batch.

    Per image: 0.5 sum_d [(x_d - m_d)^2 / sigma^2 + log(2 pi sigma^2)], that
    is SSE / (2 sigma^2) + (D/2) log(2 pi sigma^2).  Shapes: mean and x
    (B, ...) alike.  Cache: m - x.
    """

    def __init__(self, sigma=1.0):
        sigma = float(sigma)  # a Python float: a NumPy float64 scalar would promote float32 arrays
        if not sigma > 0.0 or not math.isfinite(sigma):
            raise ValueError(f"GaussianNLL needs a finite sigma > 0, got {sigma!r}")
        self.sigma = sigma

    def per_example(self, mean, x):
        """(B,) negative log-density of each image, in nats.

        Derivation: derivations/vae.md#gaussian-nll
        """
        return _flat(_gaussian_nll_elementwise(mean, x, self.sigma)).sum(axis=1)

    def forward(self, mean, x):
        """0-d array: the batch mean of `per_example`.

        Derivation: derivations/vae.md#gaussian-nll
        """
        self.diff = mean - x
        return array_module(mean).asarray(_gaussian_nll_elementwise(mean, x, self.sigma).sum() / mean.shape[0])

    def backward(self):
        """dL/dmean = (m - x) / (sigma^2 B), shape of the mean.

        Derivation: derivations/vae.md#gaussian-nll
        """
        return self.diff * (1.0 / (self.sigma ** 2 * self.diff.shape[0]))

    def __repr__(self):
        return f"GaussianNLL(sigma={self.sigma})"


def kl_warmup(beta, epoch, warmup_epochs):
    """The KL weight for an epoch under linear warm-up: beta * min(1, epoch / warmup_epochs).

    `epoch` counts the epochs completed before this one (0 for the first, so
    the first epoch trains the reconstruction alone); a fraction (step /
    steps per epoch) warms up per step.  warmup_epochs = 0: no warm-up.

    Derivation: derivations/vae.md#vae-backward
    """
    if warmup_epochs < 0 or epoch < 0:
        raise ValueError(f"kl_warmup needs epoch >= 0 and warmup_epochs >= 0, got {epoch!r}, {warmup_epochs!r}")
    if warmup_epochs == 0:
        return float(beta)
    return float(beta) * min(1.0, float(epoch) / float(warmup_epochs))


# ---------------------------------------------------------------------------- densities and log-mean-exp
def log_normal_pdf(z, mu, logvar):
    """log N(z; mu, diag exp(logvar)), summed over the last axis (the latent units).

    Shapes broadcast: z (..., K) against mu, logvar (..., K) -> (...); e.g.
    z (B, K) -> (B,), or z (S, B, K) against mu (B, K) -> (S, B).

    Derivation: derivations/vae.md#importance-sampling
    """
    xp = array_module(z)
    diff = z - mu
    return -0.5 * (LOG_2PI + logvar + diff * diff * xp.exp(-logvar)).sum(axis=-1)


def log_standard_normal(z):
    """log N(z; 0, I), summed over the last axis: (..., K) -> (...).

    Derivation: derivations/vae.md#importance-sampling
    """
    return -0.5 * (LOG_2PI + z * z).sum(axis=-1)


def _log_sum_exp(a, axis):
    """(max, log sum exp(a - max)) along `axis`, the max squeezed; an all -inf slice gives (-inf, -inf)."""
    xp = array_module(a)
    m = xp.max(a, axis=axis, keepdims=True)
    shift = xp.where(xp.isfinite(m), m, 0.0).astype(a.dtype, copy=False)  # no (-inf) - (-inf) = NaN
    with np.errstate(divide="ignore"):  # log(0) = -inf for an all -inf slice is the right answer
        rest = xp.log(xp.exp(a - shift).sum(axis=axis))
    return xp.squeeze(shift, axis=axis), rest


def log_mean_exp(a, axis):
    """log((1/n) sum_i exp(a_i)) along `axis`, stably: max + log mean exp(a - max).

    Exact for inputs far below exp's range (around -1e4 every exp(a) is 0 in
    floating point, but a - max is not).  An all -inf slice gives -inf.

    Derivation: derivations/vae.md#importance-sampling
    """
    shift, rest = _log_sum_exp(a, axis)
    return shift + rest - math.log(a.shape[axis])


# ---------------------------------------------------------------------------- evaluation
def _to_host(a):
    return a.get() if hasattr(a, "get") else np.asarray(a)


def _log_likelihood(decoded, x, likelihood, sigma):
    """log p(x|z) per example over the last axis; decoded (..., D), x (n, D) broadcasting."""
    if likelihood == "bernoulli":
        return -bce_with_logits(decoded, x).sum(axis=-1)
    return -_gaussian_nll_elementwise(decoded, x, sigma).sum(axis=-1)


def _check_likelihood(likelihood, sigma):
    if likelihood not in LIKELIHOODS:
        raise ValueError(f"unknown likelihood {likelihood!r}; expected one of: {', '.join(LIKELIHOODS)}")
    sigma = float(sigma)
    if likelihood == "gaussian" and (not sigma > 0.0 or not math.isfinite(sigma)):
        raise ValueError(f"the gaussian likelihood needs a finite sigma > 0, got {sigma!r}")
    return sigma


def _encode(encode_fn, x):
    """(mu, logvar) with logvar clamped exactly as `GaussianReparameterize` clamps it in training."""
    mu, logvar = encode_fn(x)
    return mu, array_module(logvar).clip(logvar, GaussianReparameterize.LOGVAR_MIN, GaussianReparameterize.LOGVAR_MAX)


def _draw(rng, shape, like):
    """Standard normal noise drawn on the host (float64, then cast to like's dtype), on like's array module."""
    return array_module(like).asarray(rng.standard_normal(shape).astype(like.dtype, copy=False))


def importance_sampled_nll(encode_fn, decode_logits_fn, X, k, rng, likelihood="bernoulli", batch_k=100,
                           batch_size=100, sigma=1.0):
    """-log p(x) per image, estimated with k importance samples from q(z|x): a NumPy (N,) array of nats.

    -log (1/k) sum_i p(x|z_i) p(z_i) / q(z_i|x), z_i = mu + exp(0.5 logvar) eps_i.

    encode_fn(X_chunk) -> (mu, logvar), each (n, K), logvar raw or clamped (it is
    clamped to [-30, 20] here as in `GaussianReparameterize`); decode_logits_fn(z) -> (m, D...)
    logits (likelihood="bernoulli") or means (likelihood="gaussian", with the
    fixed `sigma`), for z (m, K).  X (N, D...) on the encoder's array module.
    Images go through in chunks of `batch_size` and samples in chunks of
    `batch_k` (the decoder sees batch_k * batch_size rows at once); the
    log-sum-exp over samples is accumulated across sample chunks (running max
    and rescaled sum, in float64), so the k log-weights are never held at once.
    The noise is drawn from `rng` (a NumPy Generator) on the host, image chunk
    by image chunk and sample by sample, so the result does not depend on
    batch_k.  One host read per image chunk.  In expectation the estimate is
    at most the negative ELBO, and it decreases towards -log p(x) as k grows.

    Derivation: derivations/vae.md#importance-sampling
    """
    sigma = _check_likelihood(likelihood, sigma)
    if int(k) < 1 or int(batch_k) < 1 or int(batch_size) < 1:
        raise ValueError(f"k, batch_k and batch_size must be >= 1, got {k!r}, {batch_k!r}, {batch_size!r}")
    k, batch_k, batch_size = int(k), int(batch_k), int(batch_size)
    out = []
    for start in range(0, X.shape[0], batch_size):
        x = X[start:start + batch_size]
        n = x.shape[0]
        x_flat = _flat(x)
        mu, logvar = _encode(encode_fn, x)
        xp = array_module(mu)
        std = xp.exp(0.5 * logvar)
        best = ref = total = None     # running max of the log-weights, the finite shift in use, sum exp(log_w - ref)
        for done in range(0, k, batch_k):
            s = min(batch_k, k - done)
            z = mu + std * _draw(rng, (s,) + tuple(mu.shape), mu)              # (s, n, K)
            decoded = decode_logits_fn(z.reshape(s * n, -1)).reshape(s, n, -1)  # (s, n, D)
            log_w = (_log_likelihood(decoded, x_flat, likelihood, sigma)
                     + log_standard_normal(z) - log_normal_pdf(z, mu, logvar)).astype(np.float64)  # (s, n)
            chunk_max = xp.max(log_w, axis=0)
            new_best = chunk_max if best is None else xp.maximum(best, chunk_max)
            new_ref = xp.where(xp.isfinite(new_best), new_best, 0.0)
            chunk_total = xp.exp(log_w - new_ref).sum(axis=0)
            if total is None:
                total = chunk_total
            else:  # rescale the old sum to the new shift; the exponent is <= 0 whenever the old sum is not 0
                total = total * xp.exp(xp.minimum(ref - new_ref, 0.0)) + chunk_total
            best, ref = new_best, new_ref
        with np.errstate(divide="ignore"):
            log_px = ref + xp.log(total) - math.log(k)
        out.append(_to_host(-log_px))
    return np.concatenate(out) if out else np.zeros(0)


def negative_elbo_sampled(encode_fn, decode_logits_fn, X, rng, likelihood="bernoulli", batch_size=100, sigma=1.0):
    """-ELBO per image with ONE sampled z per image (not z = mu): a NumPy (N,) array of nats.

    -log p(x|z) + KL(q(z|x) || p(z)), z = mu + exp(0.5 logvar) eps, the KL
    analytic (`GaussianKL.per_example`).  An unbiased estimate of the
    negative ELBO.  Arguments as for `importance_sampled_nll`.

    Derivation: derivations/vae.md#elbo
    """
    sigma = _check_likelihood(likelihood, sigma)
    out = []
    for start in range(0, X.shape[0], int(batch_size)):
        x = X[start:start + int(batch_size)]
        mu, logvar = _encode(encode_fn, x)
        z = mu + array_module(mu).exp(0.5 * logvar) * _draw(rng, tuple(mu.shape), mu)
        decoded = _flat(decode_logits_fn(z))
        value = -_log_likelihood(decoded, _flat(x), likelihood, sigma) + GaussianKL().per_example(mu, logvar)
        out.append(_to_host(value.astype(np.float64)))
    return np.concatenate(out) if out else np.zeros(0)


def active_units(mu_over_test_set, threshold=0.01):
    """The number of latent units whose activity Var_x(E_q[z_k | x]) = Var_x(mu_k) exceeds `threshold`.

    mu_over_test_set (N, K), the encoder's means over a data set (NumPy or
    CuPy); the variance is over the N examples (1/N, in float64).  Returns an
    int.  Burda, Grosse and Salakhutdinov (2016) use threshold 0.01.

    Derivation: derivations/vae.md#active-units
    """
    mu = mu_over_test_set
    if mu.ndim != 2:
        raise ValueError(f"active_units expects mu of shape (N, K), got {tuple(mu.shape)}")
    variances = _to_host(mu.astype(np.float64).var(axis=0))
    return int((variances > threshold).sum())


__all__ = ["GaussianKL", "BernoulliNLL", "GaussianNLL", "kl_warmup", "log_normal_pdf", "log_standard_normal",
           "log_mean_exp", "importance_sampled_nll", "negative_elbo_sampled", "active_units", "LIKELIHOODS"]
