"""The ``neurofeedback:`` block of an experiment file: its schema and the process it builds.

::

    neurofeedback:
      parameter: theta            # model parameter the mental action adds to (modulatable)
      effects: [-0.25, 0.0, 0.25, 0.5]   # per mental action, parameter units
      readout: biomarker          # what the display shows (a slow-process readout)
      direction: down             # instructed direction: down | up
      display_rate_hz: 1.0        # display frames per s (the subject's clock)
      latency_s: 1.0              # feedback latency, s (whole frames)
      rest_s: 5.0                 # baseline block, s
      regulate_s: 10.0            # regulate block, s
      blocks_per_run: 4
      runs_per_session: 2
      sessions: 3
      transfer_runs: 1            # runs without feedback after training
      learning_rate: 0.2          # alpha
      trace_s: 2.0                # eligibility time constant, s
      temperature: 0.03           # softmax temperature, reward units
      initial_value: 0.0
      action_noise: 0.05          # execution noise SD, parameter units
      hold_s: null                # keep a chosen action this long (default one frame)
      feedback: continuous        # or intermittent: one value per regulate block
      hemodynamic: false          # show the readout through the canonical HRF (fMRI)
      sham: {instances: 0, source: yoked}   # the last k instances: sham feedback

See :class:`closedloop.neurofeedback.process.Neurofeedback` for the meaning of
each key. Problems are reported with their key path.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from closedloop.neurofeedback.process import Neurofeedback

__all__ = ["NeurofeedbackSection", "ShamSection", "neurofeedback_process"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ShamSection(_Strict):
    """The sham-feedback arm: the last ``instances`` instances."""

    instances: int = Field(0, ge=0, description="instances in the sham arm")
    source: Literal["yoked", "shuffled"] = "yoked"


class NeurofeedbackSection(_Strict):
    """A simulated neurofeedback subject (see closedloop.neurofeedback.process)."""

    parameter: str
    effects: list[float] = Field(min_length=1, description="per action, parameter units")
    readout: str = "biomarker"
    direction: Literal["down", "up"] = "down"
    display_rate_hz: float = Field(1.0, gt=0, description="display frames per s")
    latency_s: float = Field(0.0, ge=0, description="feedback latency, s")
    rest_s: float = Field(5.0, gt=0, description="baseline block, s")
    regulate_s: float = Field(10.0, gt=0, description="regulate block, s")
    blocks_per_run: int = Field(4, ge=1)
    runs_per_session: int = Field(2, ge=1)
    sessions: int = Field(3, ge=1)
    transfer_runs: int = Field(1, ge=0)
    learning_rate: float = Field(0.2, gt=0, le=1)
    trace_s: float = Field(2.0, gt=0, description="eligibility time constant, s")
    temperature: float = Field(0.03, gt=0, description="softmax temperature, reward units")
    initial_value: float = 0.0
    action_noise: float = Field(0.05, ge=0, description="execution noise SD, parameter units")
    hold_s: float | None = Field(None, gt=0, description="action kept this long, s")
    feedback: Literal["continuous", "intermittent"] = "continuous"
    hemodynamic: bool = False
    sham: ShamSection = ShamSection()


def neurofeedback_process(
    section: NeurofeedbackSection,
    model: Any,
    n_instances: int,
    offered: tuple[str, ...] | None,
    problems: list[tuple[str, str]],
) -> Neurofeedback | None:
    """The subject a ``neurofeedback:`` block asks for, or None (problems appended).

    Parameters
    ----------
    section : NeurofeedbackSection
        The validated block.
    model : NumbaModel or None
        The experiment's model (its modulatable parameters and values).
    n_instances : int
        Batch size (the sham arm must leave a real subject to yoke to).
    offered : tuple of str or None
        Readouts the loop offers a slow process (None: unknown).
    problems : list of (key path, message)
        Where problems are appended.
    """
    ok = True
    if model is not None and section.parameter not in model.modulatable:
        problems.append(
            (
                "neurofeedback.parameter",
                f"model {model.name!r} does not let {section.parameter!r} change while it "
                f"runs; modulatable: {', '.join(model.modulatable) or 'none'}",
            )
        )
        ok = False
    if offered is not None and section.readout not in offered:
        problems.append(
            (
                "neurofeedback.readout",
                f"{section.readout!r} is not something the loop offers a slow process; "
                f"known: {', '.join(sorted(offered))}",
            )
        )
        ok = False
    sham = section.sham
    if sham.instances > n_instances or (
        sham.source == "yoked" and sham.instances and sham.instances >= n_instances
    ):
        problems.append(
            (
                "neurofeedback.sham.instances",
                f"{sham.instances} sham instances out of n_instances = {n_instances}: a yoked "
                "sham arm needs at least one real-feedback instance",
            )
        )
        ok = False
    if not ok or model is None:
        return None
    settings = section.model_dump(exclude={"sham"})
    try:
        return Neurofeedback(
            base=model.param_values[section.parameter],
            sham_instances=sham.instances,
            sham_source=sham.source,
            **settings,
        )
    except ValueError as exc:
        text = str(exc)
        key = text.split(" ", 1)[0] if text.startswith("neurofeedback.") else "neurofeedback"
        problems.append((key, text))
        return None
