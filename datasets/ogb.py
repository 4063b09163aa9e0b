"""Open Graph Benchmark datasets via the official ``ogb`` PyG loaders.

Every dataset in the installed ogb package's master tables
(``ogb/graphproppred/master.csv``, ``ogb/linkproppred/master.csv``,
``ogb/nodeproppred/master.csv``) is registered under its official name
(``ogbg-molbace``, ``ogbl-ddi``, ``ogbn-arxiv``, ...). Loading one returns the
official ``PygGraphPropPredDataset`` / ``PygLinkPropPredDataset`` /
``PygNodePropPredDataset``; the folder layout is OGB's own::

    <root>/ogb/ogbg_molbace/raw/*.csv.gz
    <root>/ogb/ogbg_molbace/split/scaffold/{train,valid,test}.csv.gz
    <root>/ogb/ogbg_molbace/RELEASE_v1.txt

:func:`register_ogb_dataset` adds a dataset in the OGB raw format that is not
in the master tables (your own, or a tiny test fixture); it is loaded by the
same official classes through their ``meta_dict`` argument.
"""

from __future__ import annotations

import csv
import importlib.util
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from graphdl.datasets import DATASETS
from graphdl.datasets.root import (
    DatasetFolder,
    check_gzip,
    check_loader_kwargs,
    dataset_lock,
    dataset_source,
    download_allowed,
    first_corrupt_gzip,
    prepare_folder,
    remove_processed,
    run_official_loader,
)
from graphdl.errors import DataError, UnknownNameError, ValidationError, did_you_mean

__all__ = ["OGBSpec", "LEVELS", "read_master", "register_ogb_dataset", "split_indices_ogb"]

#: prediction level -> the ogb sub-package that serves it.
LEVELS = {"graph": "graphproppred", "link": "linkproppred", "node": "nodeproppred"}
_LOADERS = {
    "graph": "PygGraphPropPredDataset",
    "link": "PygLinkPropPredDataset",
    "node": "PygNodePropPredDataset",
}
_LOWER_IS_BETTER = {"rmse", "mae"}

def _ogb_dir() -> Path:
    spec = importlib.util.find_spec("ogb")
    if spec is None or not spec.submodule_search_locations:  # pragma: no cover
        raise DataError("the 'ogb' package is not installed; pip install 'ogb>=1.3.6'.")
    return Path(list(spec.submodule_search_locations)[0])


def read_master(level: str) -> dict[str, dict[str, str]]:
    """The installed ogb master table of ``level``: ``{name: {field: value}}``.

    The file is read with the csv module (values stay strings, as the ogb
    loaders read them with ``keep_default_na=False``), so listing datasets does
    not import ogb, pandas or scikit-learn.
    """
    path = _ogb_dir() / LEVELS[level] / "master.csv"
    with open(path, newline="", encoding="utf-8") as handle:
        rows = list(csv.reader(handle))
    names = rows[0][1:]
    table: dict[str, dict[str, str]] = {name: {} for name in names}
    for row in rows[1:]:
        for name, value in zip(names, row[1:]):
            table[name][row[0]] = value
    return table


def _flag(meta: dict[str, str], key: str) -> bool:
    return str(meta.get(key, "False")) == "True"


