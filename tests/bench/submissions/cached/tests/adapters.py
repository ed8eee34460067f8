from __future__ import annotations

import torch
from lmc_systems.attention import CachedAttention


def get_flashattention_autograd_function_triton() -> type[torch.autograd.Function]:
    return CachedAttention
