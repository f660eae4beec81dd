"""The device's command queue: commands wait here until their step (the latency).

Every modality's kernel takes its commands from here in order, each from
its step on (:class:`closedloop.device.layout.DeviceState` holds the ring).
"""

from __future__ import annotations

from closedloop.core import kernel_cache  # noqa: F401  (sets the kernel cache directory first)
from closedloop.core.jit import njit
from closedloop.device.layout import (
    CMD_AMP,
    CMD_FREQ,
    CMD_PULSES,
    CMD_PW,
    QUEUE_COMMAND,
    QUEUE_STEP,
    QUEUE_TAIL,
)

__all__ = ["due_slot", "queue_push", "queue_push_one"]


@njit(cache=True, inline="always")
def queue_push_one(device, i, amplitude_ma, frequency_hz, pulse_width_us, pulses, effective_step):
    """Queue a command for instance ``i`` from step ``effective_step`` on.

    Commands apply in order, each from its step on, which is how the
    sensing-to-stimulation latency is kept.
    """
    q_eff = device[QUEUE_STEP]
    q_cmd = device[QUEUE_COMMAND]
    tail = device[QUEUE_TAIL]
    q_len = q_eff.shape[1]
    # No overflow check here: raising inside a prange body keeps Numba from
    # parallelising it. The loop sizes the queue for its latency (one command
    # per period, latency / period + 3 entries); queue_push checks.
    slot = tail[i] % q_len
    q_eff[i, slot] = effective_step
    q_cmd[i, slot, CMD_AMP] = amplitude_ma
    q_cmd[i, slot, CMD_FREQ] = frequency_hz
    q_cmd[i, slot, CMD_PW] = pulse_width_us
    q_cmd[i, slot, CMD_PULSES] = pulses
    tail[i] += 1


@njit(cache=True)
def queue_push(device, command, effective_step):
    """Queue ``command`` (amplitude mA, frequency Hz, width us, pulses) for every instance.

    A negative ``effective_step`` queues nothing.
    """
    if effective_step < 0:
        return
    q_len = device.queue_step.shape[1]
    n = device.state.shape[0]
    for i in range(n):
        if device.queue_tail[i] - device.queue_head[i] >= q_len:
            raise ValueError("device command queue is full")
    # Unpacked one by one: the three arrays may differ in type (e.g. read-only).
    amplitude, frequency, width, pulses = command
    for i in range(n):
        queue_push_one(device, i, amplitude[i], frequency[i], width[i], pulses[i], effective_step)


@njit(cache=True, inline="always")
def due_slot(device, i, head, step):
    """Slot of instance ``i``'s queued command at position ``head`` if due by ``step``, else -1."""
    q_eff = device.queue_step
    q_len = q_eff.shape[1]
    if head < device.queue_tail[i] and q_eff[i, head % q_len] <= step:
        return head % q_len
    return -1
