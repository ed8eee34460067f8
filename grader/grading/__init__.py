"""Grading one submission: intake -> compose -> execute -> collect -> score.

- :mod:`.intake` -- unpack safely, keep only the student's files
- :mod:`.compose` -- the sandbox side and the trusted side of the run
- :mod:`.carrier` -- the grader's ``student`` fixture: calls carried into a sandboxed worker
- :mod:`.worker` -- what runs inside the sandbox
- :mod:`.collect` -- every expected test reported, canaries checked
- :mod:`.score` -- points, late policy, what students see
- :mod:`.results` -- Gradescope's results.json format
- :mod:`.engine` -- the five steps for one submission
"""
