"""``python -m benchmarks [NAME ...]``: run every ``benchmarks/*.py`` module that has a ``main()`` (or the named ones).

Each benchmark parses its own options when run directly (``python -m benchmarks.NAME --help``); run from
here it gets none, so it uses its defaults.
"""

from __future__ import annotations

import importlib
import sys
import time
from pathlib import Path


def discover() -> list[str]:
    """Module names in this folder that define ``main``, in alphabetical order."""
    names = []
    for path in sorted(Path(__file__).parent.glob("*.py")):
        if path.stem.startswith("_"):
            continue
        if "def main(" in path.read_text(encoding="utf-8"):
            names.append(path.stem)
    return names


def run(names: list[str]) -> int:
    available = discover()
    unknown = [name for name in names if name not in available]
    if unknown:
        print(f"error: unknown benchmark(s) {unknown}; available: {available}", file=sys.stderr)
        return 2
    failed = []
    for name in names or available:
        module = importlib.import_module(f"benchmarks.{name}")
        print(f"== benchmarks.{name}", flush=True)
        started = time.perf_counter()
        saved = sys.argv
        sys.argv = [f"benchmarks.{name}"]
        try:
            module.main()
        except Exception as error:  # keep going: one broken benchmark must not hide the others
            print(f"!! benchmarks.{name} failed: {type(error).__name__}: {error}", file=sys.stderr)
            failed.append(name)
        finally:
            sys.argv = saved
        print(f"== benchmarks.{name} done in {time.perf_counter() - started:.1f} s", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(run(sys.argv[1:]))
