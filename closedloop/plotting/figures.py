"""Where a figure is drawn and where it is saved, for every plot function.

Plot functions take ``fig=`` (a figure or subfigure to fill, for
multi-panel figures) or ``ax=`` (an axes to draw on, for single-panel
ones), return the :class:`matplotlib.figure.Figure`, and never write a
file; the ``save_*`` functions beside them (what the command line calls)
write it with :func:`save_figure`. Figures are made without pyplot, so that
nothing is kept alive by pyplot's figure manager and no display is needed.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

__all__ = [
    "DPI",
    "axes_for",
    "figure_for",
    "panel",
    "root_figure",
    "save_figure",
    "save_run_plot",
]

#: Resolution of saved PNGs, dots per inch.
DPI = 110


def figure_for(fig: Any, figsize: tuple[float, float]) -> Any:
    """The figure (or subfigure) to draw on: ``fig``, or a new one of ``figsize`` in.

    Parameters
    ----------
    fig : matplotlib.figure.Figure or SubFigure or None
        The caller's figure.
    figsize : tuple of float
        Width and height of a new figure, inches.

    Returns
    -------
    matplotlib.figure.Figure or SubFigure
    """
    if fig is not None:
        return fig
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    new = Figure(figsize=figsize, layout="constrained")
    FigureCanvasAgg(new)
    return new


def axes_for(ax: Any, figsize: tuple[float, float]) -> tuple[Any, Any]:
    """The axes to draw on, ``ax`` or the one axes of a new figure, and its figure.

    Parameters
    ----------
    ax : matplotlib.axes.Axes or None
        The caller's axes.
    figsize : tuple of float
        Width and height of a new figure, inches.

    Returns
    -------
    (matplotlib.figure.Figure, matplotlib.axes.Axes)
    """
    if ax is not None:
        return root_figure(ax.figure), ax
    fig = figure_for(None, figsize)
    return fig, fig.add_subplot()


def root_figure(fig: Any) -> Any:
    """The top-level :class:`~matplotlib.figure.Figure` of a figure or subfigure."""
    parent = getattr(fig, "figure", None)
    return fig if parent is None or parent is fig else root_figure(parent)


def panel(draw: Callable[..., None]) -> Callable[..., Any]:
    """Make a panel function (drawing on the axes given first) return its figure.

    The panels of the run figure (:mod:`closedloop.plotting.slow`,
    ``physio``, ``plasticity``, ``neurofeedback``) draw on the axes they are
    given; decorated, each also returns the top-level
    :class:`~matplotlib.figure.Figure` of that axes, like every other plot
    function, so that a panel drawn alone shows inline in a notebook.
    """

    @functools.wraps(draw)
    def wrapper(ax: Any, *args: Any, **kwargs: Any) -> Any:
        draw(ax, *args, **kwargs)
        return root_figure(ax.figure)

    return wrapper


def save_figure(fig: Any, out: str | os.PathLike[str], **kwargs: Any) -> Path:
    """Write ``fig`` to ``out`` (PNG unless the suffix says otherwise), creating its directory.

    Parameters
    ----------
    fig : matplotlib.figure.Figure
        The figure.
    out : path-like
        The file to write.
    **kwargs
        Passed to :meth:`~matplotlib.figure.Figure.savefig` (default ``dpi``
        :data:`DPI`).

    Returns
    -------
    pathlib.Path
        The file written.
    """
    path = Path(out)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, **{"dpi": DPI, **kwargs})
    return path


def save_run_plot(
    draw: Callable[..., Any],
    run: Any,
    out: str | os.PathLike[str] | None,
    suffix: str,
    **kwargs: Any,
) -> Path:
    """Draw a run with ``draw`` and write the figure beside the run file (the CLI's save).

    Parameters
    ----------
    draw : callable
        A plot function of a run, e.g. :func:`closedloop.plotting.plot_run`.
    run : closedloop.io.RunData or path-like
        Loaded run, or the path of a run file.
    out : path-like, optional
        File to write; default the run file's path with its ``.h5`` replaced
        by ``suffix`` (e.g. ``"_phase.png"``).
    suffix : str
        See ``out``.
    **kwargs
        Passed to ``draw``.

    Returns
    -------
    pathlib.Path
        The file written.
    """
    from closedloop.io import RunData, load_run

    if not isinstance(run, RunData):
        run = load_run(run)
    fig = draw(run, **kwargs)  # before creating the file: a bad instance writes nothing
    path = Path(run.path)
    return save_figure(fig, out if out is not None else path.with_name(path.stem + suffix))
