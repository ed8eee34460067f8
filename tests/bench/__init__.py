"""Tests of the GPU benchmark harness (lmcourse bench)."""
