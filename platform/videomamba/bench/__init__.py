"""Benchmarks. The GPU harness (throughput and peak memory of every backend vs the attention
baseline), one module per concern:

* ``spec``: configurations (:class:`~videomamba.bench.spec.Spec`), run options, plans, row schema;
* ``timing``: warm-up and CUDA-event timing of back-to-back steps;
* ``measure``: building a model, one step, failure classes, peak memory, environment probe;
* ``worker``: runs one task (``python -m videomamba.bench.worker TASK.json``), streams JSON lines;
* ``run``: the whole run (worker subprocesses, sections, time limit);
* ``report``: derived numbers, markdown, JSON, plot; ``checks``: GPU correctness;
  ``profiling``: torch.profiler kernel tables; ``floor``: the physical floor;
  ``baseline``: the attention baseline.

Also ``e2e`` (the whole training job vs the model-only step) and ``scan_kernels`` (the scan
kernels alone). Run: ``videomamba bench --check --memory-fit --out DIR`` (the command line is
:mod:`videomamba.commands.bench`; ``python -m videomamba.bench.gpu`` takes the same options);
see benchmarks/README.md.
"""
