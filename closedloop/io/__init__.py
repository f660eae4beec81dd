"""Run files: the only code that writes or reads them."""

from closedloop.io.hdf5 import FORMAT_VERSION, RunData, RunRecorder, load_run

__all__ = ["FORMAT_VERSION", "RunData", "RunRecorder", "load_run"]
