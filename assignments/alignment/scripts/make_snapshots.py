"""Regenerate the hidden tests' snapshots from the reference implementation.

    python assignments/alignment/scripts/make_snapshots.py

Runs the producers of ``tests/producers.py`` with the reference as the student's package (a
temporary ``lmc_alignment`` link to ``reference/alignment``) on the inputs of
``tests/hidden/cases.py``, and writes ``tests/hidden/snapshots/alignment_hidden.npz`` (fixed zip
timestamps: reruns are byte-identical with the same library versions). The versions it ran with
are stored beside the arrays; ``unit.yaml`` pins them for the handout.
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

import numpy as np

from lmcourse.grader.snapshots import write_npz

UNIT = Path(__file__).resolve().parents[1]
SNAPSHOT = UNIT / "tests" / "hidden" / "snapshots" / "alignment_hidden.npz"


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "lmc_alignment").symlink_to(UNIT.parents[1] / "reference" / "alignment")
        sys.path[:0] = [tmp, str(UNIT)]
        import tokenizers
        import torch
        import transformers
        from tests.hidden.cases import DPO_CASES, GRPO_VARIANTS

        from tests import adapters, producers

        fixtures = str(UNIT / "fixtures")
        arrays: dict[str, np.ndarray] = {}
        for name, options in GRPO_VARIANTS.items():
            out = producers.grpo_train_step(adapters, fixtures, **dict(options))
            arrays[f"grpo/{name}/loss"] = out["loss"].numpy()
            for key, value in out["weights"].items():
                arrays[f"grpo/{name}/weights/{key}"] = value.numpy()
        for i, case in enumerate(DPO_CASES):
            out = producers.dpo_loss(adapters, fixtures, *case)
            arrays[f"dpo/{i}/loss"] = out["loss"].numpy()
            arrays[f"dpo/{i}/policy_grad"] = out["policy_grad"].numpy()
        versions = {"torch": torch.__version__.split("+")[0], "transformers": transformers.__version__,
                    "tokenizers": tokenizers.__version__}
        arrays["versions"] = np.frombuffer(json.dumps(versions, sort_keys=True).encode(), dtype=np.uint8)
    write_npz(SNAPSHOT, arrays)


if __name__ == "__main__":
    main()
