"""Penalty terms added to the reconstruction loss (sparsity and weight decay).

Activity penalties act on the code h (B, K), the encoder's output; the weight
penalty acts on every Dense layer's W.  Each returns its value from `forward`
and its gradient from `backward`, to be added to the back-propagated signal.
"""
from .backend import array_module as _xp


class L1ActivityPenalty:
    """P = lam * (1/B) * sum_ij |h_ij|.  Cache: h."""

    def __init__(self, lam):
        self.lam = lam

    def forward(self, code):
        self.code = code
        return self.lam * _xp(code).abs(code).sum() / code.shape[0]

    def backward(self):
        """dP/dh = (lam / B) * sign(h), with the sub-gradient 0 at h = 0.

        Derivation: derivations/sparsity.md#l1-activity
        """
        return (self.lam / self.code.shape[0]) * _xp(self.code).sign(self.code)


class KLSparsityPenalty:
    """P = beta * sum_j KL(rho || rho_hat_j), rho_hat_j = (1/B) sum_i h_ij.

    The classic sparse-autoencoder penalty for sigmoid codes in (0, 1):
    KL(rho || q) = rho log(rho/q) + (1-rho) log((1-rho)/(1-q)).  Cache: rho_hat, B.
    """

    def __init__(self, rho, beta, eps=1e-7):
        if not 0.0 < rho < 1.0:
            raise ValueError(f"kl_rho must be in (0, 1), got {rho!r}")
        self.rho = rho
        self.beta = beta
        self.eps = eps

    def forward(self, code):
        xp = _xp(code)
        self.batch = code.shape[0]
        # Clipping keeps log() finite if a unit is saturated over the whole batch.
        self.rho_hat = xp.clip(code.mean(axis=0), self.eps, 1.0 - self.eps)
        rho, q = self.rho, self.rho_hat
        return self.beta * (rho * xp.log(rho / q) + (1 - rho) * xp.log((1 - rho) / (1 - q))).sum()

    def backward(self):
        """dP/dh_ij = (beta / B) * (-rho/rho_hat_j + (1-rho)/(1-rho_hat_j)), same for every i.

        Derivation: derivations/sparsity.md#kl-sparsity
        """
        rho, q = self.rho, self.rho_hat
        per_unit = (self.beta / self.batch) * (-rho / q + (1 - rho) / (1 - q))
        return _xp(q).broadcast_to(per_unit, (self.batch, q.shape[0]))


class L2WeightDecay:
    """P = (lam / 2) * sum over Dense layers of ||W||_F^2 (biases are not decayed)."""

    def __init__(self, lam):
        self.lam = lam

    def forward(self, weights):
        """weights: a list of W arrays."""
        return 0.5 * self.lam * sum((W * W).sum() for W in weights)

    def gradient(self, W):
        """dP/dW = lam * W.

        Derivation: derivations/weight-decay.md#l2-weight-decay
        """
        return self.lam * W
