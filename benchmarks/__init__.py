"""Speed and quality benchmarks; each module has a ``main()`` and writes its results under ``results/``.

Run them all with ``python -m benchmarks`` (``make bench``) or some by name: ``python -m benchmarks semantic_index``.
"""
