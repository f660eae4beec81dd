"""Controller benchmark: fixed scenarios, standard metrics and a leaderboard.

A *scenario* is a versioned YAML file in ``benchmarks/scenarios/``: a clinical
situation in one paragraph, a complete experiment (model, seed set through
``n_instances``, duration, sensing chain, device) and the parameters each
built-in controller uses there. :func:`run_bench` runs every scenario against
every controller and scores each run with the standard metrics below, the
same for every controller, so that results are comparable.

Scenario file (format version 2)::

    scenario:
      name: pd_beta_adbs
      version: 2
      description: one paragraph on the clinical situation
      kind: beta                 # beta | synchrony | seizure | mood | fear | tracking
                                 # | plasticity | vagal
      efficacy: long_burst_time_reduction   # optional; default by kind (below)
      pathological_threshold: 40 # optional: biomarker level counted as pathological
      target: {feature: area, level: 0.063}  # optional: a tracking target (control error)
      quick: {duration_s: 3.0, n_instances: 2}   # overrides for --quick
    controllers:                 # registry name or dotted path -> parameters
      open_loop: {amplitude_ma: 2.5}
      on_off: {threshold: 11.2}
      phase_locked@peak: {...}   # NAME@LABEL: the same controller again, another arm
    experiment: {...}            # a full experiment (closedloop.config.schema schema)

Standard metrics (per instance; the leaderboard shows means over instances)
--------------------------------------------------------------------------
``band_power_reduction``
    ``1 - P_stim / P_none``: power of the model's signal in ``metrics.band_hz``
    with stimulation over the same without stimulation, same seed (the run's
    ``band_power_reduction``).
``long_burst_time_reduction``, ``long_burst_time`` (beta scenarios)
    ``1 - T_stim / T_none``, ``T`` the fraction of time in bursts of the
    sensed envelope at least ``metrics.bursts.long_burst_s`` long, the burst
    threshold a percentile of the no-stimulation envelope
    (:mod:`closedloop.analysis.bursts`; Tinkhauser et al. 2017); and
    ``T_stim``.
``teed_relative``
    Total electrical energy delivered over that of continuous stimulation at
    ``metrics.reference`` for the same time (Koss et al. 2005).
``time_on_fraction``
    Fraction of time stimulation was delivered.
``switches_per_min``, ``deliveries_per_min``
    On/off transitions of a continuous train after its first turn-on, and
    bursts or single pulses commanded, per minute (the run's ``n_switches``
    and ``n_deliveries``).
``time_pathological`` and ``time_pathological_none``
    Fraction of control periods whose biomarker exceeds the scenario's
    ``pathological_threshold``, with stimulation and without (the no-stimulation
    biomarker is the run's ``lfp_baseline`` through the same sensing chain,
    same sensor-noise seeds), and ``pathological_time_reduction``
    (``1 - time_pathological / time_pathological_none``).
Seizure scenarios (as RNS trials report them: Morrell 2011; Sun & Morrell 2014)
    ``seizures_per_hour`` and ``seizures_per_hour_none`` (complete seizures),
    ``mean_seizure_duration_s`` and ``..._none``, ``seizure_time`` and
    ``seizure_time_none`` (fraction of time in seizure),
    ``seizure_time_reduction`` (``1 - seizure_time / seizure_time_none``:
    positive is less time in seizure), ``seizures_aborted`` (detected
    seizures cut below half the mean unstimulated one),
    ``detections_per_hour``, ``false_detections_per_hour``,
    ``stimulation_s_per_hour`` and ``detection_latency_s``, by the model's
    seizure criterion (:mod:`closedloop.analysis.seizures`).
``efficacy``
    The scenario's ``efficacy`` metric; by default ``long_burst_time_reduction``
    for beta scenarios (the long bursts, not the mean power, track rigidity
    and bradykinesia), ``pathological_time_reduction`` for seizure scenarios
    (judged on the sensed band power, it counts seizures and the discharges
    that stimulation itself provokes alike, where the model's seizure
    criterion sees only seizures) and ``band_power_reduction`` for
    synchrony; for psychiatric scenarios ``mood_score_reduction`` (mood:
    the fraction of the baseline HAMD-17-like score removed, from the slow
    symptom state, :mod:`closedloop.symptoms`) and ``fear_renewal_reduction``
    (fear: ``1 - renewal fear index / that of the no-stimulation copy, same
    seed``, how much less fear returns in the conditioning context).
    Positive is better, 1 is all of the pathology removed, negative is worse
    than no stimulation.
``plasticity_change`` (plasticity scenarios, the default efficacy)
    The plasticity readout's change of the MEP-like response at the end of
    the run as a fraction of baseline (the run's
    ``plasticity_response_change_pct`` / 100; :mod:`closedloop.analysis.plasticity`,
    a modelling choice after Zrenner et al. 2018), with ``plasticity_bursts``
    and ``tms_pulses``. TMS passes no current through electrodes: its TEED
    is 0 and the score is the efficacy.
``vagal_drive_per_pulse`` (vagal scenarios, the default efficacy)
    ``f + g (1 - f)``, ``f`` the fraction of delivered pulses that fell in
    expiration (``physio_pulses_in_expiration_frac``) and ``g`` the vagal
    route's ``physiology.vagal.inspiration_gain``: the noradrenergic drive
    per delivered pulse over that of every pulse in expiration (1 for
    perfect expiration gating, ``g`` for perfect inspiration gating; exact
    for pulses of equal charge), with ``physio_rr_lengthening_ms`` (mean RR
    minus that of the same heart unstimulated), ``rr_lengthening_ms_per_mc``
    (per mC delivered), ``physio_ne_mean``, ``physio_burst_onset_delay_ms``
    and ``charge_uc_per_min`` (:mod:`closedloop.physiology.process`).
``control_error``, ``control_error_none``, ``control_error_reduction`` (with a ``target``)
    RMS distance of the target feature from its level over the control
    periods after ``metrics.discard_s``, with stimulation and without (the
    no-stimulation signal through the same chain), and ``1 - control_error /
    control_error_none``: the criterion of model-based control (Fang & Yang
    2023), the default efficacy of ``tracking`` scenarios.
``mood_*``, ``triggers_per_day``, ``charge_uc_per_day`` (mood) and ``fear_*`` (fear)
    The clinical read-outs of the run (response, remission, time
    symptomatic, extinction trials, fear index at the end of extinction and
    at renewal), copied from its metrics (:data:`CLINICAL_METRICS`).
``score``
    ``efficacy - 0.3 * teed_relative - 0.1 * min(1, switches_per_min / 60)``.
    Efficacy has weight 1: it is what the therapy is for. Energy 0.3:
    continuous stimulation that removes everything scores 0.7, and a
    controller that does as well with a third of the energy 0.9, a
    difference worth a battery replacement or recharge interval without
    outweighing efficacy (a controller that does nothing scores 0). Switching
    0.1, saturating at one switch per second: switching transients cause
    paraesthesiae and dyskinesia-like side effects in patients (Little et al.
    2013 ramped over 250 ms for this reason), a real but secondary cost;
    deliveries (bursts, single pulses) are the therapy itself and are not
    penalised. The weights (``SCORE_WEIGHTS``) are part of the format version.

References
----------
Koss AM et al. (2005) Calculating total electrical energy delivered by deep
brain stimulation systems. Ann Neurol 58:168-169.
Little S et al. (2013) Adaptive deep brain stimulation in advanced Parkinson
disease. Ann Neurol 74:449-457.
Tinkhauser G et al. (2017) The modulatory effect of adaptive deep brain
stimulation on beta bursts in Parkinson's disease. Brain 140:1053-1067.
Morrell MJ (2011) Responsive cortical stimulation for the treatment of
medically intractable partial epilepsy. Neurology 77:1295-1304.
Zrenner C, Desideri D, Belardinelli P, Ziemann U (2018) Real-time
EEG-defined excitability states determine efficacy of TMS-induced plasticity
in human motor cortex. Brain Stimul 11:374-389.
Sun FT, Morrell MJ (2014) The RNS System: responsive cortical stimulation for
the treatment of refractory partial epilepsy. Expert Rev Med Devices
11:563-572.

Where each part lives: :mod:`~closedloop.bench.scenarios.spec` (the file
format, :func:`load_scenario`, the constants of the format version),
:mod:`~closedloop.bench.scenarios.scoring` (:func:`score_run`, by kind),
:mod:`~closedloop.bench.scenarios.board` (:func:`run_bench`, the
leaderboard, the figure, the result files). Every name is importable from
here.
"""

from __future__ import annotations

from closedloop.bench.scenarios.board import (
    BenchResult,
    leaderboard_markdown,
    run_bench,
    versus_continuous,
    write_results,
)
from closedloop.bench.scenarios.scoring import score_run
from closedloop.bench.scenarios.spec import (
    BENCH_FORMAT_VERSION,
    CLINICAL_METRICS,
    DEFAULT_EFFICACY,
    SCORE_WEIGHTS,
    Scenario,
    load_scenario,
)

__all__ = [
    "CLINICAL_METRICS",
    "BENCH_FORMAT_VERSION",
    "DEFAULT_EFFICACY",
    "SCORE_WEIGHTS",
    "BenchResult",
    "Scenario",
    "leaderboard_markdown",
    "load_scenario",
    "run_bench",
    "score_run",
    "versus_continuous",
    "write_results",
]
