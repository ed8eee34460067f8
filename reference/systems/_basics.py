"""The basics unit's package, imported under whatever name this course gives it.

The course's package prefix is chosen when the handout is built (``lmc_basics`` sits beside
``lmc_systems`` in this course), so no module here can spell ``import lmc_basics``. This one
swaps the suffix of its own package instead; other modules write ``from ._basics import basics``.
"""

from __future__ import annotations

import importlib

basics = importlib.import_module(__package__.rpartition("_")[0] + "_basics")
