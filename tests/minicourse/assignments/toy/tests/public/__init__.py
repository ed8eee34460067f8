"""Public tests: students run these at home."""
