"""``lmcourse bench``: GPU timings of a submission against the staff implementation, in the same run.

- :mod:`.spec` -- the ``benchmarks:`` entries of ``unit.yaml`` (cases, bands, tolerances, FLOPs)
- :mod:`.peaks` -- GPU peak FLOP/s and bandwidth, and the physical floor of a time
- :mod:`.plan` -- the seeds and cases both probe processes follow
- :mod:`.launch` -- starting a probe process in a sandbox (or not)
- :mod:`.probe` -- the code that runs in the sandbox beside the student's (torch only)
- :mod:`.measurements` -- the probes' reports as data, and the statistics of times
- :mod:`.verdict` -- from reports to a score per case, anomalies named
- :mod:`.harness` -- one benchmark end to end: ``run_benchmarks(unit, code, sandbox=...)``
- :mod:`.grading` -- benchmark results into a grading run: rows, Gradescope tests, leaderboard

The protocol and its threat model: docs/bench.md.
"""
