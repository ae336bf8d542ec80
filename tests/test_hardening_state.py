"""User state stays bounded and honest: threads expire and keep few checkpoints, trace failures are errors,
corrupt records are one line naming the file and the command that rebuilds it."""

from __future__ import annotations

import sqlite3
import time

import pytest

from graphs.api import SemSR
from graphs.tracing import JsonlTracer
from sessiondata.errors import ConfigError, DataError, InvalidRequest
from sr_models.records import EpochRecord, TunedRecord, read_record
from sr_models.registry import SHIPPED_TUNED_DIR


@pytest.fixture(scope="module")
def semsr(slice_prepared, slice_settings):
    return SemSR(slice_settings)


def _items(protocol, case):
    return [protocol.dataset.catalog.ids[i] for i in protocol.test.cases[case].prompt]


def test_a_thread_keeps_few_checkpoints_and_expires(semsr, slice_prepared):
    for turn in range(6):
        semsr.recommend(_items(slice_prepared, 40 + turn)[:1], k=3, thread_id="state-long")
    assert len(semsr.thread_session("state-long")) == 6
    with sqlite3.connect(semsr.settings.paths.threads_db) as db:
        (kept,) = db.execute("SELECT COUNT(*) FROM checkpoints WHERE thread_id = 'state-long'").fetchone()
    assert kept <= semsr.settings.thread_checkpoints
    later = time.time() + (semsr.settings.thread_ttl_days + 1) * 86_400
    assert "state-long" in semsr.janitor.sweep(now=later)
    with pytest.raises(InvalidRequest, match="unknown thread"):
        semsr.thread_session("state-long")


def test_an_unwritable_trace_is_an_error_naming_it(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(ConfigError, match=r"trace=.*cannot be written"):
        JsonlTracer(blocker / "trace.jsonl")  # a file where a directory should be


@pytest.mark.parametrize(
    ("text", "why"),
    [("", "Invalid JSON"), ('{"model": "sr"', "Invalid JSON"), ("{}", "Field required")],
)
def test_a_corrupt_tuning_record_is_one_line_naming_the_fix(tmp_path, text, why):
    path = tmp_path / "sr.json"
    path.write_text(text)
    with pytest.raises(DataError, match=why) as caught:
        read_record(path, TunedRecord, "semsr tune --pipeline sr")
    assert "\n" not in str(caught.value) and str(path) in str(caught.value) and "semsr tune" in str(caught.value)


def test_records_refuse_nan_and_extra_keys(tmp_path):
    shipped = (SHIPPED_TUNED_DIR / "amazon-beauty" / "sr.json").read_text()
    assert read_record(SHIPPED_TUNED_DIR / "amazon-beauty" / "sr.json", TunedRecord, "x").model == "sr"
    nan = tmp_path / "nan.json"
    nan.write_text(shipped.replace('"seconds": ', '"seconds": NaN, "was": ', 1))
    with pytest.raises(DataError):
        read_record(nan, TunedRecord, "semsr tune")
    extra = tmp_path / "epochs.json"
    extra.write_text('{"best_epoch": 3, "seed": 0, "history": [], "surprise": 1}')
    with pytest.raises(DataError, match="Extra inputs"):
        read_record(extra, EpochRecord, "semsr prepare")
