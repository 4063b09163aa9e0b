"""graphdl's MLP link decoder beside the OGB example's LinkPredictor, fwd+bwd on ogbl-ddi batches.

The OGB ddi example (``examples/linkproppred/ddi/gnn.py``) scores pairs with
``x = z[src] * z[dst]`` and ``F.dropout`` after each hidden layer; graphdl's
:class:`~graphdl.models.gnn.MLPDecoder` gathers with ``index_select``
(:func:`~graphdl.models.gnn.hadamard`) and draws the CPU dropout mask from
``torch.rand`` (:func:`~graphdl.models.gnn.pair_dropout`). Both run with the same
weights on the same 64 * 1024 real training pairs, forward and backward, in one
process; each piece is also timed alone. Writes benchmarks/results/link_decoder.md.

    python benchmarks/bench_link_decoder.py --root ../shared/data
"""

from __future__ import annotations

import argparse
import platform

import torch
import torch.nn.functional as F

import graphdl.datasets as gd
from graphdl.io import atomic_write_text
from graphdl.models.gnn import MLPDecoder, hadamard, pair_dropout

from bench_negative_sampling import seconds_per_call  # a sibling script


def _example_predictor(decoder: MLPDecoder, z: torch.Tensor, pairs: torch.Tensor) -> torch.Tensor:
    """The OGB example's LinkPredictor.forward, on the decoder's own weights."""
    x = z[pairs[0]] * z[pairs[1]]
    for lin in decoder.lins[:-1]:
        x = F.dropout(F.relu(lin(x)), decoder.dropout, True)
    return decoder.lins[-1](x).squeeze(-1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", default=None, help="data root holding ogb/ogbl_ddi")
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--num", type=int, default=64 * 1024, help="pairs per call (the example's batch)")
    parser.add_argument("--md", default="benchmarks/results/link_decoder.md")
    args = parser.parse_args()
    data = gd.load("ogbl-ddi", root=args.root)[0]
    torch.manual_seed(0)
    pairs = data.edge_index[:, torch.randperm(data.edge_index.size(1))[:args.num]]
    z = torch.randn(data.num_nodes, 256, requires_grad=True)
    decoder = MLPDecoder(256, num_layers=2, dropout=0.5).train()  # the example: 2 layers, 256, dropout 0.5
    h = torch.randn(args.num, 256, requires_grad=True)

    rows = [
        ("gather z_i * z_j", lambda: (z[pairs[0]] * z[pairs[1]]).sum().backward(),
         lambda: hadamard(z, pairs).sum().backward()),
        ("dropout p=0.5 on the hidden rows", lambda: F.dropout(h, 0.5, True).sum().backward(),
         lambda: pair_dropout(h, 0.5, True).sum().backward()),
        ("whole predictor", lambda: _example_predictor(decoder, z, pairs).sum().backward(),
         lambda: decoder(z, pairs).sum().backward()),
    ]
    lines = [f"# Link decoder on ogbl-ddi: {args.num} pairs, 256 channels, forward + backward", "",
             f"`python benchmarks/bench_link_decoder.py` (torch {torch.__version__}, {platform.machine()}, "
             f"{torch.get_num_threads()} threads, CPU; mean of {args.repeats} calls after one warm-up)", "",
             "| piece | OGB example (ms) | graphdl (ms) | graphdl is faster by |", "|---|---|---|---|"]
    for name, reference, ours in rows:
        ref_ms, our_ms = (seconds_per_call(fn, args.repeats) * 1e3 for fn in (reference, ours))
        lines.append(f"| {name} | {ref_ms:.1f} | {our_ms:.1f} | {ref_ms / our_ms:.2f}x |")
    text = "\n".join(lines)
    print(text)
    atomic_write_text(args.md, text + "\n")


if __name__ == "__main__":
    main()
