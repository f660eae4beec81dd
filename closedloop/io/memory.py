"""A run recorder that writes its HDF5 file into memory, never to the disk.

:class:`MemoryRunRecorder` is :class:`~closedloop.io.hdf5.RunRecorder` with
the file opened on an :class:`io.BytesIO` buffer (h5py's file-like-object
driver): the same writer code lays out the same groups, datasets and
attributes, and :meth:`MemoryRunRecorder.run_data` reads them back with
the same reader as :func:`~closedloop.io.load_run`. It is what
:func:`closedloop.run` uses, through :func:`closedloop.io.open_recorder`
with the format :data:`MEMORY_FORMAT`.
"""

from __future__ import annotations

import io

import h5py

from closedloop.io.hdf5 import RunRecorder
from closedloop.io.reader import RunData, load_run

__all__ = ["MEMORY_FORMAT", "MemoryRunRecorder"]

#: Format name of the in-memory recorder (for :func:`closedloop.io.open_recorder`;
#: not an ``output.format`` of a config, which names a file format).
MEMORY_FORMAT = "memory"


class MemoryRunRecorder(RunRecorder):
    """Write a run's HDF5 file to a buffer in memory (see the module docstring).

    Takes the arguments of :class:`~closedloop.io.hdf5.RunRecorder`; ``path``
    only names the run (its stem is the run's name in :class:`RunData`): no
    directory is created, no lock or ``.partial`` file is written.
    """

    def _create_file(self) -> h5py.File:
        self._buffer = io.BytesIO()
        return h5py.File(self._buffer, "w")

    def _publish(self) -> None:
        """Nothing to move: the finished file is the buffer."""

    def _check_room(self, nbytes: int) -> None:
        """Memory runs out as a MemoryError, not as a half-written file."""

    def _abandon(self, keep_partial: bool = False) -> None:
        self._closed = True
        file, self._file = self._file, None
        self._timeseries.clear()
        self._clocks.clear()
        if file is not None and file.id.valid:
            file.close()

    def run_data(self, *, data: bool = True) -> RunData:
        """The finished run, read back from the buffer.

        Parameters
        ----------
        data : bool, optional
            See :func:`~closedloop.io.load_run`.

        Returns
        -------
        RunData
            With :attr:`RunData.path` the nominal path given to the recorder.

        Raises
        ------
        RuntimeError
            Before :meth:`close`.
        """
        if not self.closed:
            raise RuntimeError(f"{self.path}: close the recorder before reading its run")
        self._buffer.seek(0)
        return load_run(self.path, data=data, image=self._buffer)
