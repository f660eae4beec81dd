"""Every registered Numba model follows the model contract, and the checker catches breaches.

``check_model`` replaces the per-model copies of the chunking, seeding,
serial-parallel and bad-parameter tests that each model's test file used to
carry; those files keep the science (equations, published dynamics, regimes).
"""

import dataclasses

import numpy as np
import pytest

from closedloop.core.loop import ClosedLoop
from closedloop.core.model import Parameter
from closedloop.models import BUILTIN_MODELS, WilsonCowan
from closedloop.testing import ConformanceError, check_model, loop_checks, model_report

#: Settings each model is checked with: noise where the default regime has
#: none, and a small ensemble to keep the runs short.
SETTINGS = {
    "wilson_cowan": {"params": {"sigma_E": 0.3, "sigma_I": 0.1}},
    "kuramoto": {"params": {"n_oscillators": 40, "sigma": 1.0}},
    # A protocol squeezed into the 60 ms runs, so that the CS weights learn.
    "fear_extinction": {
        "params": {
            "first_cs_s": 0.004,
            "lead_s": 0.002,
            "cs_duration_s": 0.004,
            "cs_period_s": 0.008,
            "tail_s": 0.002,
            "gap_s": 0.002,
            "n_conditioning": 2,
            "n_extinction": 2,
            "n_renewal": 1,
            "alpha_hz": 3000.0,
        }
    },
}
#: Every registered model, and modes of one that run different kernel code.
CASES = {name: (name, SETTINGS.get(name, {})) for name in sorted(BUILTIN_MODELS)} | {
    "kuramoto-stuart_landau": (
        "kuramoto",
        {"params": {"n_oscillators": 40, "sigma": 1.0, "stuart_landau": 1.0}},
    ),
}


@pytest.mark.parametrize(("name", "settings"), list(CASES.values()), ids=list(CASES))
def test_registered_model_follows_the_contract(name, settings):
    check_model(BUILTIN_MODELS[name], **settings)


def test_kuramoto_with_a_coupling_matrix_follows_the_contract():
    # A factory: settings outside the parameters (here the coupling matrix)
    # must survive like(), chunking and batching too.
    cls = BUILTIN_MODELS["kuramoto"]
    matrix = np.random.default_rng(1).uniform(0, 2, (40, 40))

    def make(n, params=None):
        return cls(n=n, params={"n_oscillators": 40, **(params or {})}, coupling_matrix=matrix)

    check_model(make)


# -- planted defects: the checker must fail when it should ---------------------------

NOISY = {"params": {"sigma_E": 0.3, "sigma_I": 0.1}, "closed_loop": False}


class Forgetful(WilsonCowan):
    """Restarts from its initial state on every advance: state not carried."""

    def reset(self, seeds=0):
        super().reset(seeds)
        self.start = {k: v.copy() for k, v in self.state.items()}

    def advance(self, n_steps, stimulation=None):
        for key, value in self.start.items():
            self.state[key][...] = value
        return super().advance(n_steps, stimulation)


class Unitless(WilsonCowan):
    """A parameter without units and one without a reference."""

    parameters = {
        **WilsonCowan.parameters,
        "tau_E": dataclasses.replace(WilsonCowan.parameters["tau_E"], units=""),
        "c1": dataclasses.replace(WilsonCowan.parameters["c1"], reference=""),
    }


@dataclasses.dataclass(frozen=True)
class AcceptsNaN(Parameter):
    """A parameter check that lets NaN through."""

    def check(self, name, values, dt_s):
        if np.isnan(values).any():
            return
        super().check(name, values, dt_s)


class NaNTolerant(WilsonCowan):
    parameters = {
        **WilsonCowan.parameters,
        "c2": AcceptsNaN(**dataclasses.asdict(WilsonCowan.parameters["c2"])),
    }


class StrayRegime(WilsonCowan):
    """A regime that sets a parameter the model does not declare."""

    regimes = {**WilsonCowan.regimes, "stray": {"tau_X": 0.01}}


class Anonymous(WilsonCowan):
    """Refuses bad parameters without saying which."""

    def __init__(self, dt_s=1e-4, n=1, params=None, regime=None):
        try:
            super().__init__(dt_s=dt_s, n=n, params=params, regime=regime)
        except ValueError:
            raise ValueError("invalid model parameters") from None


class Unseeded(WilsonCowan):
    """Adds noise from an unseeded generator."""

    def advance(self, n_steps, stimulation=None):
        out = super().advance(n_steps, stimulation)
        return out + 1e-9 * np.random.default_rng().normal(size=out.shape)


class Crosstalk(WilsonCowan):
    """Instance i's signal leaks into instance i + 1: depends on batch position."""

    def advance(self, n_steps, stimulation=None):
        out = super().advance(n_steps, stimulation)
        out[1:] += 1e-3 * out[:-1]
        return out


class Deaf(WilsonCowan):
    """Ignores its stimulation."""

    def advance(self, n_steps, stimulation=None):
        return super().advance(n_steps, None)


