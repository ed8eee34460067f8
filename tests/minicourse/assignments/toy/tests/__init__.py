"""Tests of the toy unit (a package, so tests import ``tests.adapters`` and ``tests.producers``)."""
