"""The simulated subject's learning rule: mental actions valued from delayed feedback.

A neurofeedback subject does not know which mental strategy moves the
target region; it tries strategies, watches the feedback and comes to
prefer those that were followed by good feedback. Following the
reinforcement-learning subject of Oblak, Lewis-Peacock & Sulzer (2017), the
subject here chooses among ``K`` discrete mental actions and learns a value
per action from the feedback it sees. The feedback arrives late (display
latency) and each value is read off a signal that mixes the effects of
several recent actions, so credit is assigned through an eligibility trace.

The rule (per instance, per display frame ``t``)::

    choice       P(a) = exp(Q_a / T) / sum_b exp(Q_b / T)          (softmax)
    trace        e <- lambda e;  e_a(t) <- e_a(t) + 1               (accumulating)
    credit       w_k = e_k / sum_j e_j
    update       Q_k <- Q_k + alpha w_k (r_t - Q_k)                 (every k)

with ``lambda = exp(-frame_s / trace_s)``. The update is the delta rule
(Rescorla-Wagner; the incremental mean of Sutton & Barto 2018, ch. 2) with
each frame's reward shared among the recent actions in proportion to their
eligibility (the accumulating trace of Sutton & Barto 2018, ch. 12). With a
single action always chosen, ``w = 1`` and ``Q`` after ``m`` constant rewards
``r`` is ``r (1 - (1 - alpha)^m)``. When the reward at frame ``t`` is caused
by the action of frame ``t - L`` (latency ``L`` frames) and actions change
every frame, the weight of the causal action in ``w`` falls roughly as
``lambda^L``: the contrast between the learned values shrinks with latency,
and with it how selective the subject becomes (the credit-assignment
problem Oblak et al. 2017 put at the heart of non-responders).

Sharing the reward by normalised eligibility (rather than scaling the step
by the raw trace) and the softmax choice are modelling choices: the
normalisation keeps each value an average of rewards in reward units, so the
temperature ``T`` reads in the same units as the reward.

References
----------
Oblak EF, Lewis-Peacock JA, Sulzer JS (2017) Self-regulation strategy,
feedback timing and hemodynamic properties modulate learning in a simulated
fMRI neurofeedback environment. PLoS Comput Biol 13:e1005681.
Sutton RS, Barto AG (2018) Reinforcement Learning: An Introduction, 2nd ed.
MIT Press (ch. 2 incremental action values, ch. 12 eligibility traces).
"""

from __future__ import annotations

import numpy as np

__all__ = ["TraceLearner", "softmax"]


def softmax(values: np.ndarray, temperature: float) -> np.ndarray:
    """Choice probabilities ``exp(Q/T) / sum exp(Q/T)`` along the last axis.

    Parameters
    ----------
    values : ndarray, shape (..., K)
        Action values, reward units.
    temperature : float
        Exploration temperature ``T`` > 0, reward units.

    Returns
    -------
    ndarray, shape (..., K)
        Probabilities summing to 1 along the last axis.
    """
    z = np.asarray(values, dtype=float) / temperature
    z = z - z.max(axis=-1, keepdims=True)
    p = np.exp(z)
    return p / p.sum(axis=-1, keepdims=True)


class TraceLearner:
    """Action values of ``n`` subjects learnt from delayed feedback (see the module notes).

    Parameters
    ----------
    n_actions : int
        Number of mental actions ``K``.
    learning_rate : float
        ``alpha`` in (0, 1], per credited frame.
    trace_decay : float
        ``lambda`` in [0, 1): the eligibility kept from one frame to the next.
    temperature : float
        Softmax temperature ``T`` > 0, reward units.
    initial_value : float
        ``Q`` of every action before any feedback, reward units.
    """

    def __init__(
        self,
        n_actions: int,
        learning_rate: float,
        trace_decay: float,
        temperature: float,
        initial_value: float = 0.0,
    ) -> None:
        if n_actions < 1:
            raise ValueError(f"n_actions must be at least 1, got {n_actions}")
        if not 0.0 < learning_rate <= 1.0:
            raise ValueError(f"learning_rate must lie in (0, 1], got {learning_rate}")
        if not 0.0 <= trace_decay < 1.0:
            raise ValueError(f"trace_decay must lie in [0, 1), got {trace_decay}")
        if not temperature > 0.0:
            raise ValueError(f"temperature must be positive, got {temperature}")
        self.n_actions = n_actions
        self.learning_rate = learning_rate
        self.trace_decay = trace_decay
        self.temperature = temperature
        self.initial_value = initial_value

    def reset(self, n: int) -> None:
        """``n`` naive subjects: every value ``initial_value``, no eligibility."""
        self.values_ = np.full((n, self.n_actions), float(self.initial_value))
        self.trace_ = np.zeros((n, self.n_actions))

    def probabilities(self) -> np.ndarray:
        """Each subject's choice probabilities now, ``(n, K)``."""
        return softmax(self.values_, self.temperature)

    def choose(self, uniforms: np.ndarray) -> np.ndarray:
        """Draw one action per subject from :meth:`probabilities`.

        Parameters
        ----------
        uniforms : ndarray, shape (n,)
            One uniform draw in [0, 1) per subject (the caller owns the
            random streams, so that each subject's draws are its own).

        Returns
        -------
        ndarray of int, shape (n,)
        """
        cdf = np.cumsum(self.probabilities(), axis=1)
        a = (np.asarray(uniforms)[:, None] >= cdf).sum(axis=1)
        return np.minimum(a, self.n_actions - 1)

    def clear_trace(self, which: np.ndarray) -> None:
        """Forget the eligibility of subjects ``which`` (boolean ``(n,)``): a new block."""
        self.trace_[which] = 0.0

    def act(self, actions: np.ndarray, which: np.ndarray) -> None:
        """One frame of actions: decay every trace and mark ``actions`` of subjects ``which``."""
        self.trace_[which] *= self.trace_decay
        rows = np.flatnonzero(which)
        self.trace_[rows, np.asarray(actions)[rows]] += 1.0

    def credit(self, reward: np.ndarray, which: np.ndarray) -> None:
        """Share this frame's ``reward`` (reward units, ``(n,)``) among recent actions.

        Only subjects ``which`` (boolean ``(n,)``: those shown feedback, with
        some eligibility) learn.
        """
        total = self.trace_.sum(axis=1)
        learn = np.asarray(which, dtype=bool) & (total > 0) & np.isfinite(reward)
        if not np.any(learn):
            return
        w = self.trace_[learn] / total[learn, None]
        q = self.values_[learn]
        self.values_[learn] = q + self.learning_rate * w * (reward[learn, None] - q)