@dataclass(frozen=True)
class OGBSpec:
    """Registry entry of one OGB dataset; calling it loads the dataset.

    Attributes:
        name: Official name (``"ogbg-molbace"``).
        level: ``"graph"``, ``"link"`` or ``"node"``.
        meta: The dataset's column of the master table (strings).
        official: Whether ``name`` is in the installed ogb master table (then
            the official loader is called by name and can download it);
            otherwise it is loaded through ``meta_dict``.
    """

    name: str
    level: str
    meta: dict[str, str] = field(hash=False, compare=False, repr=False)
    official: bool = True

    @property
    def dir_name(self) -> str:
        """OGB's folder name: ``ogbg-molbace`` -> ``ogbg_molbace``."""
        return "_".join(self.name.split("-"))

    def flag(self, key: str) -> bool:
        """A yes/no column of the meta: ``"is hetero"``, ``"has_node_attr"``, ``"binary"`` ..."""
        return _flag(self.meta, key)

    @property
    def release_file(self) -> str:
        """The release note OGB checks before loading (``RELEASE_v1.txt``)."""
        return f"RELEASE_v{self.meta.get('version', '1')}.txt"

    def expected_files(self) -> list[str]:
        """Files the official loader needs, relative to the dataset folder.

        Exact for the homogeneous csv datasets; for binary (npz) and
        heterogeneous ones only the top-level raw files are listed.
        """
        meta, hetero, binary = self.meta, _flag(self.meta, "is hetero"), _flag(self.meta, "binary")
        files: list[str] = []
        if binary:
            files.append("raw/edge_index_dict.npz" if hetero else "raw/data.npz")
        elif hetero:
            files += ["raw/num-node-dict.csv.gz", "raw/triplet-type-list.csv.gz"]
        else:
            files += ["raw/edge.csv.gz", "raw/num-node-list.csv.gz", "raw/num-edge-list.csv.gz"]
            if _flag(meta, "has_node_attr"):
                files.append("raw/node-feat.csv.gz")
            if _flag(meta, "has_edge_attr"):
                files.append("raw/edge-feat.csv.gz")
            if self.level in ("graph", "node"):
                files.append(f"raw/{self.level}-label.csv.gz")
            for key in ("additional node files", "additional edge files"):  # ogbn-arxiv's node_year, ...
                names = str(meta.get(key) or "None")
                if names.strip().lower() not in ("none", "nan", ""):
                    files += [f"raw/{name.strip()}.csv.gz" for name in names.split(",")]
            ext = "pt" if self.level == "link" else "csv.gz"
            files += [f"split/{meta['split']}/{part}.{ext}" for part in ("train", "valid", "test")]
        files.append(self.release_file)
        return files

    def loader_class(self) -> type:
        """The official ``ogb.*.Pyg*PropPredDataset`` class of this level."""
        module = __import__(f"ogb.{LEVELS[self.level]}", fromlist=[_LOADERS[self.level]])
        return getattr(module, _LOADERS[self.level])

    def folder_name(self, root: str | os.PathLike | None = None) -> str:
        """The folder loaded under ``<root>/ogb``: ``<dir_name>_pyg`` when present, else :attr:`dir_name`.

        The official loader prefers the ``_pyg`` folder when it exists.
        """
        # exists(), as the official loader tests it: a file of that name is then named by prepare_folder
        if self.official and dataset_source(root, "ogb", f"{self.dir_name}_pyg").exists():
            return f"{self.dir_name}_pyg"
        return self.dir_name

    def folder(self, root: str | os.PathLike | None = None) -> DatasetFolder:
        """Locate the dataset (copying a read-only root to the cache)."""
        folder = prepare_folder(self.name, "ogb", self.folder_name(root), self.expected_files(), root)
        stale = folder.work_root / f"{self.dir_name}_pyg"
        if self.official and folder.copied and folder.dir_name == self.dir_name and os.path.lexists(stale):
            # The cache copy of a ``_pyg`` folder the source no longer has: the official loader
            # prefers any ``<dir_name>_pyg`` under its root and would load that old copy.
            remove_processed(stale)
        return folder

    def _check_release(self, folder: DatasetFolder, download: bool) -> None:
        """Avoid OGB's interactive "dataset has been updated" prompt.

        The official loader asks on stdin whether to delete and re-download a
        dataset folder that has no ``RELEASE_v<version>.txt``; never let it.
        """
        work = folder.work_dir
        if not work.is_dir() or (work / self.release_file).is_file():
            return
        data_missing = [rel for rel in folder.missing() if rel != self.release_file]
        has_data = any(p.is_file() for p in work.rglob("*") if p.name != ".graphdl-copy.json")
        if not has_data and download:  # an empty leftover: let the download fill it
            shutil.rmtree(work) if folder.copied else _remove_empty_tree(work)
            return
        if not data_missing:
            raise DataError(
                f"dataset {self.name!r}: {str(folder.source)!r} has the data files but no "
                f"{self.release_file}, so the OGB loader would stop and ask on stdin whether to "
                f"delete and re-download it. If these files are the current OGB release "
                f"(v{self.meta.get('version', '1')}), create an empty {self.release_file} in that "
                f"folder; otherwise delete the folder so it is downloaded again."
            )
        raise folder.missing_error(
            folder.missing(), fetch=self.fetch_hint(folder),
            reason=f"the folder is incomplete and has no {self.release_file} (delete it to "
                   f"download the dataset again)",
        )

    def __call__(self, root: str | os.PathLike | None = None, *, download: bool | None = None,
                 **kwargs: Any) -> Any:
        """Load the dataset with the official ogb PyG loader.

        Args:
            root: The data root (see :func:`graphdl.datasets.root.resolve_root`).
            download: Allow the official download when files are missing
                (default: yes, unless ``$GRAPHDL_OFFLINE`` is set).
            **kwargs: Passed to the loader (``transform``, ``pre_transform``).
        """
        if "meta_dict" in kwargs:
            raise ValidationError(
                f"dataset {self.name!r}: meta_dict is set by graphdl; to load a dataset of your "
                f"own in the OGB format, register it with "
                f"graphdl.datasets.ogb.register_ogb_dataset(name, level, meta) and load it by name."
            )
        check_loader_kwargs(self.name, self.loader_class(), kwargs, set_here=("name", "root", "meta_dict"))
        allowed = download_allowed(download)
        with dataset_lock(dataset_source(root, "ogb", self.folder_name(root))):
            folder = self.folder(root)
            self._check_release(folder, allowed)
            return self._load(folder, allowed, kwargs)

    def _load(self, folder: DatasetFolder, allowed: bool, kwargs: dict[str, Any]) -> Any:
        """Run the official loader on the prepared folder (under the dataset lock)."""
        cls = self.loader_class()
        url = (self.meta.get("url") or None) if self.official else None

        def construct(loader_kwargs: dict[str, Any]) -> Any:
            if self.official:
                dataset = cls(self.name, root=str(folder.work_root), **loader_kwargs)
            else:
                meta_dict = {**self.meta, "dir_path": str(folder.work_dir)}
                dataset = cls(self.name, meta_dict=meta_dict, **loader_kwargs)
            dataset.graphdl_source = folder.source  # named in split errors
            return dataset

        return run_official_loader(folder, construct, kwargs, url=url, fetch=self.fetch_hint(folder),
                                   download=allowed, find_corrupt=first_corrupt_gzip)

    def fetch_hint(self, folder: DatasetFolder) -> str | None:
        """How to fetch the files by hand (for missing-file errors)."""
        url = self.meta.get("url")
        if not (self.official and url):
            return None
        return (f"Download {url}, unzip it and move the folder it holds "
                f"({self.meta.get('download_name', self.dir_name)}/) to {str(folder.source)!r}")

    # ------------------------------------------------------------------ facts
    def metric(self) -> str:
        """The official evaluation metric (``"rocauc"``, ``"hits@20"``, ...)."""
        return self.meta["eval metric"]

    def num_tasks(self) -> int:
        """Number of prediction tasks (1 for link prediction)."""
        return int(self.meta.get("num tasks", "1") or 1)

    def summary(self) -> str:
        """One line for ``graphdl list datasets``."""
        tasks = self.num_tasks()
        count = "" if self.level == "link" else f"{tasks} task{'s' if tasks != 1 else ''}, "
        return (f"OGB {self.level} property prediction: {self.meta.get('task type', '?')}, "
                f"{count}{self.metric()} ({self.meta.get('split', '?')} split)")

    def info_fields(self) -> dict[str, Any]:
        """The fields of :class:`graphdl.datasets.DatasetInfo` for this dataset."""
        classes = self.meta.get("num classes")
        return dict(
            name=self.name, level=self.level, metric=self.metric(),
            higher_is_better=self.metric().lower() not in _LOWER_IS_BETTER,
            num_tasks=self.num_tasks(), task_type=self.meta.get("task type", ""),
            num_classes=int(classes) if classes not in (None, "") and int(classes) > 0 else None,
            split=self.meta.get("split", ""), evaluator=self.name, source="ogb",
            url=self.meta.get("url") or None,
            summary=self.summary(),
        )

    def evaluator(self) -> Any:
        """The official ``ogb.<level>proppred.Evaluator`` for this dataset.

        For a dataset added with :func:`register_ogb_dataset` the evaluator is
        the same class, given the metric and task count from its meta.
        """
        module = __import__(f"ogb.{LEVELS[self.level]}", fromlist=["Evaluator"])
        if self.official:
            return module.Evaluator(self.name)
        evaluator = object.__new__(module.Evaluator)  # its __init__ only reads master.csv
        evaluator.name = self.name
        evaluator.eval_metric = self.metric()
        evaluator.num_tasks = self.num_tasks()
        if "hits@" in evaluator.eval_metric:
            evaluator.K = int(evaluator.eval_metric.split("@")[1])
        return evaluator


