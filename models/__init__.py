"""Neural population models (Numba kernels), importable as ``closedloop.models``."""

from closedloop.models.epileptor import Epileptor
from closedloop.models.fear_extinction import FearExtinction
from closedloop.models.jansen_rit import JansenRit
from closedloop.models.kuramoto import KuramotoEnsemble
from closedloop.models.mdd_cingulofrontal import MddCingulofrontal
from closedloop.models.mdd_scangos import MddScangosPlant
from closedloop.models.stn_gpe import STNGPe
from closedloop.models.wilson_cowan import WilsonCowan

__all__ = [
    "BUILTIN_MODELS",
    "Epileptor",
    "FearExtinction",
    "JansenRit",
    "KuramotoEnsemble",
    "MddCingulofrontal",
    "MddScangosPlant",
    "STNGPe",
    "WilsonCowan",
]

#: Registry name to model class.
BUILTIN_MODELS = {
    m.name: m
    for m in (
        STNGPe,
        Epileptor,
        KuramotoEnsemble,
        WilsonCowan,
        JansenRit,
        FearExtinction,
        MddCingulofrontal,
        MddScangosPlant,
    )
}
