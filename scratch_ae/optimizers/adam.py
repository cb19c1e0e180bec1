"""Adam with bias correction, and AdamW's decoupled weight decay."""
from .. import validation
from .base import Optimizer, flush_tiny_values


class Adam(Optimizer):
    """m <- b1 m + (1-b1) g;  v <- b2 v + (1-b2) g^2
    m_hat = m / (1 - b1^t);   v_hat = v / (1 - b2^t)      (t = steps taken, from 1)
    W <- W - lr m_hat / (sqrt(v_hat) + eps)
    then W, m, v: any |x| below tiny / eps (9.9e-32 in float32) -> 0 (see flush_tiny_values)

    engine : "auto" (default), "reference" or "fast" (see `Optimizer`).  `update` below is the
    readable reference and knows nothing of the fast forms; where the engine resolves to "fast",
    `step` calls `fast_update` instead: the same update as one fused pass
    (scratch_ae/fast/adam.py: a compiled loop or cache-blocked NumPy, equal to `update` bit for
    bit on the CPU; a CuPy kernel, equal to rounding, on the GPU).
    """

    slots = ("m", "v")

    def __init__(self, lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8, engine="auto"):
        super().__init__(lr, engine)
        self.beta1 = validation.number("beta1", beta1, 0, 1, high_open=True)
        self.beta2 = validation.number("beta2", beta2, 0, 1, high_open=True)
        self.eps = validation.number("eps", eps, low=0, low_open=True)

    def update(self, name, param, grad, state):
        """The readable reference form of the update.

        Derivation: derivations/optimizers.md#adam
        """
        m, v = state["m"], state["v"]
        m *= self.beta1
        m += (1 - self.beta1) * grad
        v *= self.beta2
        v += (1 - self.beta2) * (grad * grad)
        m_hat = m / (1 - self.beta1 ** self.t)
        v_hat = v / (1 - self.beta2 ** self.t)
        param -= self.lr * m_hat / (v_hat ** 0.5 + self.eps)
        for array in (param, m, v):  # tiny values to 0: a CPU speed guard (derivations/optimizers.md#subnormals)
            flush_tiny_values(array)

    def fast_update(self, name, param, grad, state):
        """`update` as one fused pass over param, grad, m and v (the fast engine's form).

        Derivation: derivations/optimizers.md#adam-fused
        """
        from ..fast.adam import adam_update
        adam_update(param, grad, state["m"], state["v"], self.lr, self.beta1, self.beta2, self.eps, self.t)


class AdamW(Adam):
    """Adam plus decoupled weight decay: W <- W - lr * weight_decay * W, then the Adam step.

    Only weights (names ending in ".W") decay, not biases.  Unlike an L2 term in
    the loss, the decay does not pass through Adam's per-coordinate scaling.
    """

    def __init__(self, lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=0.01, engine="auto"):
        super().__init__(lr, beta1, beta2, eps, engine)
        self.weight_decay = validation.number("weight_decay", weight_decay, low=0)

    def update(self, name, param, grad, state):
        """Derivation: derivations/optimizers.md#adamw"""
        if self.weight_decay and name.endswith(".W"):
            param *= 1 - self.lr * self.weight_decay
        super().update(name, param, grad, state)

    def fast_update(self, name, param, grad, state):
        """AdamW's `update` as one fused pass: the decay is the fused update's first line.

        Derivation: derivations/optimizers.md#adam-fused
        """
        from ..fast.adam import adam_update
        decay = 1 - self.lr * self.weight_decay if self.weight_decay and name.endswith(".W") else None
        adam_update(param, grad, state["m"], state["v"], self.lr, self.beta1, self.beta2, self.eps, self.t, decay)
