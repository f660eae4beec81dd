"""Figures of runs and sweeps."""

from closedloop.plotting.run import format_info, plot_run, save_run_figure

__all__ = ["format_info", "plot_run", "save_run_figure"]