class Scaled(WilsonCowan):
    """A setting outside the parameters that like() does not pass on."""

    def __init__(self, dt_s=1e-4, n=1, params=None, regime=None, gain=1.0):
        super().__init__(dt_s=dt_s, n=n, params=params, regime=regime)
        self.gain = gain

    def advance(self, n_steps, stimulation=None):
        return self.gain * super().advance(n_steps, stimulation)


def _problems(model, **kwargs):
    return model_report(model, **{**NOISY, **kwargs})


@pytest.mark.parametrize(
    ("model", "check", "says"),
    [
        (Forgetful, "chunk_invariance", "chunks of 1 steps"),
        (Unitless, "declarations", "parameter 'tau_E' has no units"),
        (Unitless, "declarations", "parameter 'c1' has no reference"),
        (NaNTolerant, "bad_parameters", "NaN for 'c2' (nan) was accepted"),
        (StrayRegime, "parameter_defaults", "regime 'stray' sets undeclared parameter(s)"),
        (Anonymous, "bad_parameters", "does not name it"),
        (Unseeded, "seed_determinism", "two models reset with seed 0 differ"),
        (Crosstalk, "batch_independence", "instance 20 of a batch of 40"),
        (Deaf, "stimulation_effect", "leaves the signal unchanged"),
        (lambda n, params=None: Scaled(n=n, params=params, gain=2.0), "like", "runs differently"),
    ],
    ids=[
        "state",
        "units",
        "reference",
        "nan",
        "regime",
        "unnamed",
        "seed",
        "batch",
        "stimulation",
        "like",
    ],
)
def test_check_model_reports_a_planted_defect_by_check_name(model, check, says):
    if isinstance(model, type):
        problems = _problems(model)
    else:
        problems = model_report(model, closed_loop=False)
    found = [p for p in problems if p.startswith(f"{check}: ")]
    assert any(says in p for p in found), problems


def test_a_correct_subclass_passes_and_defects_are_not_blamed_on_other_checks():
    assert _problems(WilsonCowan) == []
    checks = {p.split(":")[0] for p in _problems(Forgetful)}
    # Each run starts from reset, so only chunking shows the forgotten state.
    assert checks == {"chunk_invariance"}, checks


def test_deterministic_model_fails_seed_sensitivity_unless_declared():
    quiet = {"params": {"sigma_E": 0.0, "sigma_I": 0.0}, "closed_loop": False}
    problems = model_report(WilsonCowan, **quiet)
    assert [p.split(":")[0] for p in problems] == ["seed_sensitivity"], problems
    assert model_report(WilsonCowan, noisy=False, **quiet) == []


def test_strict_form_raises_naming_the_model_and_every_problem():
    with pytest.raises(ConformanceError) as info:
        check_model(Unitless, params=NOISY["params"], closed_loop=False)
    message = str(info.value)
    assert message.startswith("Unitless failed 2 conformance checks")
    assert "declarations: parameter 'tau_E' has no units" in message
    assert info.value.problems == _problems(Unitless)


def test_a_model_that_cannot_be_built_is_reported_not_raised():
    def broken(n, params=None):
        raise RuntimeError("no such file")

    (problem,) = model_report(broken)
    assert problem.startswith("construction:") and "no such file" in problem


def test_report_arguments_are_checked():
    with pytest.raises(ValueError, match="n_steps"):
        model_report(WilsonCowan, n_steps=3)
    with pytest.raises(ValueError, match="factory"):
        model_report(lambda n, params=None: WilsonCowan(n=n), params={"c1": 1.0})


# The period kernels are reached only through ClosedLoop: the closed-loop
# defects are planted in a loop that the checker is given instead.


class AmnesicLoop(ClosedLoop):
    """Puts the model back to its state at reset() at the start of every run()."""

    def reset(self):
        super().reset()
        self.start = self.model.state["x"].copy()

    def run(self, duration_s, **kwargs):
        self.model.state["x"][...] = self.start
        return super().run(duration_s, **kwargs)


class PositionalLoop(ClosedLoop):
    """Nudges each instance's state by its position in the batch at every run()."""

    def run(self, duration_s, **kwargs):
        self.model.state["x"][:, 0] += 1e-6 * np.arange(self.n)
        return super().run(duration_s, **kwargs)


@pytest.mark.parametrize(
    ("loop", "check", "says"),
    [
        (AmnesicLoop, "closed_loop_chunks", "run(0.2) then run(0.2) differs from run(0.4)"),
        (PositionalLoop, "closed_loop_batch", "instance 20 of a batch of 40"),
    ],
    ids=["state", "batch"],
)
def test_check_model_reports_a_planted_closed_loop_defect(monkeypatch, loop, check, says):
    monkeypatch.setattr(loop_checks, "ClosedLoop", loop)
    problems = model_report(WilsonCowan, params=NOISY["params"])
    found = [p for p in problems if p.startswith(f"{check}: ")]
    assert any(says in p for p in found), problems
