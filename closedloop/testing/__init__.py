"""Conformance checks for user classes (controllers, models)."""

from closedloop.testing.controller import check_controller, conformance_report
from closedloop.testing.errors import ConformanceError
from closedloop.testing.model import check_model, model_report

__all__ = [
    "ConformanceError",
    "check_controller",
    "check_model",
    "conformance_report",
    "model_report",
]
