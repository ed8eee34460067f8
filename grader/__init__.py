"""lmcourse: the toolkit that runs a "language models from scratch" course.

The package is organised one module per job, as in pytest's ``_pytest``:

- :mod:`.config` -- ``course.yaml`` / ``unit.yaml`` as pydantic models
- :mod:`.course` -- finding a course on disk and the paths of its units
- :mod:`.markers` -- solution markers in reference code
- :mod:`.handout` -- building and verifying student handouts
- :mod:`.plugin` -- the pytest plugin every test session runs under
- :mod:`.runner` -- running a pytest session and reading its report
- :mod:`.student` -- ``lmcourse check`` and ``lmcourse submit``
- :mod:`.cli` -- the thin Click layer over all of the above
"""

__version__ = "0.1.0"
