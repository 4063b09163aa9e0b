"""The OGB molecule baselines (GCN and GIN, with and without a virtual node).

``ogb_mol`` builds :class:`graphdl.models.gnn.GraphGNN` in the configuration of
the official OGB example ``examples/graphproppred/mol`` (Hu et al., "Open
Graph Benchmark", NeurIPS 2020): OGB's :class:`~graphdl.layers.ogb.AtomEncoder`
on the atoms, 5 layers of OGB's GIN or GCN conv (each with its own bond
encoder), 300 hidden channels, BatchNorm after every conv, ReLU between layers
and none after the last, dropout 0.5 after every layer, jumping knowledge
"last", mean pooling and a linear head. With ``virtual_node=True`` a virtual
node per graph (zero-initialised, updated by a 2-layer MLP with BatchNorm
between layers) is added as in OGB's ``GNN_node_Virtualnode``.

>>> import graphdl
>>> model = graphdl.models.create("ogb_mol", num_tasks=1, layer="gin", virtual_node=True)

The model has exactly the parameters of the official example's ``GNN`` for
the same settings (``tests/test_ogb_models.py`` checks the count and the
outputs against a re-implementation of the official architecture).
"""

from __future__ import annotations

from typing import Any

from graphdl.errors import ConfigError
from graphdl.layers import ogb as ogb_layers  # noqa: F401  (registers ogb_gin / ogb_gcn)
from graphdl.models import MODELS
from graphdl.models.gnn import GraphGNN
from graphdl.validate import require_bool, require_int

__all__ = ["ogb_mol", "OGB_MOL_DEFAULTS", "OGB_MOL_MODELS", "parse_ogb_model", "ogb_mol_parameter_count"]

#: The official example's defaults (``main_pyg.py``: ``--num_layer 5 --emb_dim 300
#: --drop_ratio 0.5 --batch_size 32``, Adam lr 1e-3, 100 epochs).
OGB_MOL_DEFAULTS: dict[str, Any] = {
    "hidden_channels": 300, "num_layers": 5, "dropout": 0.5, "jk": "last", "pool": "mean",
    "batch_size": 32, "lr": 1e-3, "epochs": 100,
}
#: ``--gnn`` values of the official script -> (layer, virtual node).
OGB_MOL_MODELS: dict[str, tuple[str, bool]] = {
    "gcn": ("gcn", False), "gcn-virtual": ("gcn", True),
    "gin": ("gin", False), "gin-virtual": ("gin", True),
}
#: OGB's layer names -> the registered graphdl layers that reproduce them.
_OGB_LAYER = {"gin": "ogb_gin", "gcn": "ogb_gcn"}


def parse_ogb_model(name: str) -> tuple[str, bool]:
    """``"gin-virtual"`` -> ``("gin", True)``; the official script's ``--gnn`` values."""
    if not isinstance(name, str):  # failed on name.lower() with an AttributeError
        raise ConfigError(f"the OGB molecule model must be a name ({', '.join(OGB_MOL_MODELS)}), got "
                          f"{type(name).__name__} {name!r}")
    key = name.lower().replace("_", "-")
    if key not in OGB_MOL_MODELS:
        from graphdl.errors import did_you_mean

        raise ConfigError(f"unknown OGB molecule model {name!r}.{did_you_mean(key, OGB_MOL_MODELS)} "
                          f"Known: {', '.join(OGB_MOL_MODELS)}")
    return OGB_MOL_MODELS[key]


