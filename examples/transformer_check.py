"""Check a Hugging Face GPT-2 at initialization, break its init, and let ``fix_`` repair it.

The stock model (initializer_range 0.02, output projections scaled by 1/√(2L)) is pre-LN and healthy: its stream
grows additively, as the pre-LN law says. At initializer_range 1.0 every branch amplifies its normalized input
by orders of magnitude (branch gain ≫ 4): ``check`` calls it FAILING and ``fix_`` applies GPT-2's own rule, then
verifies it by measuring again. Runs on the CPU in a few seconds; no download (the model is built from a config).

    python examples/transformer_check.py [--layers 6] [--width 128]
"""
from __future__ import annotations

import argparse

import torch

import deepstart


def gpt2(layers: int, width: int, init_range: float):
    from transformers import GPT2Config, GPT2LMHeadModel

    config = GPT2Config(n_layer=layers, n_embd=width, n_head=4, vocab_size=1000, n_positions=64,
                        initializer_range=init_range, bos_token_id=0, eos_token_id=0, resid_pdrop=0.0,
                        embd_pdrop=0.0, attn_pdrop=0.0, attn_implementation="eager")
    return GPT2LMHeadModel(config)


def _law(report) -> str:
    st = report.family_stats
    return (f"max branch gain {st['branch_gain_max']:.3g} (limit 4), token cosine {st['token_cos_first']:.2f} → "
            f"{st['token_cos_last']:.2f}, attention entropy ≥ {st['attn_entropy_min']:.3f} of uniform")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--layers", type=int, default=6)
    parser.add_argument("--width", type=int, default=128)
    args = parser.parse_args(argv)
    g = torch.Generator().manual_seed(0)
    torch.manual_seed(0)
    inputs = {"input_ids": torch.randint(0, 1000, (4, 32), generator=g)}
    stock = deepstart.check(gpt2(args.layers, args.width, 0.02), inputs, n_inits=4, generator=g)
    print(f"stock GPT-2: {stock.verdict} (family {stock.family}); {_law(stock)}")
    broken = gpt2(args.layers, args.width, 1.0)
    result = deepstart.fix_(broken, inputs, n_inits=4, generator=g)
    print(f"initializer_range=1.0: {result.before.verdict}: "
          + "; ".join(str(f) for f in result.before.findings if f.severity == "error"))
    print(result)
    print(f"after the fix: {result.after.verdict}; {_law(result.after)}")
    return 0 if stock.healthy and result.verified else 1


if __name__ == "__main__":
    raise SystemExit(main())
