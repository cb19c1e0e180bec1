"""The reparameterisation trick: a Gaussian sample z = mu + sigma * eps as a layer.

The variational autoencoder's encoder ends in a Dense layer of width 2K whose
output is read as [mu | logvar]; this layer turns it into a sample z of the
approximate posterior q(z|x) = N(mu, diag(exp(logvar))), in a form whose
gradient with respect to mu and logvar is plain arithmetic (derivations/vae.md).
"""
import numpy as np

from .base import Layer


class GaussianReparameterize(Layer):
    """z = mu + exp(0.5 * logvar) * eps, eps ~ N(0, I), from x = [mu | logvar].

    Shapes: x (B, 2K), mu = x[:, :K] and logvar = x[:, K:] (B, K), z (B, K).

    Noise: eps (B, K) is drawn ONCE per `forward` from `self.rng`, a NumPy
    Generator that the caller sets (typically anew for every training step),
    on the host in the input's dtype (drawn in float64, then cast, so a
    float32 and a float64 model with the same seed see the same noise up to
    rounding), and copied to the input's array module with `xp.asarray`.
    `backward` reuses that very eps: the gradient is that of the function
    forward computed, which is only a function of x once eps is held fixed.

    Training vs evaluation: with `self.training = False` no noise is drawn and
    z = mu (the posterior mean, the usual deterministic code for
    reconstructions, plots and `transform`); `rng` is then not needed and
    backward passes grad_z to mu only.

    Clamp: logvar is clipped to [LOGVAR_MIN, LOGVAR_MAX] = [-30, 20] before
    any exp.  A large raw log-variance (an untrained or diverging encoder can
    output hundreds) overflows exp in float32 (exp(x) = inf for x > 88.7), and
    inf * 0 = NaN would then poison every gradient; exp(0.5 * 20) ~ 2.2e4 and
    exp(20) ~ 4.9e8 (in the KL term) stay finite, and exp(-30) ~ 9e-14 keeps
    the variance positive.  The clip's derivative is 1 inside the range
    (bounds included) and 0 outside, and backward applies exactly that mask.

    After forward these stay readable, for the model's KL term:
        mu (B, K)      : the posterior mean (a view of x)
        logvar (B, K)  : the CLAMPED log-variance
        eps (B, K)     : the noise used (None in eval mode)
    Cache for backward: eps, std = exp(0.5 * logvar), and in_range, the
    boolean (B, K) mask of raw logvar entries inside the clamp's range.
    """

    stochastic = True  # reads self.rng in training mode: Sequential.set_rng hands it each step's generator
    LOGVAR_MIN = -30.0
    LOGVAR_MAX = 20.0

    def __init__(self, xp=np, rng=None):
        self.xp = xp
        self.params = {}
        self.grads = {}
        self.training = True
        self.rng = rng
        self.mu = self.logvar = self.eps = self.std = self.in_range = None

    def forward(self, x):
        """x (B, 2K) = [mu | logvar] -> z (B, K); z = mu in eval mode.

        Derivation: derivations/vae.md#reparameterize
        Derivation: derivations/vae.md#logvar-clamp
        """
        xp = self.xp
        if x.ndim != 2 or x.shape[1] % 2:
            raise ValueError(f"GaussianReparameterize expects (B, 2K) = [mu | logvar], got shape {tuple(x.shape)}")
        k = x.shape[1] // 2
        raw_logvar = x[:, k:]
        self.mu = x[:, :k]
        self.in_range = (raw_logvar >= self.LOGVAR_MIN) & (raw_logvar <= self.LOGVAR_MAX)
        self.logvar = xp.clip(raw_logvar, self.LOGVAR_MIN, self.LOGVAR_MAX)
        if not self.training:
            self.eps = self.std = None
            return self.mu.copy()
        if self.rng is None:
            raise ValueError("GaussianReparameterize.rng is None: set layer.rng to a numpy.random.Generator "
                             "(e.g. numpy.random.default_rng(seed)) before a training-mode forward, "
                             "or set layer.training = False for z = mu")
        eps = self.rng.standard_normal(self.mu.shape).astype(x.dtype, copy=False)
        self.eps = xp.asarray(eps)
        self.std = xp.exp(0.5 * self.logvar)
        return self.mu + self.std * self.eps

    def backward(self, grad_z, grad_mu=None, grad_logvar=None):
        """grad_z = dL/dz (B, K). Returns dL/dx (B, 2K) = [dL/dmu | dL/d(raw logvar)].

        dL/dmu = grad_z (+ grad_mu),
        dL/d(raw logvar) = (grad_z * eps * 0.5 * exp(0.5 logvar) (+ grad_logvar)) * in_range,
        with the eps of the last forward (never redrawn).  In eval mode (z = mu)
        the first term of dL/d(raw logvar) is 0.

        grad_mu, grad_logvar (B, K), optional: gradients of terms that use mu
        and the clamped logvar directly, not through z (the KL term, already
        weighted by beta).  They are added here so that the clamp's mask also
        applies to the KL gradient, which is a gradient with respect to the
        clamped logvar.

        Derivation: derivations/vae.md#reparameterize
        Derivation: derivations/vae.md#logvar-clamp
        Derivation: derivations/vae.md#vae-backward
        """
        xp = self.xp
        if self.logvar is None:
            raise RuntimeError("GaussianReparameterize.backward called before forward")
        d_mu = grad_z if grad_mu is None else grad_z + grad_mu
        if self.training:
            d_logvar = grad_z * self.eps * (0.5 * self.std)
        else:
            d_logvar = xp.zeros_like(grad_z)
        if grad_logvar is not None:
            d_logvar = d_logvar + grad_logvar
        d_logvar = d_logvar * self.in_range
        return xp.concatenate([d_mu, d_logvar], axis=1)

    def config(self):
        """The layer's JSON description for a checkpoint (it has no parameters)."""
        return {"type": "gaussian_reparameterize", "logvar_min": self.LOGVAR_MIN, "logvar_max": self.LOGVAR_MAX}

    def __repr__(self):
        return "GaussianReparameterize()"


__all__ = ["GaussianReparameterize"]
