"""Shared fixtures: the real bundled Beauty data, loaded once per test session."""

from __future__ import annotations

import pytest

from sessiondata.loaders.beauty import load_amazon_beauty
from sessiondata.protocol import Protocol, build_protocol
from sessiondata.schema import Dataset


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
