"""Fuzzing the command line and the config loader: every bad input is one clean error line, exit code 2.

Clean means: exit code 2, exactly one line on stderr, starting with
``graphdl: error:``, and no traceback. Inputs that happen to be valid must
not start training here: ``run_config``, ``launch`` and ``run_suite`` are
replaced by stubs that record the call.
"""

import os
import subprocess
import sys

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import graphdl.bench
import graphdl.distributed
from graphdl.cli import main
from graphdl.config import load_config
from graphdl.errors import ConfigError

SETTINGS = settings(max_examples=25, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


class Reached(Exception):
    """A stub was called: the input was valid."""


@pytest.fixture(autouse=True)
def no_training(monkeypatch):
    def stub(*args, **kwargs):
        raise Reached

    monkeypatch.setattr(graphdl.bench, "run_config", stub)
    monkeypatch.setattr(graphdl.bench, "run_suite", stub)
    monkeypatch.setattr(graphdl.distributed, "launch", stub)


def assert_clean_error(capsys, argv, match=None):
    try:
        code = main(argv)
    except Reached:
        pytest.fail(f"{argv} was accepted as valid input")
    out, err = capsys.readouterr()
    lines = err.splitlines()
    assert code == 2, (argv, code, err)
    assert len(lines) == 1 and lines[0].startswith("graphdl: error: "), (argv, err)
    assert "Traceback" not in err + out
    if match is not None:
        assert match in lines[0], (argv, lines[0])
    return lines[0]


@pytest.fixture
def files(tmp_path):
    """Malformed config files, name -> path."""
    contents = {
        "bad_yaml": "dataset: [cora\nlayer: gcn\n",
        "tabs": "dataset:\tcora\n\t- x",
        "list": "- dataset\n- cora\n",
        "scalar": "cora\n",
        "unknown_key": "dataset: cora\nlayr: gcn\n",
        "wrong_type": "dataset: cora\nepochs: ten\n",
        "bool_for_int": "seeds: true\n",
        "float_for_int": "epochs: 2.5\n",
        "negative_seeds": "seeds: -3\n",
        "zero_epochs": "epochs: 0\n",
        "nan_lr": "lr: .nan\n",
        "inf_lr": "lr: .inf\n",
        "negative_wd": "weight_decay: -0.1\n",
        "dropout_one": "dropout: 1.0\n",
        "neighbors_text": "num_neighbors: [10, five]\n",
        "neighbors_bool": "num_neighbors: [true]\n",
        "neighbors_empty": "num_neighbors: []\n",
        "mapping_value": "dataset: {name: cora}\n",
        "python_tag": "dataset: !!python/object/apply:os.system ['echo hi']\n",
        "unknown_dataset": "dataset: coraa\n",
        "unknown_layer": "layer: gcnn\n",
        "unknown_loss": "loss: cross_entropyy\n",
        "missing_root": "root: /no/such/graphdl/root\n",
        "empty_string": "dataset: ''\n",
        "jk": "jk: concat\n",
        "extra_key": "extra: {a: 1}\n",
        "nested": "[" * 3000 + "]" * 3000 + "\n",
        "timestamp": "dataset: 2001-12-14t21:59:43.10-05:00\n",
        "empty": "",  # these four trained Cora with every default
        "comments_only": "# dataset: ogbg-molbbbp\n# epochs: 100\n",
        "zero": "0\n",
        "empty_list": "[]\n",
    }
    out = {name: tmp_path / f"{name}.yaml" for name in contents}
    for name, text in contents.items():
        out[name].write_text(text, encoding="utf-8")
    out["binary"] = tmp_path / "binary.yaml"
    out["binary"].write_bytes(bytes(range(256)) * 4)
    out["nul"] = tmp_path / "nul.yaml"
    out["nul"].write_bytes(b"dataset: cora\x00\n")
    out["latin1"] = tmp_path / "latin1.yaml"
    out["latin1"].write_bytes("dataset: caf\xe9\n".encode("latin-1"))
    out["folder"] = tmp_path / "a_folder"
    out["folder"].mkdir()
    out["missing"] = tmp_path / "missing.yaml"
    return out


def test_every_malformed_config_file_is_one_clean_error(files, capsys):
    expected = {"unknown_key": "Did you mean 'layer'", "bool_for_int": "'seeds' must be int",
                "negative_seeds": "'seeds' must be >= 1, got -3", "nan_lr": "finite", "binary": "not UTF-8",
                "unknown_dataset": "Did you mean 'cora'", "unknown_layer": "Did you mean 'gcn'",
                "unknown_loss": "Did you mean 'cross_entropy'", "missing_root": "does not exist",
                "missing": "does not exist", "list": "must hold a mapping", "python_tag": "not valid YAML",
                "extra_key": "unknown key 'extra'", "empty": "holds no keys (it is empty or all comments)",
                "comments_only": "holds no keys", "zero": "must hold a mapping of keys to values, got int",
                "empty_list": "must hold a mapping of keys to values, got list"}
    for name, path in files.items():
        line = assert_clean_error(capsys, ["train", "--config", str(path)], expected.get(name))
        assert "\n" not in line


def test_config_loader_raises_config_error_only(files):
    for name, path in files.items():
        if name.startswith("unknown_") and name != "unknown_key" or name == "missing_root":
            continue  # names and paths are checked by the CLI, not the schema
        with pytest.raises(ConfigError):
            load_config(path)



def test_floats_in_exponent_notation_are_numbers(tmp_path):
    """YAML 1.1 (PyYAML's default) reads ``1e-3`` as a string; the config reads it as YAML 1.2 does."""
    path = tmp_path / "run.yaml"
    path.write_text("lr: 1e-3\nweight_decay: 5E-4\ndropout: .5\nlayer: gcn\n", encoding="utf-8")
    cfg = load_config(path)
    assert (cfg.lr, cfg.weight_decay, cfg.dropout, cfg.layer) == (1e-3, 5e-4, 0.5, "gcn")
    assert yaml.safe_load("lr: 1e-3") == {"lr": "1e-3"}  # what the plain safe loader would have given

@pytest.mark.parametrize("argv, match", [
    (["train", "--seeds", "x"], "argument --seeds: invalid int value: 'x'"),
    (["train", "--seeds", "-1"], "'seeds' must be >= 1, got -1"),
    (["train", "--seeds", "0"], "'seeds' must be >= 1"),
    (["train", "--epochs", "0"], "'epochs' must be >= 1"),
    (["train", "--lr", "-0.1"], "'lr' must be > 0"),
    (["train", "--lr", "inf"], "finite"),
    (["train", "--dropout", "1.5"], "'dropout' must lie in [0, 1)"),
    (["train", "--hidden-channels", "0"], "'hidden_channels' must be >= 1"),
    (["train", "--nproc", "0"], "'nproc' must be >= 1"),
    (["train", "--num-neighbors", "10", "-2"], "num_neighbors"),
    (["train", "--dataset", "coraa"], "unknown dataset 'coraa'. Did you mean 'cora'"),
    (["train", "--layer", "gcnn"], "unknown layer 'gcnn'. Did you mean 'gcn'"),
    (["train", "--loss", "cross_entropyy"], "unknown loss 'cross_entropyy'. Did you mean 'cross_entropy'"),
    (["train", "--loss-kwargs", "[1]"], "argument --loss-kwargs: '[1]' is not a JSON object"),
    (["train", "--loss-kwargs", "{margin: 1}"], "argument --loss-kwargs: '{margin: 1}' is not JSON"),
    (["train", "--loss", "cross_entropy", "--loss-kwargs", '{"label_smothing": 0.1}'],
     "--loss-kwargs {\"label_smothing\": 0.1}: loss 'cross_entropy' got an unexpected keyword argument "
     "'label_smothing'. Did you mean 'label_smoothing'?"),
    (["train", "--loss", "arcface"], "loss 'arcface' cannot be built from these arguments: ArcFaceLoss.__init__() "
                                     "missing 2 required positional arguments: 'num_classes' and 'embedding_size'. "
                                     "It accepts: num_classes, embedding_size, margin, scale, reduction. Pass its "
                                     "arguments with --loss-kwargs JSON"),
    (["train", "--root", "/no/such/graphdl/root"], "--root /no/such/graphdl/root does not exist"),
    (["train", "--root", __file__], "is not a folder"),
    (["train", "--resume"], "--resume needs --checkpoint-dir"),
    (["train", "--checkpoint-dir", __file__], "as the folder for --checkpoint-dir: "),
    (["train", "--checkpoint-dir", f"{__file__}/run1"], "is a file. Choose another path, or move the file away."),
    (["train", "--log", "metrics.txt"], "must end in .csv or .json"),
    (["train", "--json", os.path.dirname(__file__)], "is a folder"),
    (["train", "--device", "gpu0"], "is not a torch device"),
    (["train", "--jk", "concat"], "'jk' must be one of"),
    (["train", "--no-such-flag"], "unrecognized arguments: --no-such-flag"),
    (["train", "--epochs"], "argument --epochs: expected one argument"),
    (["trian"], "invalid choice: 'trian'"),
    ([], "the following arguments are required: command"),
    (["list", "layer"], "invalid choice: 'layer'"),
    (["bench"], "the following arguments are required: suite"),
    (["bench", "run"], "the following arguments are required: dataset, model (see graphdl bench run --help)"),
    (["bench", "run", "cora", "gcn", "--set", "hidden_channels"], "--set 'hidden_channels': expected KEY=JSON"),
    (["bench", "run", "cora", "gcn", "--set", "norm=batch"],
     "--set 'norm=batch': the value 'batch' is not JSON; numbers and true/false go as they are, a string needs "
     "quotes: norm='\"batch\"'"),
    (["bench", "run", "cora", "gcn", "--first-seed", "-2"], "--first-seed must be >= 0, got -2"),
    (["bench", "run", "cora", "gcn", "--seeds", "0"], "--seeds must be >= 1 (the number of seeds), got 0"),  # ran 1
    (["bench", "report", "/no/such/result.json"], "No such file or directory: /no/such/result.json"),
    (["bench", "report", __file__], "is not JSON"),
    (["train", "--config", "/no/such/config.yaml"], "does not exist"),
    # an output file under a file: refused before the run, not after it (the results would be lost)
    (["train", "--json", f"{__file__}/r.json"],
     f"cannot use {__file__!r} as the folder for --json {__file__}/r.json: {__file__!r} is a file."),
    (["bench", "run", "cora", "gcn", "--json", f"{__file__}/r.json"], f"folder for --json {__file__}/r.json"),
    (["bench", "run", "cora", "gcn", "--png", f"{__file__}/c.png"], f"folder for --png {__file__}/c.png"),
    (["bench", "run", "cora", "gcn", "--log", f"{__file__}/x/log.csv"], f"{__file__!r} is a file"),
    (["bench", "quick", "--plot", f"{__file__}/c.png"], f"folder for --plot {__file__}/c.png"),
    (["bench", "report", "/no/such/result.json", "--md", f"{__file__}/t.md"], f"folder for --md {__file__}/t.md"),
])
def test_malformed_arguments_are_one_clean_error(argv, match, capsys):
    assert_clean_error(capsys, argv, match)


FLAGS = ["--dataset", "--layer", "--loss", "--seeds", "--epochs", "--root", "--lr", "--dropout",
         "--hidden-channels", "--num-layers", "--batch-size", "--num-neighbors", "--nproc", "--jk", "--device",
         "--config", "--weight-decay", "--patience", "--monitor", "--heads", "--log"]
TOKENS = st.one_of(st.sampled_from(FLAGS), st.sampled_from(["-1", "0", "nan", "1e400", "", "cora", "gcn", "x"]),
                   st.text(alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"),
                           max_size=8))


@SETTINGS
@given(tokens=st.lists(TOKENS, min_size=1, max_size=6))
def test_random_train_arguments_never_crash(tokens, capsys):
    """Random flags and values: a clean error, or (rarely) valid input that reaches the stubbed runner."""
    argv = ["train", *tokens, "--epochs", "0"]  # always invalid, whatever the random part says
    try:
        code = main(argv)
    except Reached:
        pytest.fail(f"{argv} reached training")
    out, err = capsys.readouterr()
    assert code == 2 and err.count("\n") == 1 and err.startswith("graphdl: error: "), (argv, err)
    assert "Traceback" not in err


@SETTINGS
@given(data=st.binary(max_size=200))
def test_random_bytes_as_config_file(data, tmp_path_factory, capsys):
    path = tmp_path_factory.mktemp("fuzz") / "run.yaml"
    path.write_bytes(data)
    assert_clean_error(capsys, ["train", "--config", str(path), "--epochs", "0"])


KEYS = st.one_of(st.sampled_from(["dataset", "layer", "seeds", "epochs", "lr", "num_neighbors", "dropout",
                                  "resume", "nproc", "root", "jk"]), st.text(min_size=1, max_size=10))
VALUES = st.recursive(st.one_of(st.none(), st.booleans(), st.integers(-10**6, 10**6), st.floats(),
                                st.text(max_size=10)),
                      lambda inner: st.one_of(st.lists(inner, max_size=3),
                                              st.dictionaries(st.text(max_size=5), inner, max_size=3)),
                      max_leaves=6)


@SETTINGS
@given(values=st.dictionaries(KEYS, VALUES, min_size=1, max_size=5))
def test_random_yaml_mappings(values, tmp_path_factory, capsys):
    path = tmp_path_factory.mktemp("fuzz") / "run.yaml"
    path.write_text(yaml.safe_dump(values), encoding="utf-8")
    assert_clean_error(capsys, ["train", "--config", str(path), "--epochs", "0"])


@pytest.mark.parametrize("argv", [["train", "--config", "BINARY"], ["train", "--seeds", "-3", "--layer", "gcn"]])
def test_python_m_graphdl_reports_one_line(argv, tmp_path):
    binary = tmp_path / "garbage.yaml"
    binary.write_bytes(os.urandom(64) + b"\xff\xfe")
    argv = [str(binary) if a == "BINARY" else a for a in argv]
    proc = subprocess.run([sys.executable, "-m", "graphdl", *argv], capture_output=True, text=True, timeout=120,
                          env=dict(os.environ, OMP_NUM_THREADS="1"))
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.count("\n") == 1 and proc.stderr.startswith("graphdl: error: "), proc.stderr
    assert "Traceback" not in proc.stderr and proc.stdout == ""
