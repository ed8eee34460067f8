"""Gaming: the work goes to another CUDA stream, and the call returns without the caller waiting."""
