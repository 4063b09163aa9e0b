"""Planetoid citation graphs (Cora, CiteSeer, PubMed) via PyG's official loader.

The raw files are looked up at ``<root>/planetoid/<Name>/raw/ind.<name>.*``
(PyG's own layout with ``root=<root>/planetoid``), so a folder laid out for
``torch_geometric.datasets.Planetoid`` works unchanged.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from graphdl.datasets import DATASETS
from graphdl.datasets.root import (
    DatasetFolder,
    check_loader_kwargs,
    dataset_lock,
    dataset_source,
    download_allowed,
    prepare_folder,
    run_official_loader,
)
from graphdl.errors import ConfigError, DataError, UnknownNameError, ValidationError, did_you_mean

__all__ = ["PlanetoidSpec", "AccuracyEvaluator", "PLANETOID", "PLANETOID_SPLITS"]

#: registry name -> PyG's dataset name (which is also the folder name).
PLANETOID = {"cora": "Cora", "citeseer": "CiteSeer", "pubmed": "PubMed"}
#: The ``split`` values ``torch_geometric.datasets.Planetoid`` accepts.
PLANETOID_SPLITS = ("public", "full", "geom-gcn", "random")
RAW_PARTS = ("x", "tx", "allx", "y", "ty", "ally", "graph", "test.index")
URL = "https://github.com/kimiyoung/planetoid/raw/master/data"
#: Where PyG downloads the 10 geom-gcn split files (``<name>_split_0.6_0.2_<i>.npz``) from.
GEOM_GCN_URL = "https://raw.githubusercontent.com/graphdml-uiuc-jlu/geom-gcn/master/splits"

#: (nodes, classes) as published, for the registry summary and :class:`DatasetInfo`.
_STATS = {"cora": (2708, 7), "citeseer": (3327, 6), "pubmed": (19717, 3)}


class AccuracyEvaluator:
    """Accuracy with the interface of the OGB evaluators.

    ``eval({"y_true": y_true, "y_pred": y_pred})`` returns ``{"acc": float}``,
    the fraction of nodes whose predicted class equals the true class.
    ``y_true`` holds class ids, shape ``(n,)`` or ``(n, 1)``; ``y_pred`` holds
    class ids of the same shape, or scores of shape ``(n, num_classes)`` whose
    arg-max is the prediction. Tensors and numpy arrays are accepted; ids
    that are not whole numbers (probabilities) are refused.
    """

    eval_metric = "acc"
    num_tasks = 1

    def __init__(self, name: str = "accuracy") -> None:
        self.name = name

    @property
    def expected_input_format(self) -> str:
        """A description of the ``input_dict`` :meth:`eval` takes."""
        return (
            f"==== Expected input format of Evaluator for {self.name}\n"
            "{'y_true': y_true, 'y_pred': y_pred}\n"
            "- y_true: numpy ndarray or torch tensor of class ids, shape (num_nodes,) or (num_nodes, 1)\n"
            "- y_pred: class ids of the same shape, or scores of shape (num_nodes, num_classes)\n"
        )

    @property
    def expected_output_format(self) -> str:
        """A description of what :meth:`eval` returns."""
        return (
            f"==== Expected output format of Evaluator for {self.name}\n"
            "{'acc': acc}\n- acc (float): fraction of correctly classified nodes\n"
        )

    def eval(self, input_dict: dict[str, Any]) -> dict[str, float]:
        """Accuracy of ``input_dict["y_pred"]`` against ``input_dict["y_true"]``."""
        for key in ("y_true", "y_pred"):
            if key not in input_dict:
                raise ValidationError(
                    f"evaluator {self.name!r}: input_dict has no {key!r} (keys: "
                    f"{sorted(input_dict)}). Pass {{'y_true': labels, 'y_pred': predictions}}."
                )
        y_true = torch.as_tensor(input_dict["y_true"]).detach().cpu()
        y_pred = torch.as_tensor(input_dict["y_pred"]).detach().cpu()
        if y_true.dim() == 2 and y_true.size(1) == 1:
            y_true = y_true.view(-1)
        if y_true.dim() != 1:
            raise ValidationError(
                f"evaluator {self.name!r}: y_true must have shape (n,) or (n, 1), got "
                f"{tuple(y_true.shape)}."
            )
        diverged = False
        if y_pred.dim() == 2 and y_pred.size(1) > 1:
            # argmax reads a NaN score as the predicted class: a diverged model scores NaN, as graphdl's acc does
            diverged = y_pred.is_floating_point() and bool(y_pred.isnan().any())
            y_pred = y_pred.argmax(dim=1)
        elif y_pred.dim() == 2 and y_pred.size(1) == 1:
            y_pred = y_pred.view(-1)
        if y_pred.shape != y_true.shape:
            raise ValidationError(
                f"evaluator {self.name!r}: y_pred of shape {tuple(torch.as_tensor(input_dict['y_pred']).shape)} "
                f"does not match y_true of shape {tuple(y_true.shape)}; pass class ids of the "
                f"same shape or scores of shape (n, num_classes)."
            )
        for key, ids in (("y_true", y_true), ("y_pred", y_pred)):
            # probabilities of shape (n,) or (n, 1) compared with class ids gave a silent near-zero accuracy
            if ids.is_floating_point() and not bool((ids == ids.round()).all()):
                bad = ids[ids != ids.round()][0].item()
                raise ValidationError(
                    f"evaluator {self.name!r}: {key} holds values that are not class ids (e.g. {bad}). Pass "
                    f"class ids, or scores of shape (n, num_classes) whose arg-max is the prediction (for "
                    f"one score per node, threshold it first)."
                )
        if y_true.numel() == 0:
            raise ValidationError(f"evaluator {self.name!r}: y_true is empty; nothing to score.")
        return {"acc": math.nan if diverged else float((y_pred == y_true).double().mean())}


def _read_raw_part(raw_dir: Path, name: str, part: str) -> Any:
    from torch_geometric.io.planetoid import read_file

    return read_file(str(raw_dir), name, part)


def _test_index_problem(raw_dir: Path, name: str) -> str | None:
    """Why ``ind.<name>.test.index`` does not fit ``tx`` and ``allx``; ``None`` when it does.

    A truncated index still parses: PyG then silently marks fewer test nodes and
    moves only some test rows of ``x`` and ``y`` to their node ids. It must list
    one distinct node id per row of ``tx``, each after the ``allx`` rows.
    """
    try:
        test_index = _read_raw_part(raw_dir, name, "test.index").view(-1)
        tx_rows = _read_raw_part(raw_dir, name, "tx").size(0)
        allx_rows = _read_raw_part(raw_dir, name, "allx").size(0)
    except Exception:  # noqa: BLE001 - an unreadable file fails in the loader, where find_corrupt names it
        return None
    lower = name.lower()
    if test_index.numel() != tx_rows:
        return f"it lists {test_index.numel()} test nodes, but ind.{lower}.tx has {tx_rows} rows"
    if tx_rows and int(test_index.min()) < allx_rows:
        return (f"test node id {int(test_index.min())} is below {allx_rows}, where the test nodes start "
                f"(the rows of ind.{lower}.allx)")
    if test_index.unique().numel() != tx_rows:
        return "it lists a test node id more than once"
    return None


@dataclass(frozen=True)
class PlanetoidSpec:
    """Registry entry of one Planetoid dataset; calling it loads the dataset.

    Attributes:
        name: Registry name (``"cora"``).
        pyg_name: PyG's name and folder name (``"Cora"``).
    """

    name: str
    pyg_name: str

    @property
    def level(self) -> str:
        """The prediction level: always ``"node"``."""
        return "node"

    def folder(self, root: str | os.PathLike | None = None, split: str = "public") -> DatasetFolder:
        """Locate the raw files (copying a read-only root to the cache)."""
        sub = "geom-gcn/raw" if split == "geom-gcn" else "raw"
        expected = [f"{sub}/ind.{self.pyg_name.lower()}.{part}" for part in RAW_PARTS]
        if split == "geom-gcn":
            expected += [f"{sub}/{self.pyg_name.lower()}_split_0.6_0.2_{i}.npz" for i in range(10)]
        return prepare_folder(self.name, "planetoid", self.pyg_name, expected, root,
                              copy_parts=("raw", "geom-gcn/raw"))

    def __call__(self, root: str | os.PathLike | None = None, *, download: bool | None = None,
                 **kwargs: Any) -> Any:
        """Load the dataset as ``torch_geometric.datasets.Planetoid``.

        Args:
            root: The data root (see :func:`graphdl.datasets.root.resolve_root`).
            download: Allow the official download when files are missing
                (default: yes, unless ``$GRAPHDL_OFFLINE`` is set).
            **kwargs: Passed to ``Planetoid`` (``split``, ``transform``,
                ``pre_transform``, ``num_train_per_class``, ...).
        """
        from torch_geometric.datasets import Planetoid

        check_loader_kwargs(self.name, Planetoid, kwargs, set_here=("root", "name"))
        download = download_allowed(download)  # a bad value or $GRAPHDL_OFFLINE is refused before any copy
        split = str(kwargs.get("split", "public")).lower()
        if split not in PLANETOID_SPLITS:
            raise UnknownNameError(
                f"unknown Planetoid split {kwargs['split']!r} for {self.name!r}."
                f"{did_you_mean(split, PLANETOID_SPLITS)} Planetoid splits: "
                f"{', '.join(PLANETOID_SPLITS)}."
            )
        sizes = [k for k in ("num_train_per_class", "num_val", "num_test") if k in kwargs]
        if sizes and split != "random":  # Planetoid reads them for the random split only
            raise ConfigError(f"{', '.join(sizes)} set the sizes of split='random'; the {split!r} split of "
                              f"{self.name!r} has fixed sizes, so they would be ignored. Pass split='random' with "
                              f"them, or leave them out.")
        if "split" in kwargs:
            # Planetoid lower-cases ``split`` for its folders but applies the "full" and "random"
            # masks only for the exact lower-case string: split="Full" gave the public masks.
            kwargs = {**kwargs, "split": split}
        with dataset_lock(dataset_source(root, "planetoid", self.pyg_name)):
            return self._load(self.folder(root, split), split, download, kwargs)

    def _load(self, folder: DatasetFolder, split: str, download: bool | None,
              kwargs: dict[str, Any]) -> Any:
        """Run ``Planetoid`` on the prepared folder (under the dataset lock)."""
        from torch_geometric.datasets import Planetoid

        prefix = "geom-gcn/" if split == "geom-gcn" else ""
        raw_dir = folder.work_dir / prefix / "raw"
        index_file = raw_dir / f"ind.{self.pyg_name.lower()}.test.index"

        def find_corrupt(folder: DatasetFolder) -> tuple[Path, str] | None:
            for part in RAW_PARTS:
                try:
                    _read_raw_part(raw_dir, self.pyg_name, part)
                except Exception as exc:  # noqa: BLE001 - any failure means a bad file
                    return raw_dir / f"ind.{self.pyg_name.lower()}.{part}", f"{type(exc).__name__}: {exc}"
            why = _test_index_problem(raw_dir, self.pyg_name)
            return None if why is None else (index_file, why)

        def construct(loader_kwargs: dict[str, Any]) -> Any:
            processed = folder.work_dir / prefix / "processed" / "data.pt"
            if loader_kwargs.get("force_reload") or not processed.is_file():  # the raw files are processed
                why = _test_index_problem(raw_dir, self.pyg_name)
                if why is not None:
                    raise DataError(
                        f"dataset {self.name!r}: file {str(folder.source_path(index_file))!r} is corrupt or "
                        f"truncated ({why}). Replace it with a fresh copy of the official file (from {URL}) "
                        f"and load again; no processed files were kept."
                    )
            return Planetoid(str(folder.work_root), self.pyg_name, **loader_kwargs)

        return run_official_loader(
            folder,
            construct,
            kwargs,
            url=URL,
            fetch=self.fetch_hint(folder, split),
            download=download_allowed(download),
            find_corrupt=find_corrupt,
            processed_dirs=(f"{prefix}processed",),
        )

    def fetch_hint(self, folder: DatasetFolder, split: str = "public") -> str:
        """How to fetch the raw files by hand (for missing-file errors)."""
        raw = str(folder.source / ("geom-gcn/raw" if split == "geom-gcn" else "raw"))
        if split != "geom-gcn":
            return f"Download each file from {URL}/<file name> into {raw!r}"
        lower = self.pyg_name.lower()  # the split files are not in the Planetoid repository
        return (f"Download each ind.{lower}.* file from {URL}/<file name> and each "
                f"{lower}_split_0.6_0.2_<i>.npz file from {GEOM_GCN_URL}/<file name> into {raw!r}")

    def info_fields(self) -> dict[str, Any]:
        """The fields of :class:`graphdl.datasets.DatasetInfo` for this dataset."""
        nodes, classes = _STATS[self.name]
        return dict(
            name=self.name, level="node", metric="acc", higher_is_better=True, num_tasks=1,
            task_type="multiclass classification", num_classes=classes, split="public",
            evaluator="accuracy", source="planetoid", url=URL,
            summary=self.summary(),
        )

    def summary(self) -> str:
        """One line for ``graphdl list datasets``."""
        nodes, classes = _STATS[self.name]
        return (f"Planetoid citation graph: node classification, {nodes:,} nodes, {classes} classes, "
                f"acc (public split)")

    def evaluator(self) -> AccuracyEvaluator:
        """An :class:`AccuracyEvaluator` named after the dataset."""
        return AccuracyEvaluator(self.name)


def split_indices_planetoid(dataset: Any, split: str | int | None = None) -> dict[str, torch.Tensor]:
    """Node indices of the train/valid/test masks of a Planetoid dataset.

    ``split`` selects one of the 10 geom-gcn splits (``0``..``9``) when the
    masks are 2-D; for the other splits it must be ``None`` or the split the
    dataset was loaded with (choose it at load time: ``load("cora", split="full")``).
    """
    from torch_geometric.data.data import BaseData

    data = dataset if isinstance(dataset, BaseData) else dataset[0]  # the graph itself, or the dataset
    masks = {"train": data.train_mask, "valid": data.val_mask, "test": data.test_mask}
    loaded = getattr(dataset, "split", "public")
    if data.train_mask.dim() == 2:
        count = data.train_mask.size(1)
        options = [str(i) for i in range(count)]
        if split is None or str(split) not in options:
            raise UnknownNameError(
                f"split {split!r} is not available for {getattr(dataset, 'name', 'this dataset')} "
                f"loaded with split={loaded!r}: it has {count} splits; pass split=0..{count - 1}."
            )
        masks = {key: mask[:, int(split)] for key, mask in masks.items()}
    elif split is not None and str(split).lower() != loaded:
        # a number picks one of geom-gcn's ten splits; a name is the split to load
        indexed = isinstance(split, int) or str(split).isdigit()
        fix = (f"load the dataset with split='geom-gcn' (its 10 splits), then call split_indices(dataset, "
               f"split={split!r})" if indexed else
               f"load the dataset with split={str(split).lower()!r} (one of {', '.join(PLANETOID_SPLITS)}), then "
               f"call split_indices(dataset)")
        raise UnknownNameError(
            f"split {split!r} is not available for {getattr(dataset, 'name', 'this dataset')}, "
            f"which was loaded with split={loaded!r}. Planetoid fixes the split at load time: {fix}."
        )
    return {key: mask.nonzero(as_tuple=False).view(-1) for key, mask in masks.items()}


for _name, _pyg_name in PLANETOID.items():
    _spec = PlanetoidSpec(_name, _pyg_name)
    DATASETS.register(_name, _spec, summary=_spec.summary(), origin=__name__, level="node",
                      metric="acc", source="planetoid", task_type="multiclass classification")
