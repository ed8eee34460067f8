"""Gaming: after the first call, every call of the same shape gets the first call's answer back."""
