"""Hidden tests of the scaling unit: other sweeps and laws, edge cases, and the final prediction's score."""
