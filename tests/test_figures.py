"""Plot functions return a Figure, draw where they are told, and save nothing.

Every figure of the package (run, phase, seizures, sweep, cohort, benchmark,
phase estimators, phase-triggered arms) follows one contract
(:mod:`closedloop.plotting.figures`): ``fig=`` or ``ax=`` to draw into the
caller's figure, a :class:`~matplotlib.figure.Figure` returned, and files
written only by the ``save_*`` functions the command line calls. Figures
that need a simulated run are checked beside their runs (test_phase_locked,
test_responsive, test_sweep, test_api_cli); these use small synthetic data.
"""

from __future__ import annotations

import numpy as np
import pytest
from matplotlib.figure import Figure

from closedloop.analysis.phase_estimators import plot_phase_errors
from closedloop.analysis.phase_triggered import plot_arms
from closedloop.bench.scenarios import BenchResult
from closedloop.cohort.outcomes import CohortResults
from closedloop.cohort.plan import OutcomeRule
from closedloop.plotting.bench import plot_scenario, save_scenario_figure
from closedloop.plotting.cohort import (
    plot_cohort_responders,
    plot_cohort_waterfall,
    save_cohort_figures,
)
from closedloop.plotting.figures import root_figure


@pytest.fixture
def no_files(tmp_path, monkeypatch):
    """Fail on any savefig, and work in an empty directory checked afterwards."""

    def refuse(self, *args, **kwargs):
        raise AssertionError(f"a plot function saved a figure: {args}")

    monkeypatch.chdir(tmp_path)
    with monkeypatch.context() as m:
        m.setattr(Figure, "savefig", refuse)
        yield
    assert list(tmp_path.iterdir()) == []


def _cohort() -> CohortResults:
    values = np.array([[0.9, 0.2, 0.6, np.nan], [0.1, 0.3, 0.55, 0.7]])
    return CohortResults(
        arms=["continuous", "adaptive"],
        patients=["p1", "p2", "p3", "p4"],
        held_out=[],
        metrics={"reduction": values},
        responder=OutcomeRule(metric="reduction", at_least=0.5),
        remission=None,
        covariates={},
        duration_days=1.0,
    )


def _bench() -> tuple[list[BenchResult], object]:
    from types import SimpleNamespace

    results = [
        BenchResult(
            "s",
            1,
            name,
            metrics={"teed_relative": np.array([0.1, 0.3]) + k, "efficacy": np.array([0.5, 0.7])},
        )  # fmt: skip
        for k, name in enumerate(("on_off", "pid"))
    ]
    return results, SimpleNamespace(name="s", efficacy="long_burst_time_reduction")


def test_cohort_figures_return_figures_and_draw_into_the_callers(no_files):
    results = _cohort()
    fig = plot_cohort_waterfall(results)
    assert isinstance(fig, Figure) and len(fig.axes) == 2  # a panel per arm
    # the responders counted as the rule says: >= 0.5 of the finite values
    titles = [ax.get_title() for ax in fig.axes]
    assert titles == ["continuous (2/3 respond)", "adaptive (2/4 respond)"]
    outer = Figure()
    left, right = outer.subfigures(1, 2)
    assert plot_cohort_waterfall(results, fig=left) is outer and len(left.axes) == 2
    ax = right.add_subplot()
    assert plot_cohort_responders(results, ax=ax) is outer
    heights = [p.get_height() for p in ax.patches]
    assert heights == pytest.approx([100 * 2 / 3, 50.0])


def test_save_cohort_figures_writes_the_two_pngs(tmp_path):
    paths = save_cohort_figures(_cohort(), tmp_path / "out")
    assert [p.name for p in paths] == ["cohort_waterfall.png", "cohort_responders.png"]
    assert all(p.read_bytes()[:4] == b"\x89PNG" for p in paths)


def test_bench_figure_draws_on_a_given_axes_and_saves_only_when_asked(no_files):
    results, scenario = _bench()
    fig = plot_scenario(results, scenario)
    assert isinstance(fig, Figure) and len(fig.axes) == 1
    # each controller's instance dots in the colour of its mean, and said so
    dots, mean_a, dots_b, mean_b = (
        tuple(c.get_facecolor()[0][:3]) for c in fig.axes[0].collections
    )
    assert dots == mean_a and dots_b == mean_b and mean_a != mean_b
    labels = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert labels == ["on_off (mean; dots: instances)", "pid (mean; dots: instances)"]
    outer = Figure()
    ax = outer.add_subplot(1, 2, 2)
    assert plot_scenario(results, scenario, ax=ax) is outer
    means = [c.get_offsets()[0] for c in ax.collections[1::2]]
    np.testing.assert_allclose(means, [[0.2, 0.6], [1.2, 0.6]])  # the means of the dots


def test_save_scenario_figure_writes_a_png(tmp_path):
    results, scenario = _bench()
    out = save_scenario_figure(results, scenario, tmp_path / "b" / "s.png")
    assert out.read_bytes()[:4] == b"\x89PNG"


def test_phase_error_and_arm_figures_return_figures(no_files):
    rows = [
        {"estimator": est, "snr_db": snr, "mean_deg": 1.0, "sd_deg": 10.0 + snr, "within": 0.5}
        for est in ("ar", "etp")
        for snr in (0.0, 10.0)
    ]
    fig = plot_phase_errors(rows, 30.0)
    assert isinstance(fig, Figure) and len(fig.axes) == 3
    assert fig.axes[2].get_ylabel() == "within +-30 deg (%)"
    (ar,) = [line for line in fig.axes[1].get_lines() if line.get_label() == "ar"]
    np.testing.assert_allclose(ar.get_ydata(), [10.0, 20.0])
    arms = [
        {
            "estimator": est,
            "arm": arm,
            "burst_phases_rad": np.array([0.1, np.nan, 3.0]),
            "t_s": np.arange(3.0),
            "excitability_pct": np.array([0.0, 5.0, 10.0]),
        }  # fmt: skip
        for est in ("phase", "phase_ar")
        for arm in ("peak", "trough")
    ]
    outer = Figure()
    sub = outer.subfigures(2, 1)[1]
    assert plot_arms(arms, fig=sub) is outer
    assert len(sub.axes) == 3  # a histogram per estimator and the readout


def test_root_figure_of_nested_subfigures():
    outer = Figure()
    inner = outer.subfigures(1, 2)[0].subfigures(2, 1)[1]
    assert root_figure(inner) is outer and root_figure(outer) is outer


def test_run_figure_panels_return_the_figure_of_their_axes(no_files):
    from types import SimpleNamespace

    from closedloop.plotting.neurofeedback import plot_learning_curve

    outer = Figure()
    ax = outer.subfigures(1, 2)[1].add_subplot()
    # A run without neurofeedback runs: the panel says so, and returns the figure.
    assert plot_learning_curve(ax, SimpleNamespace(arrays={}), "(n1)") is outer
    assert [t.get_text() for t in ax.texts] == ["no complete run"]
    assert ax.get_title(loc="left") == "(n1) neurofeedback learning curve"
