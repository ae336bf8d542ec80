"""Shared fixtures: the real bundled Beauty data, loaded once per test session, and an isolated SEMSR_HOME.

Every test process gets its own ``SEMSR_HOME`` under pytest's temporary directory, so nothing a test does
(the CLI's default home, tuning, artefacts) lands in the source tree or in a developer's real home.

The graph's tests (``test_graph.py``, ``test_conversation.py``, ``test_server.py``) share one prepared
slice of Beauty: the 700 latest-ending sessions and their items as a CSV pair, i.e. a dataset that is *not*
bundled, prepared once per test session (its tuned hyper-parameters are Beauty's, written into the slice's
SEMSR_HOME as a user's ``semsr tune`` would, so preparation spends no time on a random search).
"""

from __future__ import annotations

import csv
import os
import shutil
from pathlib import Path

import pytest

from sessiondata.loaders.beauty import load_amazon_beauty
from sessiondata.protocol import Protocol, build_protocol
from sessiondata.schema import Dataset


@pytest.fixture(scope="session", autouse=True)
def isolated_home(tmp_path_factory: pytest.TempPathFactory):
    previous = os.environ.get("SEMSR_HOME")
    os.environ["SEMSR_HOME"] = str(tmp_path_factory.mktemp("default-semsr-home"))
    yield
    if previous is None:
        os.environ.pop("SEMSR_HOME", None)
    else:
        os.environ["SEMSR_HOME"] = previous


@pytest.fixture(scope="session")
def beauty() -> Dataset:
    return load_amazon_beauty()


@pytest.fixture(scope="session")
def beauty_protocol(beauty: Dataset) -> Protocol:
    return build_protocol(beauty)


@pytest.fixture(scope="session")
def settings(tmp_path_factory: pytest.TempPathFactory):
    """Project settings for the suite: a fresh SEMSR_HOME, one thread (tests share 2 cores)."""
    from semsr.settings import Settings

    return Settings(home=tmp_path_factory.mktemp("semsr-home"), threads=1, progress=False)


@pytest.fixture(scope="session")
def slice_spec(beauty: Dataset, tmp_path_factory: pytest.TempPathFactory) -> str:
    """Write the latest-ending 700 Beauty sessions and their items as a CSV pair; return its dataset spec."""
    root = tmp_path_factory.mktemp("beauty-slice")
    sessions = sorted(beauty.sessions, key=lambda s: s.end_time)[-700:]
    catalog = beauty.catalog
    used = sorted({i for s in sessions for i in s.items})
    with (root / "items.csv").open("w", newline="") as sink:
        writer = csv.writer(sink)
        writer.writerow(["item_id", "title"])
        writer.writerows([catalog.ids[i], catalog.titles[i]] for i in used)
    with (root / "interactions.csv").open("w", newline="") as sink:
        writer = csv.writer(sink)
        writer.writerow(["session_id", "item_id", "timestamp"])
        for session in sessions:
            writer.writerows(
                [session.session_id, catalog.ids[i], t] for i, t in zip(session.items, session.times, strict=True)
            )
    return f"csv:{root}"


@pytest.fixture(scope="session")
def slice_settings(slice_spec: str, tmp_path_factory: pytest.TempPathFactory):
    from semsr.settings import Settings
    from sr_models.registry import SHIPPED_TUNED_DIR

    home = tmp_path_factory.mktemp("slice-home")
    name = Path(slice_spec.removeprefix("csv:")).name
    for model in ("vsknn", "sr", "title-knn", "covisit", "covisit-lift", "recent-popularity"):
        target = home / "tuned" / name / f"{model}.json"
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(SHIPPED_TUNED_DIR / "amazon-beauty" / f"{model}.json", target)
    return Settings(home=home, threads=1, progress=False, dataset=slice_spec)


@pytest.fixture(scope="session")
def slice_protocol(slice_spec: str, slice_settings) -> Protocol:
    from sessiondata.loaders import load_dataset

    return build_protocol(load_dataset(slice_spec), slice_settings.protocol)


@pytest.fixture(scope="session")
def slice_prepared(slice_protocol: Protocol, slice_settings) -> Protocol:
    """The default profile and the RRF one, prepared on the slice (others are prepared where needed)."""
    from evals.prepare import prepare_profile

    for name in ("fused", "fused-rrf"):
        prepare_profile(name, slice_protocol, slice_settings, progress=False)
    return slice_protocol
