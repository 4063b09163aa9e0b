"""The README's Python examples run as written (with training cut to a few epochs).

The plugin example, whose bodies are elided (``...``), is a sketch and is not run; every other
``python`` block is, in order, in one namespace, from the repository root (where the README's
``../shared/data`` points).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch

import graphdl

ROOT = Path(__file__).resolve().parents[1]
BLOCKS = re.findall(r"```python\n(.*?)```", (ROOT / "README.md").read_text(encoding="utf-8"), re.S)


class _ShortTrainer(graphdl.Trainer):
    def __init__(self, *args, epochs: int = 200, progress: bool = True, **kwargs) -> None:
        super().__init__(*args, epochs=min(epochs, 3), progress=False, **kwargs)


def test_the_readme_examples_run(shared_data: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    sketches = [b for b in BLOCKS if re.search(r"\): \.\.\.", b)]
    assert len(sketches) == 1 and "register(\"max_sage\")" in sketches[0]  # the only block left out
    monkeypatch.chdir(ROOT)
    monkeypatch.setattr(graphdl, "Trainer", _ShortTrainer)
    namespace: dict = {}
    for block in BLOCKS:
        if block in sketches:
            continue
        if "loss(embeddings, labels)" in block:  # the losses example takes a batch of the reader's embeddings
            namespace.update(embeddings=torch.randn(32, 16), labels=torch.randint(0, 4, (32,)))
        exec(compile(block, "README.md", "exec"), namespace)  # noqa: S102 - the project's own README

    assert set(namespace["result"].test) == {"test_acc"}  # the tour
    assert namespace["value"].dim() == 0  # supcon on a batch
    assert namespace["y"].shape == (2 * 32 * 32, 16)  # GridConv: a row per pixel, a column per channel
    assert namespace["out"].shape == (10, 16)  # attention on complete graphs
    assert namespace["scores"].shape == (namespace["data"].num_nodes,)  # an anomaly score per node
