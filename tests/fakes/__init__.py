"""Reusable test doubles (local HTTP fakes of external services)."""
