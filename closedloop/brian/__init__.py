"""Brian2 spiking networks in the closed loop: model base, loop, code generation.

Import from the modules; this package file imports nothing, so that Brian2 is
only imported when a Brian2 model is used.
"""

__all__: list[str] = []
