"""OGB molecule models: parameter counts and outputs against the official architecture."""

from __future__ import annotations

import pytest
import torch
from torch_geometric.data import Batch, Data

import graphdl
from graphdl.bench.ogb_reference import ReferenceOGBMol, count_parameters, load_reference_into
from graphdl.errors import ConfigError, ValidationError
from graphdl.layers.ogb import AtomEncoder, BondEncoder, OGBGCNConv, OGBGINConv, bond_feature_dims
from graphdl.models.ogb_mol import ogb_mol, ogb_mol_parameter_count

VARIANTS = [("gin", False), ("gin", True), ("gcn", False), ("gcn", True)]


def _molecules(num_graphs: int = 6, seed: int = 0) -> Batch:
    """Random molecules with valid OGB atom/bond category ids (as in ogbg-mol*)."""
    from ogb.utils.features import get_atom_feature_dims, get_bond_feature_dims

    gen = torch.Generator().manual_seed(seed)
    graphs = []
    for _ in range(num_graphs):
        n = int(torch.randint(3, 12, (1,), generator=gen))
        x = torch.stack([torch.randint(0, d, (n,), generator=gen) for d in get_atom_feature_dims()], dim=1)
        src = torch.arange(n - 1)
        ei = torch.cat([torch.stack([src, src + 1]), torch.stack([src + 1, src])], dim=1)
        half = torch.stack([torch.randint(0, d, (n - 1,), generator=gen) for d in get_bond_feature_dims()], dim=1)
        graphs.append(Data(x=x, edge_index=ei, edge_attr=torch.cat([half, half]), y=torch.rand(1, 2, generator=gen)))
    return Batch.from_data_list(graphs)


@pytest.mark.parametrize(("layer", "virtual"), VARIANTS)
def test_parameter_count_matches_official_architecture(layer: str, virtual: bool) -> None:
    ours = ogb_mol(num_tasks=1, layer=layer, virtual_node=virtual)
    official = ReferenceOGBMol(num_tasks=1, gnn_type=layer, virtual_node=virtual)
    assert count_parameters(ours) == count_parameters(official) == ogb_mol_parameter_count(1, layer, virtual)


def test_parameter_count_by_hand() -> None:
    # d = 300, 5 layers, 1 task; 174 atom and 13 bond categories (ogb.utils.features).
    # GIN conv: 300*600+600 + 2*600 + 600*300+300 + 1 (eps) + 13*300 = 366001; + BatchNorm 600 per layer.
    # Virtual node: 300 + 4 * (300*600+600 + 1200 + 600*300+300 + 600) = 300 + 4 * 362700.
    gin = 174 * 300 + 5 * (366001 + 600) + 300 + 1
    assert count_parameters(ogb_mol(1, "gin", False)) == gin == 1885506
    assert count_parameters(ogb_mol(1, "gin", True)) == gin + 300 + 4 * 362700 == 3336606
    # GCN conv: 300*300+300 + 300 (root embedding) + 13*300 = 94500.
    assert count_parameters(ogb_mol(1, "gcn", False)) == 174 * 300 + 5 * (94500 + 600) + 301 == 528001


