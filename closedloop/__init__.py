"""closedloop: closed-loop neurostimulation simulation.

Neural population models are driven by swappable controllers through a
causal sensing chain and a virtual stimulator that enforces its safety
limits; results stream to HDF5.
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
