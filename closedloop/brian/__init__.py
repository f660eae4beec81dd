"""Brian2 spiking networks in the closed loop.

Modules, each importing only those before it: :mod:`~closedloop.brian.build`
(what a model's build receives and returns), :mod:`~closedloop.brian.runtime`
(targets, caches, clock, probes), :mod:`~closedloop.brian.open_loop`,
:mod:`~closedloop.brian.model` (the model contract),
:mod:`~closedloop.brian.network` (bring your own network),
:mod:`~closedloop.brian.registry`, :mod:`~closedloop.brian.operation` and
:mod:`~closedloop.brian.driver` (the loop's network operation),
:mod:`~closedloop.brian.codegen` and :mod:`~closedloop.brian.standalone`
(the loop as generated code), :mod:`~closedloop.brian.loop` (``BrianLoop``)
and :mod:`~closedloop.brian.config` (experiment files).

Import from the modules; this package file imports nothing, so that Brian2 is
only imported when a Brian2 model is used.
"""

__all__: list[str] = []
