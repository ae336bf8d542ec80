"""The JSON records the models keep beside their artefacts, read through typed models with finite numbers.

A tuning record (``<home>/tuned/<dataset>/<model>.json``, written by ``semsr tune``) and a neural model's
epoch record (``<artefacts>/<dataset>/<model>-<key>.epochs.json``, written when it is fitted on the
validation fold) decide what is served. A truncated, empty or hand-edited file (NaN score, extra key,
missing field) must not be half-read: :func:`read_record` raises one :class:`DataError` line naming the
file and the command that rebuilds it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from sessiondata.errors import DataError

RecordT = TypeVar("RecordT", bound=BaseModel)


class TunedRecord(BaseModel):
    """The winner of a validation-fold search (:func:`evals.tuning.tune`)."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    model: str
    dataset: dict[str, Any]
    selected_on: str
    objective: str
    params: dict[str, Any]
    valid: dict[str, float]
    search: dict[str, Any] = Field(default_factory=dict)
    seconds: float = Field(ge=0)
    tuned_at: str
    trials: list[dict[str, Any]] = Field(default_factory=list)


class EpochRecord(BaseModel):
    """The best epoch a neural model reached on the validation fold (the test fit trains that many)."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    best_epoch: int = Field(ge=0)
    seed: int
    history: list[dict[str, Any]] = Field(default_factory=list)


def read_record(path: Path, model: type[RecordT], fix: str) -> RecordT:
    """``path`` validated as ``model``; anything wrong with it is one line naming it and ``fix``."""
    try:
        return model.model_validate_json(path.read_bytes())
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "file"
        reason = f"not a valid {model.__name__} ({where}: {first['msg']}); rebuild it with `{fix}` or delete it"
    except OSError as error:
        reason = f"cannot be read ({error.strerror}); rebuild it with `{fix}`"
    raise DataError(reason, file=path)
