"""Tests preset loading: the bundled presets, every error of the format, --set parsing, user objectives."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tuitune.core.errors import PresetError
from tuitune.core.search.space import Choice, Fixed, Float, Int
from tuitune.training.objective import load_objective
from tuitune.training.presets import (
    PRESET_DIR,
    TRAINER_PARAMS,
    Preset,
    bundled_names,
    list_presets,
    load_preset,
    parse_value,
)

BUNDLED = [
    "cifar10-cnn",
    "cifar10-resnet18",
    "digits-mlp",
    "fashion-mnist-cnn",
    "fashion-mnist-mlp",
    "imagefolder-resnet18",
    "mnist-mlp",
]


def test_bundled_presets_all_load_and_validate():
    presets = list_presets()
    assert [p.name for p in presets] == BUNDLED == bundled_names()
    for p in presets:
        assert Path(p.path).stem == p.name and p.bundled
        assert p.metric == "val_acc" and p.direction == "maximize"
        assert p.space.searched, p.name
        assert set(p.defaults) == set(p.space)  # a full config
        active = p.space.prune(p.defaults)  # the defaults hold every parameter; a run gets the active ones
        assert p.space.check(active) == active  # every default lies in its space
        for k, param in p.space.items():
            assert k in TRAINER_PARAMS
            if not param.searched:
                assert isinstance(param, Fixed) and param.value == p.defaults[k]


def test_bundled_spaces_follow_practice():
    digits = load_preset("digits-mlp")
    assert digits.space["lr"].scale == "log"
    assert digits.space["momentum"].scale == "log1m" and digits.space["beta1"].scale == "log1m"
    assert digits.space["optimizer"].values == ["sgd", "adam", "adamw", "rmsprop"]
    assert digits.defaults["optimizer"] == "adam" and digits.defaults["lr"] == 1e-3
    assert digits.defaults["beta1"] == 0.9 and digits.defaults["beta2"] == 0.999
    kt = load_preset("fashion-mnist-mlp")  # the KerasTuner tutorial's space
    assert kt.space.searched == ["units", "lr"]
    assert (kt.space["units"].low, kt.space["units"].high, kt.space["units"].step) == (32, 512, 32)
    assert kt.space["lr"].values == [1e-2, 1e-3, 1e-4]
    assert kt.defaults["hidden_layers"] == 1 and kt.defaults["optimizer"] == "adam"
    cnn = load_preset("cifar10-cnn")
    assert {"filters", "kernel_size", "image_size", "conv_blocks", "train_fraction"} <= set(cnn.space.searched)
    assert cnn.defaults["optimizer"] == "sgd" and cnn.defaults["momentum"] == 0.9
    assert cnn.defaults["weight_decay"] == 5e-4 and cnn.data["augment"] is True
    rn = load_preset("cifar10-resnet18")
    assert rn.model == {"kind": "resnet18", "stem": "small"} and rn.defaults["image_size"] == 32
    img = load_preset("imagefolder-resnet18")
    assert img.data["dataset"] == "imagefolder" and Path(img.data["root"]).is_absolute()


def test_round_trip_through_json():
    for p in list_presets():
        d = json.loads(json.dumps(p.to_dict()))
        q = Preset.from_dict(d)
        assert q.to_dict() == p.to_dict()
        assert q.space.searched == p.space.searched


def test_from_dict_damaged():
    with pytest.raises(PresetError, match="damaged"):
        Preset.from_dict({"name": "x"})


def test_unknown_name_lists_bundled():
    with pytest.raises(PresetError, match="unknown preset 'nope'.*digits-mlp"):
        load_preset("nope")
    with pytest.raises(PresetError, match="no such preset file"):
        load_preset("missing/dir/x.toml")


def test_importing_presets_does_not_import_torch():
    code = "import sys, tuitune.training.presets as p; p.list_presets(); print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


# ---------------------------------------------------------------------------- the format's errors

BASE = """
name = "t"
metric = "val_acc"
direction = "maximize"
max_epochs = 3
[data]
dataset = "digits"
[model]
kind = "mlp"
[defaults]
units = 64
lr = 1e-3
[space]
units = { type = "int", low = 32, high = 512, step = 32 }
lr = { type = "float", low = 1e-4, high = 1e-1, scale = "log" }
"""


def _write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "my-preset.toml"
    p.write_text(textwrap.dedent(text))
    return p


def _replace(old: str, new: str) -> str:
    assert old in BASE, old
    return BASE.replace(old, new)


ERRORS = [
    # (toml, the key the message names, a fragment of what it says)
    ('colour = "red"\n' + BASE, "colour", "unknown key"),
    (BASE.replace("max_epochs = 3", 'max_epochs = "3"'), "max_epochs", "expected a whole number"),
    (BASE.replace("max_epochs = 3", "max_epochs = 0"), "max_epochs", ">= 1"),
    (BASE.replace('name = "t"\n', ""), "name", "missing"),
    (BASE.replace('direction = "maximize"', 'direction = "up"'), "direction", "minimize or maximize"),
    (BASE.replace('metric = "val_acc"', 'metric = "f1"'), "metric", "not reported"),
    (BASE.replace('metric = "val_acc"', "metric = 3"), "metric", "expected a string"),
    (_replace("units = 64", "units = 1000"), "defaults.units", "outside the space"),
    (_replace("units = 64", "units = 40"), "defaults.units", "step"),
    (_replace("units = 64", 'units = "many"'), "defaults.units", "expected a whole number"),
    (_replace("units = 64", "units = 64\nfoo = 1"), "defaults.foo", "no parameter 'foo'"),
    (_replace("units = 64", "units = 64\ndropout = 1.5"), "defaults.dropout", "must be a number in [0, 1)"),
    (_replace("units = 64", 'units = 64\noptimizer = "lion"'), "defaults.optimizer", "one of sgd, adam"),
    (BASE + 'wings = { type = "int", low = 1, high = 4 }\n', "space.wings", "no parameter 'wings'"),
    (BASE + 'filters = { type = "int", low = 8, high = 64 }\n', "space.filters", "for model 'mlp'"),
    (BASE.replace("low = 1e-4, high = 1e-1", "low = 1e-1, high = 1e-4"), "space.lr", "must be below high"),
    (BASE.replace('type = "float", low = 1e-4', 'type = "real", low = 1e-4'), "space.lr", "type 'real' is unknown"),
    (BASE.replace('scale = "log" }', 'scale = "log", sigma = 2 }'), "space.lr", "key 'sigma' is unknown"),
    (BASE + 'dropout = { type = "float", low = 0.0, high = 1.5 }\n', "space.dropout", "leaves what dropout accepts"),
    (BASE + 'optimizer = { type = "choice", values = ["sgd", "lion"] }\n', "space.optimizer", "choice 'lion'"),
    (BASE + 'batch_size = { type = "choice", values = [32, 64.5] }\n', "space.batch_size", "choice 64.5"),
    (BASE + 'hidden_layers = { type = "float", low = 1, high = 3 }\n', "space.hidden_layers", 'use type = "int"'),
    (BASE + "patience = 3\n", "space.patience", "expected a table"),
    (BASE + 'lr2 = { type = "choice", values = [0.1, 0.01] }\n', "space.lr2", "no parameter"),
    (
        BASE.replace("lr = 1e-3\n", "").replace(
            '{ type = "float", low = 1e-4, high = 1e-1, scale = "log" }', '{ type = "choice", values = [0.1, 0.01] }'
        ),
        "space.lr",
        "trainer's default",
    ),
    (BASE.replace('dataset = "digits"', 'dataset = "imagenet"'), "data.dataset", "does not exist"),
    (BASE.replace('dataset = "digits"', "dataset = 7"), "data.dataset", "expected"),
    (BASE.replace('dataset = "digits"', 'colour = "red"'), "data.dataset", "missing"),
    (BASE.replace('dataset = "digits"', 'dataset = "digits"\ncolour = "red"'), "data.colour", "unknown key"),
    (BASE.replace('dataset = "digits"', 'dataset = "digits"\nval_fraction = 1.5'), "data.val_fraction", "0 < x < 1"),
    (
        BASE.replace('dataset = "digits"', 'dataset = "digits"\nroot = "x"'),
        "data.root",
        "applies only to dataset imagefolder",
    ),
    (BASE.replace('kind = "mlp"', 'kind = "transformer"'), "model.kind", "does not exist"),
    (BASE.replace('kind = "mlp"', 'kind = "mlp"\nstem = "small"'), "model.stem", "unknown key for model 'mlp'"),
    (BASE.replace('kind = "mlp"', 'kind = "resnet18"\nstem = "huge"'), "model.stem", "is not auto"),
    (BASE.replace('[model]\nkind = "mlp"\n', ""), "model", "missing"),
    (BASE.replace("[data]\n", "[data]\nfoo = 1\n").replace("objective", "x"), "data.foo", "unknown key"),
    ('objective = "mymod:fn"\n' + BASE, "data", "drop [data]"),
    (BASE + '[strategy.asha]\nsampler = "tpe"\n', "strategy.asha.sampler", "'tpe' is not one of bayes, random"),
    (BASE + "[strategy.asha]\nsampler = 1\n", "strategy.asha.sampler", "expected a string"),
    (BASE + "[strategy.asha]\nbracket = 1\n", "strategy.asha.bracket", "asha has no option 'bracket'"),
    (BASE + "[strategy.asha]\nmin_epochs = 0\n", "strategy.asha.min_epochs", "must be >= 1"),
    (BASE + '[strategy.asha]\nfactor = "3"\n', "strategy.asha.factor", "expected a whole number"),
    (BASE + "[strategy.tpe]\nfactor = 3\n", "strategy.tpe", "'tpe' is not a strategy"),
    (BASE + "[strategy]\nasha = 3\n", "strategy.asha", "a table [strategy.asha]"),
    ('fuse = "lots"\n' + BASE, "fuse", "'lots' is not an array size; use a whole number 1..64, auto or off"),
    ("fuse = 0\n" + BASE, "fuse", "0 is out of range"),
]


@pytest.mark.parametrize(("text", "key", "what"), ERRORS, ids=[f"{i}-{e[1]}" for i, e in enumerate(ERRORS)])
def test_errors_name_file_and_key(tmp_path, text, key, what):
    path = _write(tmp_path, text)
    with pytest.raises(PresetError) as e:
        load_preset(str(path))
    msg = str(e.value)
    assert str(path) in msg, msg
    assert f"key '{key}'" in msg, msg
    assert what in msg, msg


def test_strategy_options_load_and_survive_the_stored_form(tmp_path):
    p = load_preset(str(_write(tmp_path, BASE + '[strategy.asha]\nsampler = "bayes"\nfactor = 4\n'
                                            '[strategy.hyperband]\nsampler = "random"\n')))
    assert p.strategy == {"asha": {"sampler": "bayes", "factor": 4}, "hyperband": {"sampler": "random"}}
    assert Preset.from_dict(p.to_dict()).strategy == p.strategy
    assert load_preset(str(_write(tmp_path, BASE))).strategy == {}


def test_fuse_loads_and_survives_the_stored_form(tmp_path):
    for text, want in (('fuse = "auto"\n', "auto"), ("fuse = 8\n", 8), ('fuse = "off"\n', 1), ("", None)):
        p = load_preset(str(_write(tmp_path, text + BASE)))
        assert p.fuse == want
        assert Preset.from_dict(p.to_dict()).fuse == want


def test_not_toml(tmp_path):
    path = _write(tmp_path, "name = \n")
    with pytest.raises(PresetError, match="not valid TOML") as e:
        load_preset(str(path))
    assert str(path) in str(e.value)


OBJ = """
name = "mine"
metric = "loss"
direction = "minimize"
max_epochs = 2
objective = "{objective}"
[defaults]
x = 0.5
mode = "a"
[space]
x = {{ type = "float", low = 0, high = 1 }}
"""


def test_objective_preset_loads_any_parameters(tmp_path):
    p = load_preset(str(_write(tmp_path, OBJ.format(objective="pkg.mod:fn"))))
    assert p.objective == "pkg.mod:fn" and p.data == {} and p.model == {}
    assert isinstance(p.space["x"], Float) and isinstance(p.space["mode"], Fixed)
    assert p.defaults == {"x": 0.5, "mode": "a"}


@pytest.mark.parametrize(
    ("text", "key", "what"),
    [
        (OBJ.format(objective="pkg.mod"), "objective", "package.module:function"),
        (OBJ.format(objective="pkg mod:fn"), "objective", "package.module:function"),
        (OBJ.format(objective="m:f").replace("x = 0.5\n", ""), "defaults.x", "needs a default"),
        (OBJ.format(objective="m:f").replace("x = 0.5", "x = 2.0"), "defaults.x", "outside the space"),
        (OBJ.format(objective="m:f").replace('mode = "a"', "mode = [1, 2]"), "defaults.mode", "expected a string"),
    ],
)
def test_objective_preset_errors(tmp_path, text, key, what):
    path = _write(tmp_path, text)
    with pytest.raises(PresetError) as e:
        load_preset(str(path))
    assert str(path) in str(e.value) and f"key '{key}'" in str(e.value) and what in str(e.value)


# ---------------------------------------------------------------------------- load_objective


@pytest.fixture
def user_code(tmp_path, monkeypatch):
    """A project directory with a module of objectives beside the preset; sys.path and modules restored."""
    monkeypatch.setattr(sys, "path", list(sys.path))
    mods = set(sys.modules)
    (tmp_path / "userobj_mod.py").write_text(
        textwrap.dedent("""
        def good(config, trial):
            return config["x"] * 2
        def one_arg(config):
            return 0.0
        not_a_function = 3
    """)
    )
    (tmp_path / "userobj_broken.py").write_text("import does_not_exist_anywhere\n")
    monkeypatch.chdir(tmp_path.parent)  # the preset's own directory must be enough
    yield tmp_path
    for m in set(sys.modules) - mods:
        del sys.modules[m]


def test_load_objective_imports_user_code(user_code):
    p = load_preset(str(_write(user_code, OBJ.format(objective="userobj_mod:good"))))
    fn = load_objective(p)
    assert fn({"x": 0.25}, None) == 0.5


@pytest.mark.parametrize(
    ("target", "what"),
    [
        ("userobj_broken:fn", "cannot import module 'userobj_broken' (ModuleNotFoundError"),
        ("userobj_nothere:fn", "cannot import module 'userobj_nothere'"),
        ("userobj_mod:missing", "has no function 'missing'"),
        ("userobj_mod:not_a_function", "is not a function"),
        ("userobj_mod:one_arg", "must accept (config, trial)"),
    ],
)
def test_load_objective_errors(user_code, target, what):
    path = _write(user_code, OBJ.format(objective=target))
    p = load_preset(str(path))
    with pytest.raises(PresetError) as e:
        load_objective(p)
    assert str(path) in str(e.value) and "key 'objective'" in str(e.value) and what in str(e.value)


def test_load_objective_builtin_is_the_trainer():
    fn = load_objective(load_preset("digits-mlp"), device="cpu")
    assert callable(fn) and fn.preset.name == "digits-mlp"


# ---------------------------------------------------------------------------- --set


def test_parse_value_types():
    p = load_preset("digits-mlp")
    assert parse_value(p, "units", "96") == 96 and isinstance(parse_value(p, "units", "96"), int)
    assert parse_value(p, "hidden_layers", "2.0") == 2
    assert parse_value(p, "lr", "3e-3") == 0.003
    assert parse_value(p, "optimizer", "sgd") == "sgd"
    assert parse_value(p, "batch_size", "64") == 64
    assert parse_value(p, "nesterov", "true") is True and parse_value(p, "nesterov", "off") is False
    assert parse_value(p, "beta2", "0.99") == 0.99  # a fixed parameter
    assert parse_value(p, "train_fraction", "1") == 1.0
    kt = load_preset("fashion-mnist-mlp")
    assert parse_value(kt, "lr", "1e-2") == 0.01 and parse_value(kt, "lr", "0.001") == 0.001


@pytest.mark.parametrize(
    ("key", "text", "what"),
    [
        ("wings", "3", "has no parameter 'wings'"),
        ("units", "many", "takes a whole number"),
        ("units", "1.5", "takes a whole number"),
        ("lr", "fast", "takes a number"),
        ("lr", "nan", "takes a number"),
        ("nesterov", "maybe", "true or false"),
        ("optimizer", "lion", "must be one of sgd, adam"),
        ("dropout", "1.5", "must be a number in [0, 1)"),
    ],
)
def test_parse_value_errors(key, text, what):
    with pytest.raises(PresetError) as e:
        parse_value(load_preset("digits-mlp"), key, text)
    assert what in str(e.value)


def test_parse_value_user_objective(tmp_path):
    text = OBJ.format(objective="m:f") + 'kind = { type = "choice", values = ["a", "b"] }\n'
    text = text.replace('mode = "a"', 'mode = "a"\nkind = "a"\nn = 3\nflag = false')
    p = load_preset(str(_write(tmp_path, text)))
    assert isinstance(p.space["kind"], Choice) and isinstance(p.space["n"], Fixed)
    assert parse_value(p, "kind", "b") == "b"
    assert parse_value(p, "n", "4") == 4 and parse_value(p, "flag", "yes") is True
    assert parse_value(p, "mode", "anything") == "anything"
    assert parse_value(p, "x", "0.75") == 0.75
    with pytest.raises(PresetError, match="one of"):
        parse_value(p, "kind", "c")


def test_bundled_presets_are_the_top_level_folder():
    root = Path(__file__).resolve().parent.parent.parent
    assert PRESET_DIR == root / "presets" and (PRESET_DIR / "digits-mlp.toml").is_file()
    _ = Int  # the space classes are the core's


def test_the_design_documents_example_loads(tmp_path):
    """docs/DESIGN.md section 4.2's example, verbatim."""
    text = """
    name = "fashion-mnist-mlp"
    description = "One hidden layer on Fashion-MNIST, the space of the KerasTuner tutorial"
    metric = "val_acc"
    direction = "maximize"
    max_epochs = 10
    [data]
    dataset = "fashion-mnist"
    [model]
    kind = "mlp"
    [defaults]                      # manual mode starts here; parameters not in [space] stay fixed at these
    units = 128
    lr = 1e-3
    optimizer = "adam"
    [space]
    units = { type = "int", low = 32, high = 512, step = 32 }
    lr = { type = "choice", values = [1e-2, 1e-3, 1e-4] }
    """
    p = load_preset(str(_write(tmp_path, text)))
    assert p.space.searched == ["units", "lr"] and p.defaults["optimizer"] == "adam"
    assert p.space["optimizer"].value == "adam" and p.defaults["image_size"] == 28