@pytest.mark.parametrize(("layer", "virtual"), VARIANTS)
def test_same_function_as_official_architecture(layer: str, virtual: bool) -> None:
    torch.manual_seed(0)
    batch = _molecules()
    official = ReferenceOGBMol(num_tasks=2, gnn_type=layer, virtual_node=virtual, emb_dim=32, num_layer=3)
    ours = ogb_mol(num_tasks=2, layer=layer, virtual_node=virtual, hidden_channels=32, num_layers=3)
    load_reference_into(ours, official)
    official.eval(), ours.eval()
    expected = official(batch)
    got = ours(batch.x, batch.edge_index, batch.edge_attr, batch=batch.batch)
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)
    official.train(), ours.train()  # same dropout masks from the same RNG state
    torch.manual_seed(1)
    expected = official(batch)
    torch.manual_seed(1)
    got = ours(batch.x, batch.edge_index, batch.edge_attr, batch=batch.batch)
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)
    # The same gradients too: one training step is the official one, up to float rounding.
    expected.square().sum().backward()
    got.square().sum().backward()
    torch.testing.assert_close(ours.head.weight.grad, official.graph_pred_linear.weight.grad, rtol=1e-4, atol=1e-6)
    official_atoms = torch.cat([e.weight.grad for e in official.gnn_node.atom_encoder.atom_embedding_list])
    torch.testing.assert_close(ours.encoder.node_encoder.weight.grad, official_atoms, rtol=1e-4, atol=1e-6)
    for mine, theirs in zip(ours.encoder.convs, official.gnn_node.convs):
        bonds = torch.cat([e.weight.grad for e in theirs.bond_encoder.bond_embedding_list])
        torch.testing.assert_close(mine.edge_encoder.weight.grad, bonds, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize(("layer", "virtual"), [("gin", True), ("gcn", False)])
def test_trainer_follows_the_official_training_loop(layer: str, virtual: bool) -> None:
    """Whole epochs, not one step: graphdl's Trainer (shuffling, dropout, NaN masking, Adam, per-epoch
    evaluation) draws the same random numbers as the official script's loop, so from the same weights and
    RNG state both end in the same weights, to float rounding."""
    from torch_geometric.loader import DataLoader

    from graphdl.bench.ogb_reference import reference_eval, reference_train_epoch
    from graphdl.train import GraphTask, ModelCheckpoint, Trainer

    graphs = _molecules(100, seed=3).to_data_list()
    for g in graphs:
        g.y = (g.y > 0.5).float()
    splits = {"train": torch.arange(70), "val": torch.arange(70, 85), "test": torch.arange(85, 100)}
    torch.manual_seed(0)
    official = ReferenceOGBMol(num_tasks=2, gnn_type=layer, virtual_node=virtual, emb_dim=16, num_layer=3)
    ours = ogb_mol(num_tasks=2, layer=layer, virtual_node=virtual, hidden_channels=16, num_layers=3)
    load_reference_into(ours, official)
    epochs = 4
    trainer = Trainer(ours, loss=torch.nn.BCEWithLogitsLoss(), task=GraphTask(metric="rocauc", batch_size=16),
                      lr=1e-3, epochs=epochs, eval_splits=["val", "test"], progress=False, device="cpu",
                      callbacks=[ModelCheckpoint(restore_best=False)])
    torch.manual_seed(5)
    trainer.fit(graphs, splits)

    class _Evaluator:  # the official eval() loop's shape, with graphdl's metric
        @staticmethod
        def eval(d: dict) -> dict:
            return {"rocauc": trainer.task.metric(torch.from_numpy(d["y_true"]), torch.from_numpy(d["y_pred"]))}

    torch.manual_seed(5)
    optimizer = torch.optim.Adam(official.parameters(), lr=1e-3)
    loaders = {k: DataLoader([graphs[i] for i in v], batch_size=16, shuffle=k == "train") for k, v in splits.items()}
    for _ in range(epochs):
        reference_train_epoch(official, loaders["train"], optimizer, "binary classification")
        for split in ("val", "test"):  # the script evaluates every epoch; its loaders draw from the RNG too
            reference_eval(official, loaders[split], _Evaluator)
    torch.testing.assert_close(ours.head.weight, official.graph_pred_linear.weight, rtol=1e-4, atol=1e-5)
    atoms = torch.cat([e.weight for e in official.gnn_node.atom_encoder.atom_embedding_list])
    torch.testing.assert_close(ours.encoder.node_encoder.weight, atoms, rtol=1e-4, atol=1e-5)
    for mine, theirs in zip(ours.encoder.norms, official.gnn_node.batch_norms):
        mine = mine.module if hasattr(mine, "module") else mine
        # Not running_mean: a bias right before a BatchNorm gets a zero gradient up to rounding, which
        # Adam scales to full-size steps, so it (and the running mean that tracks it) drifts by rounding
        # noise in both implementations alike, without changing what the network computes in training.
        for name in ("weight", "bias", "running_var"):
            torch.testing.assert_close(getattr(mine, name), getattr(theirs, name), rtol=1e-4, atol=1e-5)


def test_encoders_match_ogb_and_keep_xavier_init() -> None:
    from ogb.graphproppred.mol_encoder import AtomEncoder as OGBAtom, BondEncoder as OGBBond

    batch = _molecules()
    for ours, theirs, feats, tables in ((AtomEncoder(16), OGBAtom(16), batch.x, "atom_embedding_list"),
                                        (BondEncoder(16), OGBBond(16), batch.edge_attr, "bond_embedding_list")):
        with torch.no_grad():
            ours.weight.copy_(torch.cat([e.weight for e in getattr(theirs, tables)]))
        torch.testing.assert_close(ours(feats), theirs(feats))
        # reset_parameters (called by GNN on every sub-module) keeps OGB's per-table Xavier bound
        ours.reset_parameters()
        for k, dim in enumerate(ours.feature_dims):
            assert ours.table(k).abs().max() <= (6.0 / (dim + 16)) ** 0.5 + 1e-6
    model = ogb_mol(1, "gin", True, hidden_channels=16, num_layers=2)
    assert model.encoder.node_encoder.weight.abs().max() <= (6.0 / (2 + 16)) ** 0.5 + 1e-6


def test_registered_and_smoke_forward_backward() -> None:
    assert "ogb_gin" in graphdl.layers and "ogb_gcn" in graphdl.layers
    assert graphdl.layers.entry("ogb_gin").meta["edge_attr"] == "required"
    assert "ogb_mol" in graphdl.models
    batch = _molecules(8)
    for layer, virtual in VARIANTS:
        model = graphdl.models.create("ogb_mol", num_tasks=2, layer=layer, virtual_node=virtual,
                                      hidden_channels=16, num_layers=2)
        out = model(batch.x, batch.edge_index, batch.edge_attr, batch=batch.batch)
        assert out.shape == (8, 2)
        torch.nn.functional.binary_cross_entropy_with_logits(out, batch.y).backward()
        missing = [n for n, p in model.named_parameters() if p.grad is None]
        assert not missing, missing


def test_other_edge_layers_get_a_bond_encoder_per_layer() -> None:
    batch = _molecules()
    model = ogb_mol(1, layer="gine", virtual_node=False, hidden_channels=16, num_layers=2)
    assert len(model.encoder.edge_encoders) == 2
    assert model(batch.x, batch.edge_index, batch.edge_attr, batch=batch.batch).shape == (6, 1)


def test_conformance_with_float_edge_features() -> None:
    from graphdl.testing import check_layer

    check_layer("ogb_gin")
    check_layer("ogb_gcn")
    assert isinstance(graphdl.layers.create("ogb_gin", 8, 8), OGBGINConv)
    assert isinstance(graphdl.layers.create("ogb_gcn", 8, 8), OGBGCNConv)


def test_bad_inputs_give_clear_errors() -> None:
    with pytest.raises(ValidationError, match="integer category ids"):
        AtomEncoder(8)(torch.rand(3, 9))
    with pytest.raises(ValidationError, match=r"shape \(N, <= 3\)"):
        BondEncoder(8)(torch.zeros(3, 5, dtype=torch.long))
    with pytest.raises(ConfigError, match="ogb_mol.s num_layers must be an int >= 2"):
        ogb_mol(1, num_layers=1)
    with pytest.raises(ConfigError, match=r"^ogb_mol's num_tasks must be an int >= 1, got 0$"):  # a 0-wide head
        ogb_mol(0)
    with pytest.raises(ConfigError, match=r"^graph_gnn's out_channels \(outputs per graph\) must be an int >= 1"):
        graphdl.models.create("graph_gnn", in_channels=4, out_channels=0)
    with pytest.raises(ValidationError, match=r"AtomEncoder: .*; for float node features build the model without "
                                              r"it"):  # it advised an edge_dim, which atoms do not have
        AtomEncoder(8)(torch.rand(3, 9))
    with pytest.raises(ConfigError, match="Did you mean 'gin-virtual'"):
        from graphdl.models.ogb_mol import parse_ogb_model

        parse_ogb_model("gin-virtal")


def test_out_of_range_ids_and_mistyped_edge_features_are_named() -> None:
    # torch fails with an index assertion for an id past the last table, and an id that is too
    # large for its own column but not for the stacked table silently reads the next column's row
    ids = torch.zeros(3, 3, dtype=torch.long)
    ids[1, 0] = bond_feature_dims()[0]
    with pytest.raises(ValidationError) as info:
        BondEncoder(8)(ids)
    first = bond_feature_dims()[0]
    assert str(info.value) == (f"BondEncoder: column 0 holds category ids in [0, {first}] but that feature has "
                               f"{first} categories (valid: 0..{first - 1}); give OGB's raw molecule features "
                               f"(ogb.utils.smiles2graph)")
    with pytest.raises(ValidationError, match=r"AtomEncoder: column 2 holds category ids in \[-1, 0\]"):
        AtomEncoder(8)(torch.tensor([[0, 0, -1], [0, 0, 0]]))
    x, edge_index = torch.randn(3, 8), torch.tensor([[0, 1], [1, 2]])
    for name in ("ogb_gin", "ogb_gcn"):
        conv = graphdl.layers.create(name, 8, 8, edge_dim=4)
        for bad in (torch.zeros(2, 4, dtype=torch.long), torch.zeros(2, 3)):
            with pytest.raises(ValidationError, match=r"^EdgeLinear: edge_attr must be float features of shape "
                                                      r"\(num_edges, edge_dim=4\), got .*build the layer with "
                                                      r"edge_dim=None$"):
                conv(x, edge_index, bad)
        assert conv(x, edge_index, torch.randn(2, 4)).shape == (3, 8)


def test_norm_activation_and_plain_last_can_differ_from_ogbs(shared_data) -> None:
    """They were fixed inside ogb_mol, so `graphdl train --dataset ogbg-molbace --norm layer` failed with
    'got multiple values for keyword argument norm'."""
    import graphdl.bench as bench

    from torch_geometric.nn import BatchNorm, LayerNorm

    default, layered = ogb_mol(1), ogb_mol(1, norm="layer", activation="elu", plain_last=True)
    assert all(isinstance(n, BatchNorm) for n in default.encoder.norms)  # OGB's: after every layer
    assert isinstance(default.encoder.act, torch.nn.ReLU)
    assert isinstance(layered.encoder.norms[0], LayerNorm) and isinstance(layered.encoder.norms[-1], torch.nn.Identity)
    assert isinstance(layered.encoder.act, torch.nn.ELU)
    record = bench.run_config("ogbg-molbace", {"layer": "gin", "norm": "layer", "hidden_channels": 8,
                                               "num_layers": 2}, epochs=1, root=shared_data, verbose=False)
    assert record["config"]["norm"] == "layer" and 0 <= record["mean"] <= 1
    with pytest.raises(ConfigError, match=r"^unknown configuration key 'out_channels'"):  # the tasks' count
        bench.run_config("ogbg-molbace", {"layer": "gin", "out_channels": 3}, epochs=1, root=shared_data)
