"""Registration of the environments with gymnasium (imports nothing of the loop)."""

from __future__ import annotations

__all__ = ["ENV_ID", "register_envs"]

#: The gymnasium id of an experiment environment.
ENV_ID = "closedloop/Experiment-v0"


def register_envs() -> None:
    """Register :data:`ENV_ID` with gymnasium (idempotent).

    The entry points are strings, so nothing of the loop is imported until
    ``gymnasium.make`` or ``gymnasium.make_vec`` builds an environment.
    """
    import gymnasium  # the optional dependency, imported only here

    if ENV_ID in gymnasium.registry:
        return
    gymnasium.register(
        id=ENV_ID,
        entry_point="closedloop.gym.env:ExperimentEnv",
        vector_entry_point="closedloop.gym.vector:ExperimentVectorEnv",
    )