COMMAND = """
name = "script"
metric = "val_loss"
direction = "minimize"
max_epochs = 3
objective = OBJECTIVE
[defaults]
lr = 0.01
units = 32
[space]
lr = { type = "float", low = 0.001, high = 0.1, scale = "log" }
"""


@pytest.mark.parametrize(("objective", "key", "what"), [
    ('{ command = "python t.py --lr {lrr}" }', "objective.command", "{lrr} is not a parameter of the space"),
    ('{ command = "python t.py {lr" }', "objective.command", "brace"),
    ('{ cmd = "python t.py" }', "objective.cmd", "unknown key"),
    ("{ shell = true }", "objective.command", "missing"),
    ('{ command = ["python", "t.py"], shell = true }', "objective.shell", "one string"),
    ('{ command = 3 }', "objective.command", "a list of strings"),
])
def test_a_command_objective_is_checked_on_load(tmp_path, objective, key, what):
    path = _write(tmp_path, COMMAND.replace("OBJECTIVE", objective))
    with pytest.raises(PresetError) as e:
        load_preset(str(path))
    msg = str(e.value)
    assert str(path) in msg and f"key '{key}'" in msg and what in msg, msg


def test_a_command_objective_runs_from_the_preset_folder_and_survives_the_stored_form(tmp_path):
    from tuitune.core.run.command import Command

    path = _write(tmp_path, COMMAND.replace("OBJECTIVE", '{ command = "python t.py --lr {lr} --units {units} -e {budget}" }'))
    preset = load_preset(str(path))
    assert preset.objective_label == "command python t.py --lr {lr} --units {units} -e {budget}"
    again = Preset.from_dict(json.loads(json.dumps(preset.to_dict())))
    cmd = load_objective(again)
    assert isinstance(cmd, Command) and cmd.cwd == str(tmp_path) and not cmd.shell
    assert cmd.argv({"lr": 0.1, "units": 32, "budget": 2})[1:] == ["t.py", "--lr", "0.1", "--units", "32", "-e", "2"]