def _remove_empty_tree(path: Path) -> None:
    for sub in sorted(path.rglob("*"), reverse=True):
        if sub.is_dir():
            sub.rmdir()
    path.rmdir()


def split_indices_ogb(dataset: Any, split: str | None = None) -> dict[str, Any]:
    """``get_idx_split`` / ``get_edge_split`` of an OGB dataset, checked.

    Raises:
        UnknownNameError: ``split`` is not a folder under ``<dataset>/split``.
        DataError: a split file is missing or corrupt.
        ValidationError: ``dataset`` is a subset or reordering (``dataset[...]``,
            ``dataset.shuffle()``), which the split files do not index.
    """
    from graphdl.datasets.safe_load import trusted_dataset_files

    name = getattr(dataset, "name", "this dataset")
    default = str(dataset.meta_info["split"])
    chosen = default if split is None else str(split)
    split_root = Path(dataset.root) / "split"
    source = Path(getattr(dataset, "graphdl_source", dataset.root)) / "split"
    available = sorted(p.name for p in split_root.iterdir() if p.is_dir()) if split_root.is_dir() else []
    if chosen not in available:
        raise UnknownNameError(
            f"split {chosen!r} does not exist for {name}.{did_you_mean(chosen, available)} "
            f"Available splits (folders in {str(source)!r}): {', '.join(available) or '(none)'}. "
            f"Pass split=None for the official split ({default!r})."
        )
    if getattr(dataset, "_indices", None) is not None and list(dataset.indices()) != list(range(dataset.len())):
        # the split files index the graphs as loaded: on a subset or a shuffled copy they pick other graphs
        raise ValidationError(
            f"split_indices: {name} is a subset or reordering of the loaded dataset ({len(dataset)} of its "
            f"{dataset.len()} graphs, from dataset[...] or dataset.shuffle()), but the official split indexes "
            f"the dataset as loaded, so its indices would pick the wrong graphs. Call split_indices on the "
            f"dataset graphdl.datasets.load returned, then index that: dataset[split['train']]."
        )
    getter = dataset.get_edge_split if hasattr(dataset, "get_edge_split") else dataset.get_idx_split
    try:
        with trusted_dataset_files():
            return getter(chosen)
    except Exception as exc:  # noqa: BLE001 - explained with the file to fix
        folder = split_root / chosen
        files = sorted(p for p in folder.rglob("*") if p.is_file())
        bad = next(((p, why) for p in files if p.name.endswith(".gz") and (why := check_gzip(p))), None)
        if bad is not None:
            what = f"file {str(source / chosen / bad[0].relative_to(folder))!r} is corrupt or truncated ({bad[1]})"
        else:
            what = (f"reading {str(source / chosen)!r} (files: "
                    f"{', '.join(p.name for p in files) or 'none'}) failed: {type(exc).__name__}: {exc}")
        raise DataError(
            f"split {chosen!r} of {name}: {what}. Put the official train/valid/test files of "
            f"this split into that folder and try again."
        ) from exc


