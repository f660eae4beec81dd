"""The error every conformance check raises in its strict form."""

from __future__ import annotations

__all__ = ["ConformanceError"]


class ConformanceError(AssertionError):
    """A user class (controller, model) does not follow its contract.

    Parameters
    ----------
    problems : list of str
        One plain sentence per problem found.
    label : str
        How the checked class is named in the message.

    Attributes
    ----------
    problems : list of str
        The problems found, in the order they were found.
    """

    def __init__(self, problems: list[str], label: str = "controller") -> None:
        self.problems = list(problems)
        count = len(self.problems)
        lines = "\n".join(f"  - {p}" for p in self.problems)
        plural = "" if count == 1 else "s"
        super().__init__(f"{label} failed {count} conformance check{plural}:\n{lines}")
