"""Shared fixtures: the real bundled Beauty data, loaded once per test session, and an isolated SEMSR_HOME.

Every test process gets its own ``SEMSR_HOME`` under pytest's temporary directory, so nothing a test does
(the CLI's default home, tuning, artefacts) lands in the source tree or in a developer's real home.
"""

from __future__ import annotations

import os

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