_META_DEFAULTS = {
    "version": "1", "url": "", "add_inverse_edge": "False", "has_node_attr": "True",
    "has_edge_attr": "False", "additional node files": "None", "additional edge files": "None",
    "is hetero": "False", "binary": "False", "num tasks": "1", "num classes": "-1",
}
_META_REQUIRED = ("eval metric", "task type", "split")


def register_ogb_dataset(name: str, level: str, meta: dict[str, Any], *, summary: str | None = None,
                         override: bool = False) -> OGBSpec:
    """Register a dataset in the OGB raw format that ogb's master table lacks.

    It is found at ``<root>/ogb/<name with - as _>/`` like an official one and
    loaded by the official ``Pyg*PropPredDataset`` class through its
    ``meta_dict`` argument; it cannot be downloaded.

    Args:
        name: Registry name (``"ogbn-tiny"``).
        level: ``"graph"``, ``"link"`` or ``"node"``.
        meta: Master-table fields; ``"eval metric"``, ``"task type"`` and
            ``"split"`` are required, the others default to a homogeneous csv
            dataset with node features (``version`` 1, ``num tasks`` 1, ...).
            Booleans are written ``True``/``False`` as in master.csv.
        summary: The line ``graphdl list datasets`` shows.
        override: Replace an existing registration of ``name``.
    """
    if level not in LEVELS:
        raise ValidationError(f"level must be one of {', '.join(LEVELS)}, got {level!r}.")
    absent = [key for key in _META_REQUIRED if key not in meta]
    if absent:
        raise ValidationError(
            f"register_ogb_dataset({name!r}): meta lacks {', '.join(map(repr, absent))}; give the "
            f"master.csv fields {', '.join(map(repr, _META_REQUIRED))} at least."
        )
    full = {**_META_DEFAULTS, **{k: str(v) for k, v in meta.items()}}
    full.setdefault("download_name", "_".join(name.split("-")))
    spec = OGBSpec(name, level, full, official=False)
    DATASETS.register(name, spec, summary=summary or spec.summary(), override=override,
                      origin=__name__, level=level, metric=spec.metric(), source="ogb",
                      task_type=full["task type"], num_tasks=spec.num_tasks())
    return spec


def _register_official() -> None:
    for level in LEVELS:
        for name, meta in read_master(level).items():
            spec = OGBSpec(name, level, meta)
            DATASETS.register(name, spec, summary=spec.summary(), origin=__name__, level=level,
                              metric=spec.metric(), source="ogb", task_type=meta.get("task type", ""),
                              num_tasks=spec.num_tasks())


_register_official()