def ogb_mol(
    num_tasks: int,
    layer: str = "gin",
    virtual_node: bool = True,
    hidden_channels: int = 300,
    num_layers: int = 5,
    dropout: float = 0.5,
    jk: str = "last",
    pool: str = "mean",
    residual: bool = False,
    norm: str | None = "batch",
    activation: str = "relu",
    plain_last: bool = False,
    **gnn_kwargs: Any,
) -> GraphGNN:
    """An OGB molecule baseline as a :class:`GraphGNN`.

    Args:
        num_tasks: Outputs per graph (the dataset's ``num_tasks``).
        layer: ``"gin"`` or ``"gcn"`` (OGB's convs, ``ogb_gin``/``ogb_gcn``), or
            any registered layer name: one with ``edge_attr`` gets a
            :class:`~graphdl.layers.ogb.BondEncoder` per layer through
            ``GraphGNN``'s ``edge_encoder`` factory; one without ignores bonds.
        virtual_node: Add OGB's virtual node.
        hidden_channels, num_layers, dropout, pool, residual: As in OGB's
            ``GNN`` (``emb_dim``, ``num_layer``, ``drop_ratio``,
            ``graph_pooling``, ``residual``).
        jk: :class:`~graphdl.models.gnn.GNN`'s jumping knowledge. ``"last"`` is
            OGB's default ``JK``; GNN's ``"sum"`` adds the layer outputs through
            a linear layer, while OGB's ``JK="sum"`` also adds the atom
            encoder's output and has no linear layer.
        norm, activation, plain_last: OGB's are batch norm and ReLU after every
            layer, the last one normalised but not activated.
        **gnn_kwargs: Further :class:`graphdl.models.gnn.GNN` arguments.
    """
    from graphdl import layers

    require_int("ogb_mol", "num_tasks", num_tasks)
    require_int("ogb_mol", "num_layers", num_layers, minimum=2)  # as OGB's GNN, which refuses fewer
    # the AtomEncoder read it with int(): 300.0 passed, 'x' and None failed inside, -1 in torch.empty
    require_int("ogb_mol", "hidden_channels", hidden_channels)
    # by truthiness a config's "no" or 0.5 meant True
    virtual_node, residual, plain_last = (require_bool("ogb_mol", name, value) for name, value in (
        ("virtual_node", virtual_node), ("residual", residual), ("plain_last", plain_last)))
    if not isinstance(layer, str):
        raise ConfigError(f"ogb_mol's layer must be a registered layer name ('gin', 'gcn', ...), got "
                          f"{type(layer).__name__} {layer!r}")
    name = _OGB_LAYER.get(layer.lower(), layer)
    entry = layers.entry(name)
    if entry.meta.get("edge_attr") and entry.obj not in (ogb_layers.OGBGINConv, ogb_layers.OGBGCNConv):
        gnn_kwargs.setdefault("edge_encoder", lambda: ogb_layers.BondEncoder(hidden_channels))
        gnn_kwargs.setdefault("edge_dim", hidden_channels)
    return GraphGNN(
        out_channels=num_tasks,
        pool=pool,
        layer=name,
        hidden_channels=hidden_channels,
        num_layers=num_layers,
        dropout=dropout,
        norm=norm,
        activation=activation,
        jk=jk,
        residual=residual,
        plain_last=plain_last,
        virtual_node=virtual_node,
        node_encoder=ogb_layers.AtomEncoder(hidden_channels),
        **gnn_kwargs,
    )


MODELS.register("ogb_mol", ogb_mol, aliases=("ogbg_mol",),
                summary="OGB molecule baseline: GCN/GIN with atom and bond encoders, optional virtual node")


def ogb_mol_parameter_count(num_tasks: int, layer: str, virtual_node: bool, hidden: int = 300,
                            num_layers: int = 5) -> int:
    """The official example's parameter count, derived by hand.

    With :math:`d` = ``hidden``, :math:`L` = ``num_layers``, 174 atom and 13
    bond categories (``ogb.utils.features``):

    * AtomEncoder: :math:`174d`
    * per GIN conv: MLP :math:`d\\cdot 2d + 2d` + BatchNorm :math:`2\\cdot 2d` +
      :math:`2d\\cdot d + d` + eps 1 + BondEncoder :math:`13d`
    * per GCN conv: linear :math:`d^2 + d` + root embedding :math:`d` + BondEncoder :math:`13d`
    * per layer BatchNorm: :math:`2d`
    * virtual node: embedding :math:`d` and :math:`L-1` MLPs of
      :math:`(d\\cdot 2d + 2d) + 2\\cdot 2d + (2d\\cdot d + d) + 2d`
    * head: :math:`d\\cdot T + T`
    """
    d = hidden
    atoms, bonds = sum(ogb_layers.atom_feature_dims()), sum(ogb_layers.bond_feature_dims())
    if layer == "gin":
        conv = (d * 2 * d + 2 * d) + 2 * 2 * d + (2 * d * d + d) + 1 + bonds * d
    elif layer == "gcn":
        conv = (d * d + d) + d + bonds * d
    else:
        raise ConfigError(f"layer must be 'gin' or 'gcn', got {layer!r}")
    total = atoms * d + num_layers * (conv + 2 * d) + d * num_tasks + num_tasks
    if virtual_node:
        total += d + (num_layers - 1) * ((d * 2 * d + 2 * d) + 2 * 2 * d + (2 * d * d + d) + 2 * d)
    return total
