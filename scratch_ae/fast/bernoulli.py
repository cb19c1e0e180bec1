"""The fast engine's Bernoulli decoder loss: one exp(-|l|) shared by the loss and the sigmoid.

Replaces: `scratch_ae.models.vae_terms.BernoulliNLL.forward`, the reference and what a reader meets
first: it computes softplus(l) - x l with `log1p(exp(-|l|))` and caches sigmoid(l) from `tanh`,
three transcendental passes over the (B, D) logits.  `log1p` has no SIMD loop in NumPy on CPUs
without AVX-512 (NumPy falls back to the C library one value at a time), and there it is most of a
VAE step's elementwise time (benchmarks/RESULTS.md#2026-12-02-vae-bernoulli-shared-exp).  This class computes the same two things from one exponential:

    e = exp(-|l|) in (0, 1],  d = 1 + e in (1, 2]
    softplus(l) = max(l, 0) + log(d)
    sigmoid(l)  = 1 / d        for l >= 0
                = e / d        for l < 0

and the loss as sum(max(l, 0)) + sum(log d) - x . l (the last a BLAS dot).
`log(1 + e)` for `log1p(e)` costs at most half an ulp of 1 in each term (about
6e-8 in float32, when e < 2^-24 makes 1 + e round to 1), below the rounding of
the float32 sum over a batch; tests/test_fast_bernoulli.py checks the loss and the
cached sigmoid against the reference to rounding, in float32 and float64, for
logits up to +-1e4, and a VAE's training with each.  `backward` and `per_example`
are the reference's (inherited): evaluation in nats keeps `log1p`.

`VariationalAutoencoder` trains with it when its engine resolves to "fast".
"""
from ..backend import array_module
from ..models.vae_terms import BernoulliNLL


class SharedExpBernoulliNLL(BernoulliNLL):
    """BernoulliNLL whose forward shares one exp(-|l|) between softplus and sigmoid (same cache, same backward)."""

    def forward(self, logits, x):
        """0-d array: the batch mean of sum_d [softplus(l_d) - x_d l_d], as BernoulliNLL.forward to rounding.

        Shapes: logits and x (B, ...) alike.  Caches sigmoid(l) and x for the inherited backward.

        Derivation: derivations/vae.md#bernoulli-nll-shared-exp
        """
        xp = array_module(logits)
        one = logits.dtype.type(1)
        e = xp.abs(logits)
        xp.negative(e, out=e)
        xp.exp(e, out=e)                      # e = exp(-|l|)
        d = e + one                           # d = 1 + e
        total = (xp.log(d).sum() + xp.maximum(logits, 0).sum()
                 - xp.dot(x.reshape(-1), logits.reshape(-1)))
        probs = xp.where(logits >= 0, one, e)
        probs /= d                            # sigmoid(l): 1/d for l >= 0, e/d below
        self.probs = probs
        self.target = x
        return xp.asarray(total / logits.shape[0])


__all__ = ["SharedExpBernoulliNLL"]
