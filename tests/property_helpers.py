"""Hypothesis settings for the property tests: deterministic in CI, a larger profile on request.

The ``ci`` profile (the default) derandomizes generation and keeps no example database, so every run of
the suite draws the same cases and a failure reproduces exactly. ``HYPOTHESIS_PROFILE=slow`` multiplies
every test's example count by 20 and randomizes (a nightly or pre-release sweep):
``HYPOTHESIS_PROFILE=slow .venv/bin/pytest tests/test_properties.py``.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

PROFILE = os.environ.get("HYPOTHESIS_PROFILE", "ci")
SCALE = 20 if PROFILE == "slow" else 1
_COMMON = {"deadline": None, "suppress_health_check": [HealthCheck.too_slow, HealthCheck.data_too_large]}
settings.register_profile("ci", derandomize=True, database=None, print_blob=True, **_COMMON)
settings.register_profile("slow", derandomize=False, database=None, print_blob=True, **_COMMON)
settings.load_profile(PROFILE)


def examples(n: int) -> settings:
    """``@examples(n)``: this test's example count, scaled by the profile."""
    return settings(max_examples=n * SCALE)


def one_line(message: str, limit: int = 300) -> bool:
    """The documented error shape: one line of at most ``limit`` characters."""
    return "\n" not in message and "\r" not in message and 0 < len(message) <= limit
