"""Hidden tests of the basics unit: other inputs, shapes, seeds, dtypes and edge cases."""
