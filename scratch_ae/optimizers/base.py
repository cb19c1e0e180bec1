"""The optimizer interface: state keyed by full parameter names, updates outside backward."""
import numpy as np

from .. import validation
from ..backend import array_module, is_device_array


def flush_threshold(dtype):
    """tiny / eps: 9.9e-32 in float32, 1.0e-292 in float64 (tiny: the smallest normal number)."""
    info = np.finfo(dtype)
    return info.tiny / info.eps


def flush_tiny_values(array):
    """Set, in place, every entry of `array` whose magnitude is below `flush_threshold` to +0;
    NaN, inf and every larger number are left as they are.

    Why: on many x86 CPUs an arithmetic operation that reads or produces a subnormal number takes a
    slow microcode path, and Adam with an L2 penalty in the loss shrinks a weight that gets no data
    gradient (a pixel that is 0 in every image, a dead unit's weights) geometrically, through the
    smallest normal numbers into the subnormals, within a few thousand steps.  Products that read
    such a weight (x W, delta W^T, lambda W, g g) then make subnormal results and slow down many times
    over.  Below tiny / eps a value is also below anything a float sum of values of order eps or more
    can resolve, so setting it to 0 changes no result that a normal number could show.

    Derivation: derivations/optimizers.md#subnormals
    """
    xp = array_module(array)
    xp.copyto(array, 0, where=xp.abs(array) < flush_threshold(array.dtype))  # NaN < t is False: NaN stays


class Optimizer:
    """Updates parameters in place from their gradients.

    `step(params, grads)` takes two dicts with the same keys, the model's full
    parameter names ("layers.0.W", "layers.0.b", ...), so state never collides
    between layers.  `t` counts the steps taken (Adam's bias correction needs it).

    engine : "auto", "reference" or "fast" (scratch_ae.fast.resolve_engine), resolved per parameter
        array by its array module: "reference" steps with `update`, the readable form of the
        derivation; "fast" with `fast_update`, the fast engine's form where the optimizer has one
        (Adam, AdamW: scratch_ae/fast/adam.py).  The name is checked here; an engine the machine
        cannot run ("fast" on NumPy without Numba) is refused at the first step.
    """

    slots = ()  # names of the per-parameter state arrays, e.g. ("m", "v")

    def __init__(self, lr, engine="auto"):
        from ..fast import ENGINES
        self.lr = validation.number("lr", lr, low=0, low_open=True)
        self.engine = validation.choice("engine", engine, ENGINES)
        self.t = 0
        self.state = {}  # state[param_name][slot] -> array shaped like the parameter
        self._resolved = {}  # array module -> "reference" | "fast"

    def step(self, params, grads):
        """One update of every parameter: `update`, the readable reference, or `fast_update` where the
        engine resolves to "fast" for that parameter's array module; the choice is made here, outside
        both, so `update` reads as the derivation does."""
        missing = set(params) - set(grads)
        if missing:
            raise KeyError(f"no gradient for parameter(s): {', '.join(sorted(missing))}")
        self.t += 1
        for name, param in params.items():
            if name not in self.state:
                self.state[name] = {slot: array_module(param).zeros_like(param) for slot in self.slots}
            update = self.fast_update if self.engine_for(param) == "fast" else self.update
            update(name, param, grads[name], self.state[name])

    def engine_for(self, param):
        """The engine this optimizer runs on `param`'s array module: "reference" or "fast"."""
        xp = array_module(param)
        if xp not in self._resolved:
            from ..fast import resolve_engine
            self._resolved[xp] = resolve_engine(self.engine, xp)
        return self._resolved[xp]

    def update(self, name, param, grad, state):
        raise NotImplementedError

    def fast_update(self, name, param, grad, state):
        """The fast engine's form of `update`; an optimizer without one (SGD) runs `update` itself."""
        self.update(name, param, grad, state)

    def state_arrays(self):
        """Flat dict "<slot>.<param name>" -> array, for resumable checkpoints."""
        return {f"{slot}.{name}": arr for name, st in self.state.items() for slot, arr in st.items()}

    def load_state_arrays(self, arrays, t, like):
        """Restore from `state_arrays()` output; `like` maps param names to arrays on the target device."""
        self.t = int(t)
        self.state = {}
        for key, arr in arrays.items():
            slot, name = key.split(".", 1)
            self.state.setdefault(name, {})[slot] = _to_like(arr, like[name])


def _to_like(arr, ref):
    """Copy host array `arr` to the device and dtype of `ref`."""
    if is_device_array(ref):
        return array_module(ref).asarray(arr, dtype=ref.dtype)
    return array_module(ref).array(arr, dtype=ref.dtype)
