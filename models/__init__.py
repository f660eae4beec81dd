"""Neural population models (Numba kernels), importable as ``closedloop.models``."""

from closedloop.models.stn_gpe import STNGPe

__all__ = ["BUILTIN_MODELS", "STNGPe"]

#: Registry name to model class.
BUILTIN_MODELS = {STNGPe.name: STNGPe}
