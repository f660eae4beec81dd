"""Neural population models (Numba kernels), importable as ``closedloop.models``."""

__all__: list[str] = []
