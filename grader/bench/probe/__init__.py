"""The benchmark probe: the code that runs *inside* the GPU sandbox, beside the student's code.

It depends on the standard library, torch and safetensors only, and imports its own modules
relatively: the grader copies this folder into the sandbox as the package ``_lmcourse_bench``
(as it does with the grading worker), because ``lmcourse`` itself is not installed in there.

- :mod:`.guards` -- the real timing primitives, captured before student code is imported; tripwires
- :mod:`.timing` -- the timed loop (fresh inputs, L2 flush, CUDA events and a device-wide sync)
- :mod:`.attention` -- the attention workload: inputs from seeds, the timed pass, the fp32 truth
- :mod:`.roles` -- what the submission's process and the reference's process each do per case
- :mod:`.__main__` -- the process itself, writing ``report.json``
"""
