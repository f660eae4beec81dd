"""The built-in Brian2 models by name, and models given by dotted path.

:data:`BRIAN_MODELS` maps each built-in Brian2 model's registry name to its
class (the classes live in ``models/``, installed as ``closedloop.models``);
:func:`resolve_brian_model` resolves an experiment file's ``model.name`` to
a :class:`~closedloop.brian.model.BrianModel` subclass. Importing this
module imports the model classes but not Brian2 (the models import it when
they build a network).
"""

from __future__ import annotations

from closedloop.brian.model import BrianModel
from closedloop.core.plugins import resolve_class
from closedloop.models.brian_mdd_cingulofrontal import BrianMDDCinguloFrontal
from closedloop.models.brian_ping import BrianPING
from closedloop.models.brian_stn_gpe import BrianSTNGPe

__all__ = ["BRIAN_MODELS", "resolve_brian_model"]

#: Registry name to class of every built-in Brian2 model.
BRIAN_MODELS: dict[str, type[BrianModel]] = {
    m.name: m for m in (BrianSTNGPe, BrianPING, BrianMDDCinguloFrontal)
}


def resolve_brian_model(name: str) -> type[BrianModel]:
    """Return the Brian2 model class registered as ``name`` or found at a dotted path.

    Parameters
    ----------
    name : str
        A key of :data:`BRIAN_MODELS`, or ``package.module.Class``.

    Raises
    ------
    ValueError
        With a plain sentence when the name is unknown or not a BrianModel.
    """
    return resolve_class(
        name,
        BRIAN_MODELS,
        BrianModel,
        "closedloop.brian.model.BrianModel",
        kind="Brian2 model",
    )
