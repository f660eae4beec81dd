"""Conformance checks for user classes (controllers, models)."""

from closedloop.testing.controller import ConformanceError, check_controller, conformance_report

__all__ = ["ConformanceError", "check_controller", "conformance_report"]
