"""The sandboxed side of grading: a worker that runs student code on request.

This subpackage is copied whole into every sandbox and runs there under the grader's
interpreter with ``python -I``. It imports nothing from lmcourse and nothing outside the
standard library except numpy, torch and safetensors when a value needs them, so the code that
shares a process with hostile student code is small enough to read in one sitting.

- :mod:`.wire` -- frames and the plain-data codec (never pickle), shared with the trusted side
- :mod:`.__main__` -- the loop: connect, receive a call, run it, send back the value or the error
"""
