"""The systems unit: make the basics Transformer fast and spread its training over several devices.

Modules: benchmarking and profiling scripts; FlashAttention-2 in PyTorch (``flash_attention``) and
in Triton (``flash_triton``); data-parallel training with overlapped and bucketed gradient
all-reduce, fully sharded data parallelism and optimizer-state sharding.
"""
