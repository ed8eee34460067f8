"""Gaming: an answer computed once, for inputs of its own, returned whenever the shapes match."""
