"""Virtual patients as rows of a versioned parameter table.

In the spirit of simglucose's ``vpatient_params.csv``: one row per patient,
one column per experiment key path the patient sets (``model.params.sigma_S``,
``symptoms.0.tau_s``, ``drugs.0.clearance_l_per_h``), and covariates a clinic
could measure (``covariate:cyp2c19``: a metaboliser phenotype; baseline
severity) that set further parameters through documented rules
(:mod:`closedloop.cohort.priors`). A table is a CSV file with a short
commented header::

    # closedloop patient table
    # version: 1.0
    # description: Parkinsonian STN-GPe patients, noise and coupling drawn from priors
    patient_id,model.params.sigma_S,model.params.w_GS,covariate:cyp2c19
    P0000,18.2,19.4,normal
    ...

Tables are written to a temporary name and renamed, so a table at its final
path is always complete.
"""

from __future__ import annotations

import csv
import io
import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["COVARIATE_PREFIX", "PatientTable", "read_patient_table"]

#: Column prefix of covariates (strings a clinic measures), e.g. ``covariate:cyp2c19``.
COVARIATE_PREFIX = "covariate:"
_ID = re.compile(r"^[A-Za-z0-9_.-]+$")
_HEADER = "# closedloop patient table"


@dataclass
class PatientTable:
    """A cohort of virtual patients.

    Attributes
    ----------
    patient_id : list of str
        Unique ids (letters, digits, ``_ . -``: they name run files).
    params : dict of str to ndarray
        Experiment key path to one float per patient.
    covariates : dict of str to ndarray
        Covariate name to one string per patient.
    version : str
        The table's version (recorded with every run).
    description : str
        What the cohort is and where its distributions come from.
    """

    patient_id: list[str]
    params: dict[str, np.ndarray] = field(default_factory=dict)
    covariates: dict[str, np.ndarray] = field(default_factory=dict)
    version: str = "1"
    description: str = ""

    def __post_init__(self) -> None:
        n = len(self.patient_id)
        if n == 0:
            raise ValueError("a patient table needs at least one patient")
        bad = [p for p in self.patient_id if not _ID.match(str(p))]
        if bad:
            raise ValueError(
                f"patient ids may hold only letters, digits, '_', '.' and '-': {bad[:3]}"
            )
        if len(set(self.patient_id)) != n:
            seen: set[str] = set()
            for dup in self.patient_id:
                if dup in seen:
                    raise ValueError(f"patient id {dup!r} appears twice")
                seen.add(dup)
        for key, values in self.params.items():
            arr = np.asarray(values, dtype=float)
            if arr.shape != (n,):
                raise ValueError(f"column {key!r} has {arr.size} values for {n} patients")
            if not np.all(np.isfinite(arr)):
                i = int(np.argmax(~np.isfinite(arr)))
                raise ValueError(
                    f"column {key!r}: patient {self.patient_id[i]} has no finite value"
                )
            self.params[key] = arr
        for key, values in self.covariates.items():
            arr = np.asarray(values, dtype=object)
            if arr.shape != (n,):
                raise ValueError(f"covariate {key!r} has {arr.size} values for {n} patients")
            self.covariates[key] = arr

    def __len__(self) -> int:
        return len(self.patient_id)

    def row(self, i: int) -> dict[str, Any]:
        """Patient ``i``'s parameters: key path to value."""
        return {key: float(values[i]) for key, values in self.params.items()}

    def split(self, held_out_fraction: float, seed: int) -> tuple[list[str], list[str]]:
        """Patient ids for tuning and held out for testing, drawn with ``seed``."""
        if not 0.0 <= held_out_fraction < 1.0:
            raise ValueError(f"held_out_fraction must lie in [0, 1), got {held_out_fraction}")
        n_out = int(round(held_out_fraction * len(self)))
        order = np.random.default_rng(seed).permutation(len(self))
        out = {self.patient_id[i] for i in order[:n_out]}
        return [p for p in self.patient_id if p not in out], [
            p for p in self.patient_id if p in out
        ]

    def to_csv_text(self) -> str:
        """The table as CSV text with its header."""
        buf = io.StringIO()
        buf.write(f"{_HEADER}\n# version: {self.version}\n")
        for line in (self.description or "").splitlines() or [""]:
            buf.write(f"# description: {line}\n")
        writer = csv.writer(buf, lineterminator="\n")
        cov = list(self.covariates)
        writer.writerow(["patient_id", *self.params, *(COVARIATE_PREFIX + c for c in cov)])
        for i, pid in enumerate(self.patient_id):
            writer.writerow(
                [
                    pid,
                    *(repr(float(self.params[k][i])) for k in self.params),
                    *(str(self.covariates[c][i]) for c in cov),
                ]
            )
        return buf.getvalue()

    def write_csv(self, path: str | os.PathLike[str]) -> Path:
        """Write the table (temporary name, then rename); return its path."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tmp.write_text(self.to_csv_text(), encoding="utf-8")
        os.replace(tmp, path)
        return path


def read_patient_table(path: str | os.PathLike[str]) -> PatientTable:
    """Read a patient table written by :meth:`PatientTable.write_csv` (or by hand).

    Raises
    ------
    ValueError
        Naming the file, line and column of a missing or malformed value.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ValueError(f"{path}: cannot read the patient table ({exc})") from exc
    version, description = "1", []
    body = []
    for line in text.splitlines():
        if line.startswith("#"):
            content = line[1:].strip()
            if content.startswith("version:"):
                version = content.split(":", 1)[1].strip()
            elif content.startswith("description:"):
                description.append(content.split(":", 1)[1].strip())
            continue
        if line.strip():
            body.append(line)
    rows = list(csv.reader(body))
    if not rows or rows[0][:1] != ["patient_id"]:
        raise ValueError(f"{path}: the first column must be 'patient_id'")
    header = rows[0]
    ids: list[str] = []
    params: dict[str, list[float]] = {
        h: [] for h in header[1:] if not h.startswith(COVARIATE_PREFIX)
    }
    covariates: dict[str, list[str]] = {
        h[len(COVARIATE_PREFIX) :]: [] for h in header[1:] if h.startswith(COVARIATE_PREFIX)
    }
    for line_no, row in enumerate(rows[1:], start=2):
        if len(row) != len(header):
            raise ValueError(f"{path}: row {line_no} has {len(row)} cells, expected {len(header)}")
        ids.append(row[0])
        for name, cell in zip(header[1:], row[1:], strict=True):
            if name.startswith(COVARIATE_PREFIX):
                covariates[name[len(COVARIATE_PREFIX) :]].append(cell.strip())
                continue
            try:
                value = float(cell)
            except ValueError:
                value = math.nan
            if not math.isfinite(value):
                raise ValueError(
                    f"{path}: row {line_no}, column {name!r}: {cell!r} is not a number"
                )
            params[name].append(value)
    try:
        return PatientTable(
            ids,
            {k: np.asarray(v) for k, v in params.items()},
            {k: np.asarray(v, dtype=object) for k, v in covariates.items()},
            version=version,
            description="\n".join(d for d in description if d),
        )
    except ValueError as exc:
        raise ValueError(f"{path}: {exc}") from exc
