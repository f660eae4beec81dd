"""The neurofeedback protocol: sessions of runs of rest and regulate blocks, then transfer.

A neurofeedback study (Sitaram et al. 2017) trains over sessions, each of a
few runs; a run alternates baseline (rest or passive viewing) blocks with
regulate blocks in which the subject tries to move the feedback signal.
After training, transfer runs repeat the design without feedback: what is
left is the self-regulation learnt. Everything is counted in display frames
(one frame per ``1 / display_rate_hz`` s), the clock on which the subject
sees the display and acts.

References
----------
Sitaram R, Ros T, Stoeckel L, et al. (2017) Closed-loop brain training: the
science of neurofeedback. Nat Rev Neurosci 18:86-100.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Frame", "TrainingSchedule"]


@dataclass(frozen=True)
class Frame:
    """Where one display frame lies in the protocol.

    Attributes
    ----------
    run : int
        Run index from 0 (training runs first, then transfer runs); -1 after
        the protocol.
    session : int
        Training session from 0; transfer runs carry ``sessions``.
    feedback : bool
        Whether the display shows feedback in this run (training).
    regulate : bool
        A regulate block (else baseline, or after the protocol).
    block_start : bool
        The first frame of a regulate block.
    run_end : bool
        The last frame of its run.
    """

    run: int
    session: int
    feedback: bool
    regulate: bool
    block_start: bool
    run_end: bool


@dataclass(frozen=True)
class TrainingSchedule:
    """Frames of a protocol of training sessions and transfer runs.

    Parameters
    ----------
    rest_frames, regulate_frames : int
        Frames per baseline block and per regulate block.
    blocks_per_run : int
        Baseline-regulate pairs per run (each run starts with a baseline).
    runs_per_session, sessions : int
        Training runs (with feedback) per session, and sessions.
    transfer_runs : int
        Runs without feedback after training.
    """

    rest_frames: int
    regulate_frames: int
    blocks_per_run: int
    runs_per_session: int
    sessions: int
    transfer_runs: int

    @property
    def run_frames(self) -> int:
        """Frames per run."""
        return self.blocks_per_run * (self.rest_frames + self.regulate_frames)

    @property
    def training_runs(self) -> int:
        """Runs with feedback."""
        return self.sessions * self.runs_per_session

    @property
    def total_runs(self) -> int:
        """Training and transfer runs."""
        return self.training_runs + self.transfer_runs

    @property
    def total_frames(self) -> int:
        """Frames of the whole protocol."""
        return self.total_runs * self.run_frames

    def frame(self, f: int) -> Frame:
        """Where frame ``f`` (from 0) lies."""
        if f < 0 or f >= self.total_frames:
            return Frame(-1, -1, False, False, False, False)
        run, within = divmod(f, self.run_frames)
        in_block = within % (self.rest_frames + self.regulate_frames)
        feedback = run < self.training_runs
        return Frame(
            run=run,
            session=run // self.runs_per_session if feedback else self.sessions,
            feedback=feedback,
            regulate=in_block >= self.rest_frames,
            block_start=in_block == self.rest_frames,
            run_end=within == self.run_frames - 1,
        )
