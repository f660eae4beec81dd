"""Neurofeedback: a simulated subject who learns to regulate its own biomarker.

:class:`Neurofeedback` is a slow process (:mod:`closedloop.core.slow`) on the
display's clock: one step per display frame (``1 / display_rate_hz`` s). At
the end of every frame it

1. reads the frame's biomarker (the mean over the frame of a readout: by
   default the sensing chain's ``biomarker``; in the fear-model experiment
   the envelope of the cue-evoked basal amygdala response);
2. in a regulate block of a training run, shows the value measured
   ``latency_s`` earlier as percent signal change from the preceding
   baseline block (the usual display of fMRI neurofeedback; with
   ``feedback="intermittent"`` one value per block instead), and the subject
   learns from it (:class:`~closedloop.neurofeedback.learner.TraceLearner`:
   softmax choice among mental actions, values from feedback shared by an
   eligibility trace);
3. picks the mental action of the next frame and sets the model parameter
   it acts on.

Why a slow process and not a controller: the subject acts on the brain, not
through the stimulator. The device is the display; the mental action is a
top-down input that enters the model as a declared-modulatable parameter,
exactly where a drug or drift would. The display frame (0.5-2 s in fMRI
neurofeedback, 0.1-1 s in EEG neurofeedback) is slow against the neural
clock, and the slow clock already makes the frames fall on the same
control periods however a run is chunked.

The mental action's mapping (a modelling choice, documented per model in
the experiment file): action ``k`` adds ``effects[k]`` (parameter units)
plus execution noise ``N(0, action_noise)`` to the model parameter's
configured value for the frame. On the fear model
(:mod:`closedloop.models.fear_extinction`) the parameter is the sigmoid
threshold ``theta`` of both basal amygdala populations: raising it is a
top-down inhibitory input subtracted from their input ``I_i``, as prefrontal
regulation of the amygdala through the intercalated and local interneurons
would be (a reduction of a mechanism; the strategies and their effect sizes
are choices, not measured).

A hemodynamic display (``hemodynamic=True``) stands for fMRI neurofeedback:
the displayed signal is the frames' readout convolved causally with the
canonical double-gamma haemodynamic response (SPM's ``spm_hrf``: gamma
densities of shape 6 and 16 with unit scale, the second weighted 1/6, over
32 s; recalled, not checked against the SPM source), normalised to unit
sum, so the display lags the brain by about 5 s and blurs it over several
frames; baselines and block values are taken on the displayed signal, while
the run regulation metrics stay on the neural readout itself.

Sham feedback, the control arm of the field (Sitaram et al. 2017): the last
``sham_instances`` instances see not their own signal but either a yoked
real subject's display (``yoked``: instance ``i`` sees instance
``i mod n_real``, the design of yoked-sham studies) or their own display
from a random earlier frame (``shuffled``). They learn from it by the same
rule, so any regulation they show is not specific to the feedback.

Outcomes (metrics, per instance): the regulation of each run
(``100 (regulate - baseline) / baseline``, %) as a learning curve (the
``runs`` event table), the first and last training runs, the transfer runs
without feedback, and the transfer ratio.

References
----------
Oblak EF, Lewis-Peacock JA, Sulzer JS (2017) PLoS Comput Biol 13:e1005681.
Sitaram R, Ros T, Stoeckel L, et al. (2017) Nat Rev Neurosci 18:86-100.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np

from closedloop.core.slow import SlowProcess
from closedloop.neurofeedback.learner import TraceLearner
from closedloop.neurofeedback.schedule import Frame, TrainingSchedule

__all__ = ["FEEDBACK_MODES", "SHAM_SOURCES", "Neurofeedback", "hrf_weights"]

#: How the display shows the signal: every frame, or once per regulate block.
FEEDBACK_MODES = ("continuous", "intermittent")

#: Where a sham subject's display comes from.
SHAM_SOURCES = ("yoked", "shuffled")
_HISTORY = 512  # frames of a subject's own display kept for shuffled sham


def hrf_weights(frame_s: float, length_s: float = 32.0) -> np.ndarray:
    """Canonical double-gamma haemodynamic response sampled per frame, unit sum.

    ``h(t) = g(t; 6) - g(t; 16) / 6`` with ``g(t; k) = t^(k-1) exp(-t) / (k-1)!``
    (t in s; SPM's canonical response, recalled), at ``t = 0, frame_s, ...``
    up to ``length_s``.

    Parameters
    ----------
    frame_s : float
        Display frame, s.
    length_s : float
        Support of the response, s.

    Returns
    -------
    ndarray
        Weight ``[k]`` of the frame ``k`` frames ago (sums to 1).
    """
    t = np.arange(0.0, length_s + 1e-9, frame_s)
    h = t**5 * np.exp(-t) / math.factorial(5) - t**15 * np.exp(-t) / math.factorial(15) / 6.0
    return h / h.sum()


def _whole(value_s: float, frame_s: float, key: str, minimum: int = 0) -> int:
    frames = value_s / frame_s
    k = round(frames)
    if abs(frames - k) > 1e-9 * max(1.0, frames) or k < minimum:
        raise ValueError(
            f"neurofeedback.{key} ({value_s:g} s) must be a whole number (at least {minimum}) "
            f"of display frames of {frame_s:g} s"
        )
    return k


class Neurofeedback(SlowProcess):
    """A subject learning to regulate a biomarker from a delayed display.

    Parameters
    ----------
    parameter : str
        Model parameter the mental action adds to (declared modulatable).
    base : float or array_like
        That parameter's configured value (per instance), parameter units.
    effects : sequence of float
        Each mental action's added input, parameter units.
    readout : str
        Readout shown on the display (see :meth:`SlowProcess.advance`).
    direction : {"down", "up"}
        The instructed direction: reward is the displayed percent change
        (negated for ``down``) / 100.
    display_rate_hz : float
        Display frames per second (the process's step is one frame).
    latency_s : float
        Feedback latency, s: the display shows the frame measured this long
        ago (a whole number of frames).
    rest_s, regulate_s : float
        Baseline and regulate block lengths, s (whole frames; at least one
        baseline frame).
    blocks_per_run, runs_per_session, sessions, transfer_runs : int
        The protocol (:class:`~closedloop.neurofeedback.schedule.TrainingSchedule`).
    learning_rate, trace_s, temperature, initial_value : float
        The rule: ``alpha``, the eligibility time constant (s; ``lambda =
        exp(-frame / trace_s)``), the softmax temperature and initial value
        (reward units).
    action_noise : float
        Execution noise of a mental action, SD in parameter units per frame.
    hold_s : float
        How long a chosen action is kept, s (whole frames; a new choice at
        the start of every regulate block and every ``hold_s`` within it).
    sham_instances : int
        The last this many instances get sham feedback.
    sham_source : {"yoked", "shuffled"}
        Where their display comes from.
    feedback : {"continuous", "intermittent"}
        ``continuous``: every regulate frame shows the frame measured
        ``latency_s`` earlier; ``intermittent``: one value per regulate block,
        the block's mean percent change, shown ``latency_s`` after its last
        frame (at most ``rest_s``), the subject's eligibility as at the
        block's end (Oblak et al. 2017 compare the two).
    """

    def __init__(
        self,
        parameter: str,
        base: float | Sequence[float] | np.ndarray,
        effects: Sequence[float],
        readout: str = "biomarker",
        direction: str = "down",
        display_rate_hz: float = 1.0,
        latency_s: float = 0.0,
        rest_s: float = 5.0,
        regulate_s: float = 10.0,
        blocks_per_run: int = 4,
        runs_per_session: int = 2,
        sessions: int = 3,
        transfer_runs: int = 1,
        learning_rate: float = 0.2,
        trace_s: float = 2.0,
        temperature: float = 0.03,
        initial_value: float = 0.0,
        action_noise: float = 0.05,
        hold_s: float | None = None,
        sham_instances: int = 0,
        sham_source: str = "yoked",
        feedback: str = "continuous",
        hemodynamic: bool = False,
    ) -> None:
        self.name = "nf"
        if not (math.isfinite(display_rate_hz) and display_rate_hz > 0):
            raise ValueError(
                f"neurofeedback.display_rate_hz must be positive, got {display_rate_hz}"
            )
        self.period_s = 1.0 / display_rate_hz
        if direction not in ("down", "up"):
            raise ValueError(f"neurofeedback.direction must be 'down' or 'up', got {direction!r}")
        if sham_source not in SHAM_SOURCES:
            raise ValueError(
                f"neurofeedback.sham_source must be one of {', '.join(SHAM_SOURCES)}, "
                f"got {sham_source!r}"
            )
        if feedback not in FEEDBACK_MODES:
            raise ValueError(
                f"neurofeedback.feedback must be one of {', '.join(FEEDBACK_MODES)}, "
                f"got {feedback!r}"
            )
        self.feedback = feedback
        self.hemodynamic = bool(hemodynamic)
        if len(effects) < 1:
            raise ValueError("neurofeedback.effects must list at least one mental action")
        if not (math.isfinite(trace_s) and trace_s > 0):
            raise ValueError(f"neurofeedback.trace_s must be positive, got {trace_s}")
        if action_noise < 0:
            raise ValueError(f"neurofeedback.action_noise must be >= 0, got {action_noise}")
        self.parameter = parameter
        self.base = np.asarray(base, dtype=float)
        self.effects = np.asarray(effects, dtype=float)
        self.readout = readout
        self.direction = direction
        self.latency_frames = _whole(latency_s, self.period_s, "latency_s")
        self.hold_frames = _whole(
            self.period_s if hold_s is None else hold_s, self.period_s, "hold_s", 1
        )
        self.schedule = TrainingSchedule(
            rest_frames=_whole(rest_s, self.period_s, "rest_s", 1),
            regulate_frames=_whole(regulate_s, self.period_s, "regulate_s", 1),
            blocks_per_run=int(blocks_per_run),
            runs_per_session=int(runs_per_session),
            sessions=int(sessions),
            transfer_runs=int(transfer_runs),
        )
        for key in ("blocks_per_run", "runs_per_session", "sessions"):
            if getattr(self.schedule, key) < 1:
                raise ValueError(f"neurofeedback.{key} must be at least 1")
        if feedback == "intermittent" and self.latency_frames > self.schedule.rest_frames:
            raise ValueError(
                f"neurofeedback.latency_s ({latency_s:g} s) must not exceed rest_s "
                f"({rest_s:g} s) with intermittent feedback: a block's feedback must arrive "
                "before the next block starts"
            )
        if self.schedule.transfer_runs < 0:
            raise ValueError("neurofeedback.transfer_runs must be >= 0")
        self.learner = TraceLearner(
            len(self.effects),
            learning_rate,
            math.exp(-self.period_s / trace_s),
            temperature,
            initial_value,
        )
        self.action_noise = float(action_noise)
        self.sham_instances = int(sham_instances)
        self.sham_source = sham_source

    @property
    def duration_s(self) -> float:
        """Length of the whole protocol (training and transfer runs), s."""
        return self.schedule.total_frames * self.period_s

    # -- the SlowProcess contract ------------------------------------------------
    def reset(self, n: int, seeds: Sequence[np.random.SeedSequence]) -> None:
        """Naive subjects at the start of the first baseline block."""
        k = self.sham_instances
        if not 0 <= k <= n or (k and self.sham_source == "yoked" and k == n):
            raise ValueError(
                f"neurofeedback.sham_instances ({k}) must leave at least one real-feedback "
                f"instance to yoke to (n_instances = {n})"
                if k <= n
                else f"neurofeedback.sham_instances ({k}) exceeds n_instances ({n})"
            )
        self.n_ = n
        self.rngs_ = [np.random.default_rng(s) for s in seeds]
        self.learner.reset(n)
        self.sham_ = np.arange(n) >= n - k
        self.partner_ = np.where(self.sham_, np.arange(n) % max(n - k, 1), np.arange(n))
        self.measured_hist_ = np.full((n, self.latency_frames + 1), np.nan)
        self.hrf_ = hrf_weights(self.period_s) if self.hemodynamic else np.ones(1)
        self.raw_hist_ = np.full((n, self.hrf_.size), np.nan)  # newest first
        self.own_hist_ = np.full((n, _HISTORY), np.nan)
        self.own_count_ = 0
        self.reference_ = np.full(n, np.nan)
        self.block_sum_ = np.zeros(n)
        self.block_count_ = 0
        self.run_sums_ = np.zeros((n, 2))  # baseline, regulate
        self.run_counts_ = np.zeros(2)
        self.regulation_ = np.full((n, self.schedule.total_runs), np.nan)
        self.action_ = np.full(n, -1)
        self.input_ = np.zeros(n)
        self.display_ = np.full(n, np.nan)
        self.measured_ = np.full(n, np.nan)
        self.block_reg_ = np.zeros(n)  # sum of the regulate block's measurements
        self.block_reg_count_ = 0
        self.pending_ = np.full(n, np.nan)  # intermittent: the block's value, until shown
        self.pending_frame_ = -1
        self.events_: list[tuple] = []

    def advance(self, t_s: float, dt_s: float, readout: Mapping[str, np.ndarray]) -> None:
        """One display frame: measure, show, learn, choose the next action."""
        if abs(dt_s - self.period_s) > 1e-9 * self.period_s:
            raise ValueError(
                "neurofeedback steps on every display frame; it cannot cover the gaps of an "
                "epoch schedule (leave out slow:)"
            )
        if self.readout not in readout:
            raise KeyError(f"neurofeedback reads {self.readout!r}, which the loop does not offer")
        f = round(t_s / self.period_s) - 1
        fr = self.schedule.frame(f)
        m = np.asarray(readout[self.readout], dtype=float)
        self.measured_ = m.copy()
        # What the display is built from: the readout, or its haemodynamic
        # response (history padded with the first frame, as if at rest before).
        self.raw_hist_ = np.roll(self.raw_hist_, 1, axis=1)
        self.raw_hist_[:, 0] = m
        if f == 0:
            self.raw_hist_[:, 1:] = m[:, None]
        signal = self.raw_hist_ @ self.hrf_
        self.measured_hist_[:, f % (self.latency_frames + 1)] = signal
        self._bookkeep(t_s, fr, m, signal)
        self.display_ = np.full(self.n_, np.nan)
        draws = np.array([rng.random(4) for rng in self.rngs_])  # choice, noise (2), sham
        if self.feedback == "continuous":
            if fr.feedback and fr.regulate and f >= self.latency_frames:
                shown = self.measured_hist_[
                    :, (f - self.latency_frames) % (self.latency_frames + 1)
                ]
                self._show(100.0 * (shown - self.reference_) / np.abs(self.reference_), draws[:, 3])
        else:
            self._intermittent(f, fr, draws[:, 3])
        self._next_action(f + 1, draws)

    def _intermittent(self, f: int, fr: Frame, uniforms: np.ndarray) -> None:
        """Collect a regulate block's frames; show their mean ``latency_s`` after its end."""
        if fr.feedback and fr.regulate:
            self.block_reg_ += self.measured_hist_[:, f % (self.latency_frames + 1)]
            self.block_reg_count_ += 1
            if not self.schedule.frame(f + 1).regulate:  # the block's last frame
                mean = self.block_reg_ / self.block_reg_count_
                self.pending_ = 100.0 * (mean - self.reference_) / np.abs(self.reference_)
                self.pending_frame_ = f + self.latency_frames
                self.block_reg_[:] = 0.0
                self.block_reg_count_ = 0
        if f == self.pending_frame_:
            self._show(self.pending_, uniforms)
            self.pending_frame_ = -1

    def _bookkeep(self, t_s: float, fr: Frame, m: np.ndarray, signal: np.ndarray) -> None:
        """Baseline reference (of the displayed ``signal``) per block; regulation (of
        the readout ``m``) per run."""
        if fr.run < 0:
            return
        if fr.block_start:
            self.reference_ = self.block_sum_ / max(self.block_count_, 1)
            self.block_sum_[:] = 0.0
            self.block_count_ = 0
        if not fr.regulate:
            self.block_sum_ += signal
            self.block_count_ += 1
        self.run_sums_[:, int(fr.regulate)] += m
        self.run_counts_[int(fr.regulate)] += 1
        if fr.run_end:
            rest, reg = self.run_sums_.T / np.maximum(self.run_counts_, 1)[:, None]
            pct = 100.0 * (reg - rest) / np.abs(rest)
            self.regulation_[:, fr.run] = pct
            for i in range(self.n_):
                self.events_.append(
                    (t_s, i, fr.run, fr.session, int(fr.feedback), int(self.sham_[i]),
                     rest[i], reg[i], pct[i])
                )  # fmt: skip
            self.run_sums_[:] = 0.0
            self.run_counts_[:] = 0.0

    def _show(self, own: np.ndarray, uniforms: np.ndarray) -> None:
        """Show each subject its percent change ``own`` (sham: another's) and learn from it."""
        display = own.copy()
        if self.sham_source == "yoked":
            display[self.sham_] = own[self.partner_[self.sham_]]
        else:
            count = min(self.own_count_, _HISTORY)
            if count:
                pick = np.minimum((uniforms * count).astype(int), count - 1)
                past = self.own_hist_[np.arange(self.n_), pick]
                display[self.sham_] = past[self.sham_]
            else:
                display[self.sham_] = np.nan
        self.own_hist_[:, self.own_count_ % _HISTORY] = own
        self.own_count_ += 1
        self.display_ = display
        sign = -1.0 if self.direction == "down" else 1.0
        self.learner.credit(sign * display / 100.0, np.isfinite(display))

    def _next_action(self, g: int, draws: np.ndarray) -> None:
        """Choose (or keep) the action of frame ``g`` and set the top-down input."""
        nf = self.schedule.frame(g)
        if not nf.regulate:
            self.action_ = np.full(self.n_, -1)
            self.input_ = np.zeros(self.n_)
            return
        s = self.schedule
        k = (g % s.run_frames) % (s.rest_frames + s.regulate_frames) - s.rest_frames
        everyone = np.ones(self.n_, dtype=bool)
        if nf.block_start:
            self.learner.clear_trace(everyone)
        if k % self.hold_frames == 0:
            self.action_ = self.learner.choose(draws[:, 0])
        self.learner.act(self.action_, everyone)
        # Box-Muller from two uniforms: a fixed number of draws per frame and instance.
        noise = np.sqrt(-2.0 * np.log1p(-draws[:, 1])) * np.cos(2.0 * np.pi * draws[:, 2])
        self.input_ = self.effects[self.action_] + self.action_noise * noise

    def modulation(self) -> dict[str, np.ndarray]:
        """The acted-on parameter: configured value plus this frame's top-down input."""
        return {self.parameter: np.broadcast_to(self.base, (self.n_,)) + self.input_}

    def series(self) -> dict[str, tuple[str, str]]:
        """Per frame: input, action, display, measurement, choice probabilities."""
        out = {
            "input": ("parameter units", f"top-down input added to {self.parameter!r} this frame"),
            "action": ("1", "mental action of the next frame (-1: baseline, no regulation)"),
            "display_pct": ("%", "feedback shown (percent change from baseline; NaN: none)"),
            "measured": ("readout units", f"mean {self.readout} over the frame"),
        }
        for k in range(len(self.effects)):
            out[f"p_action{k}"] = ("1", f"probability of choosing action {k} now")
        return out

    def values(self) -> dict[str, np.ndarray]:
        """The current value of every series, ``(n,)`` each."""
        out = {
            "input": self.input_.copy(),
            "action": self.action_.astype(float),
            "display_pct": self.display_.copy(),
            "measured": self.measured_.copy(),
        }
        p = self.learner.probabilities()
        for k in range(len(self.effects)):
            out[f"p_action{k}"] = p[:, k].copy()
        return out

    def event_tables(self) -> dict[str, tuple[dict[str, tuple[str, str]], str]]:
        """``runs``: one row per run and instance (the learning curve)."""
        fields = {
            "time_s": ("f8", "s"),
            "instance": ("i8", "1"),
            "run": ("i8", "1"),
            "session": ("i8", "1"),
            "feedback": ("i8", "1"),
            "sham": ("i8", "1"),
            "baseline_mean": ("f8", "readout units"),
            "regulate_mean": ("f8", "readout units"),
            "regulation_pct": ("f8", "%"),
        }
        return {
            "runs": (
                fields,
                "each run: session (transfer runs: sessions), feedback shown (1) or transfer "
                "(0), sham arm, mean readout in baseline and regulate blocks, regulation "
                "100 (regulate - baseline) / baseline",
            )
        }

    def drain_events(self) -> dict[str, dict[str, np.ndarray]]:
        """Runs completed since the last call."""
        if not self.events_:
            return {}
        names = tuple(self.event_tables()["runs"][0])
        cols = list(zip(*self.events_, strict=True))
        self.events_ = []
        return {"runs": {k: np.asarray(v) for k, v in zip(names, cols, strict=True)}}

    def metrics(self) -> dict[str, tuple[np.ndarray, str, str]]:
        """Learning, its transfer without feedback, and the arm."""
        s = self.schedule
        reg = self.regulation_
        last = reg[:, s.training_runs - 1]
        transfer = (
            np.nanmean(reg[:, s.training_runs :], axis=1)
            if s.transfer_runs and not np.all(np.isnan(reg[:, s.training_runs :]))
            else np.full(self.n_, np.nan)
        )
        return {
            "nf_regulation_first_pct": (reg[:, 0].copy(), "%", "regulation in the first run"),
            "nf_regulation_last_pct": (
                last.copy(),
                "%",
                "regulation in the last training run (with feedback)",
            ),
            "nf_learning_pct": (
                last - reg[:, 0],
                "%",
                "last minus first training run (negative: learnt down)",
            ),
            "nf_transfer_pct": (transfer, "%", "regulation in the transfer runs (no feedback)"),
            "nf_transfer_ratio": (
                transfer / last,
                "1",
                "transfer / last training run: share of regulation kept",
            ),
            "nf_sham": (self.sham_.astype(float), "1", "1: sham-feedback arm, 0: real feedback"),
        }
