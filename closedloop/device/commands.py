"""Which command keys each device modality reads, and into which slot.

A controller commands the device through the slots of
:data:`closedloop.controllers.base.COMMAND_KEYS` (amplitude, frequency, pulse
width, pulses). Most modalities read those keys as they are; a modality whose
amplitude is not a current names its own key for the amplitude slot (TMS: the
intensity in percent of resting motor threshold, ``intensity_pct_rmt``) and
refuses the current key, which means nothing to its stimulator. The loop asks
the device once, at construction, for its :class:`ModalityCommands` and
renames each command with :meth:`ModalityCommands.to_slots`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["AMPLITUDE_SLOT", "ModalityCommands"]

#: The command key of the amplitude slot, as the device's kernels read it (mA).
AMPLITUDE_SLOT = "amplitude_ma"


@dataclass(frozen=True)
class ModalityCommands:
    """The command keys of one device modality.

    Parameters
    ----------
    modality : str
        The ``device.modality`` these keys belong to (for messages).
    amplitude_key : str, default "amplitude_ma"
        The command key the modality reads in the amplitude slot.
    amplitude_meaning : str, default "a current in mA"
        What that key's value is, with its unit (for messages).
    """

    modality: str
    amplitude_key: str = AMPLITUDE_SLOT
    amplitude_meaning: str = "a current in mA"

    @property
    def aliases(self) -> dict[str, str]:
        """Command keys read in place of a slot's key: ``{alias: slot key}``."""
        if self.amplitude_key == AMPLITUDE_SLOT:
            return {}
        return {self.amplitude_key: AMPLITUDE_SLOT}

    @property
    def refused(self) -> tuple[str, ...]:
        """Slot keys a controller must not send under this modality (their alias instead)."""
        return tuple(self.aliases.values())

    def refusal(self, key: str) -> str:
        """The sentence that refuses ``key`` (one of :attr:`refused`) under this modality."""
        return (
            f"device.modality is {self.modality}: the amplitude is {self.amplitude_meaning}, "
            f"given as {self.amplitude_key!r}, not {key!r}"
        )

    def to_slots(self, command: Mapping[str, Any]) -> Mapping[str, Any]:
        """``command`` with each alias renamed to its slot's key.

        Parameters
        ----------
        command : mapping of str to array
            What a controller returned.

        Returns
        -------
        mapping of str to array
            ``command`` itself when it holds no alias, else a renamed copy.

        Raises
        ------
        ValueError
            When ``command`` holds a key in :attr:`refused`.
        """
        # Called once per command: the one alias the modalities have, spelt out.
        key = self.amplitude_key
        if key == AMPLITUDE_SLOT:
            return command
        if AMPLITUDE_SLOT in command:
            refusal = self.refusal(AMPLITUDE_SLOT)
            raise ValueError(f"the controller sent {AMPLITUDE_SLOT!r}; {refusal}")
        if key not in command:
            return command
        out = dict(command)
        out[AMPLITUDE_SLOT] = out.pop(key)
        return out
