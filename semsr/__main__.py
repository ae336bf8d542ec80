"""``python -m semsr``: the same command line as the ``semsr`` script, for a checkout run without installing it
(e.g. ``PYTHONPATH=. python -m semsr eval ...`` from a work tree whose venv belongs to another clone)."""

from semsr.cli import main

main()
