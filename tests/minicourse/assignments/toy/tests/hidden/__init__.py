"""Hidden tests: they never leave the grader."""
