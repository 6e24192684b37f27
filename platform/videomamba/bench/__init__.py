"""Benchmarks: the attention baseline (``baseline``), the GPU harness (``gpu``: throughput and
peak memory of every backend vs the baseline), correctness checks (``checks``), the physical
floor (``floor``), profiles (``profiling``) and reports (``report``).

Run: ``PYTHONPATH=platform python -m videomamba.bench.gpu --check --memory-fit --out DIR``
(or ``videomamba bench ...``); see benchmarks/README.md.
"""
