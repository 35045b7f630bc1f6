"""Bad input to every command: exit status 2, one ``error:`` line naming the option / file / layer and the
value, no traceback, and the earlier outputs in the output location byte-identical afterwards.

Every case fails before any work by design, so the table runs in seconds; the cases that need a real
build (interrupts, concurrent builds, hostile names that pass) are in ``test_bad_input_build.py``.
"""

from __future__ import annotations

import json
import os
import pickle
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from networks import small_graph

from mixq_hw import validate
from mixq_hw.graph import Graph

REPO = Path(__file__).resolve().parent.parent
CKPT = REPO / "mixq_hw" / "default" / "vggtiny_digits.pt"
FOLD = {"c1": {"simd": 3, "pe": 2, "pixels": 2}, "c2": {"simd": 8, "pe": 4, "pixels": 1}}


def rewrite_graph(src: Path, dst: Path, edit) -> Path:
    """Copy graph file ``src`` to ``dst`` with ``edit(meta)`` applied to its JSON metadata (no validation)."""
    with np.load(src) as archive:
        arrays = {k: archive[k] for k in archive.files}
    meta = json.loads(arrays["__graph__"].tobytes())
    edit(meta)
    arrays["__graph__"] = np.frombuffer(json.dumps(meta).encode(), np.uint8)
    with open(dst, "wb") as f:
        np.savez(f, **arrays)
    return dst


def rename_node(old: str, new: str):
    """A metadata edit renaming node ``old`` (and every reference to it) to ``new``."""
    def edit(meta):
        for node in meta["nodes"]:
            if node["name"] == old:
                node["name"] = new
            node["inputs"] = [new if i == old else i for i in node["inputs"]]
    return edit


def zip_bomb_header(path: Path) -> Path:
    """A small .npz whose zip headers claim a member inflating to ~4 GB."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as z:
        z.writestr("__graph__.npy", b"x" * 16)
    data = bytearray(path.read_bytes())
    for sig, offset in ((b"PK\x03\x04", 22), (b"PK\x01\x02", 24)):
        at = data.index(sig)
        data[at + offset:at + offset + 4] = (0xFFFFFFF0).to_bytes(4, "little")
    path.write_bytes(bytes(data))
    return path


class Evil:
    """Unpickling this would create the folder ``marker``: the checkpoint loader must never do it."""

    def __init__(self, marker: str):
        self.marker = marker

    def __reduce__(self):
        return (os.mkdir, (self.marker,))


def edited_checkpoint(dst: Path, **changes) -> Path:
    content = torch.load(CKPT, map_location="cpu", weights_only=True)
    for key, value in changes.items():
        if key == "num_classes":
            content["model_args"] = {**content["model_args"], "num_classes": value}
        else:
            content[key] = value
    torch.save(content, dst)
    return dst


def snapshot(path: Path) -> dict[str, bytes]:
    """Every file under ``path`` (or the file itself) with its bytes; {} when absent."""
    if path.is_file():
        return {"": path.read_bytes()}
    if path.is_dir():
        return {p.relative_to(path).as_posix(): p.read_bytes() for p in sorted(path.rglob("*")) if p.is_file()}
    return {}


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """Inputs good and bad, made once: graph files, folding files, checkpoints."""
    d = tmp_path_factory.mktemp("inputs")
    f: dict[str, Path] = {}
    f["graph"] = d / "tiny.npz"
    small_graph("tiny").save(f["graph"])
    f["fold"] = d / "fold.json"
    f["fold"].write_text(json.dumps(FOLD))
    f["badfold"] = d / "badfold.json"
    f["badfold"].write_text(json.dumps({"c1": {"simd": 2, "pe": 1, "pixels": 1}}))
    f["ckpt"] = CKPT
    f["missing"] = d / "missing.pt"
    f["folder"] = d / "a_folder.pt"
    f["folder"].mkdir()
    f["empty"] = d / "empty.pt"
    f["empty"].write_bytes(b"")
    f["random"] = d / "random.pt"
    f["random"].write_bytes(np.random.default_rng(1).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    f["marker"] = d / "PICKLE_RAN"
    f["evil"] = d / "evil.pt"
    f["evil"].write_bytes(pickle.dumps(Evil(str(f["marker"]))))
    f["evilzip"] = d / "evilzip.pt"
    torch.save({"format": "mixq-checkpoint", "obj": Evil(str(f["marker"]))}, f["evilzip"])
    f["txt"] = d / "weights.txt"
    f["txt"].write_text("hello")
    f["randnpz"] = d / "random.npz"
    f["randnpz"].write_bytes(f["random"].read_bytes())
    f["bomb"] = zip_bomb_header(d / "bomb.npz")
    f["hugeshape"] = rewrite_graph(f["graph"], d / "huge.npz", lambda m: m.__setitem__("input_shape", [3, 10**5, 10**5]))
    f["wideshape"] = rewrite_graph(f["graph"], d / "wide.npz", lambda m: m.__setitem__("input_shape", [10**5, 8, 8]))
    f["classes"] = edited_checkpoint(d / "classes.pt", num_classes=10 ** 9)
    f["ckshape"] = edited_checkpoint(d / "ckshape.pt", input_shape=[3, 100000, 100000])
    f["supernet"] = edited_checkpoint(d / "supernet.pt", variant="supernet")
    for key, name in [("semicolon", "c1; rm -rf /"), ("space", "c 1"), ("newline", "c1\nendmodule"),
                      ("nul", "c1\x00"), ("quote", 'c1"'), ("digit", "1c"), ("unicode", "c\u00f61"),
                      ("backslash", "c1\\"), ("dollar", "c$1"), ("brace", "c1}")]:
        f[key] = rewrite_graph(f["graph"], d / f"name_{key}.npz", rename_node("c1", name))
    f["gname"] = rewrite_graph(f["graph"], d / "gname.npz", lambda m: m.__setitem__("name", "../../evil"))
    f["afile"] = d / "afile"
    f["afile"].write_text("not a folder")
    # an image array too large to allocate: 64 x 4096 x 4096 pixels per image
    big = Graph("big", (64, 4096, 4096))
    x = big.add_input(8)
    c = big.add_conv("c", x, np.ones((1, 64, 1, 1), dtype=np.int64), w_bits=2)
    big.add_output("out", c, np.zeros(1, dtype=np.int64), np.ones(1))
    f["bigimg"] = d / "bigimg.npz"
    big.save(f["bigimg"])
    return f


@pytest.fixture(scope="module")
def previous_build(files, tmp_path_factory):
    """A complete build folder, made once; each case works on a copy of it."""
    from mixq_hw.build import build

    out = tmp_path_factory.mktemp("prev") / "build"
    build(files["graph"], out=out, fold=files["fold"], quiet=True)
    assert (out / "manifest.json").is_file()
    return out


def _run_main(main, argv, capsys) -> tuple[int, str]:
    try:
        status = main(argv)
    except SystemExit as exc:  # argparse's own refusals (unknown choice): status 2, usage on stderr
        status = exc.code
    return status, capsys.readouterr().err


def check_refused(status: int, err: str, expect: list[str], before: dict, location: Path, files) -> None:
    assert status == validate.EXIT_BAD_INPUT, err
    assert "Traceback" not in err
    assert err.startswith("error: ") or "error:" in err, err
    for fragment in expect:
        assert fragment in err, (fragment, err)
    assert snapshot(location) == before, "earlier outputs changed"
    assert not files["marker"].exists(), "a pickled object ran"


# ---------------------------------------------------------------------------------------------------- build

BUILD_CASES = [
    # (id, argv after the source, source key, fragments the message must hold)
    ("clock-zero", ["--clock", "0"], "graph", ["--clock 0", "at least 10"]),
    ("clock-inf", ["--clock", "inf"], "graph", ["--clock inf", "finite"]),
    ("clock-nan", ["--clock", "nan"], "graph", ["--clock nan"]),
    ("clock-low", ["--clock", "5"], "graph", ["--clock 5"]),
    ("clock-high", ["--clock", "1e6"], "graph", ["--clock 1e+06", "at most 400"]),
    ("verify-negative", ["--verify", "-1"], "graph", ["--verify -1"]),
    ("backend-without-verify", ["--backend", "pysim"], "graph", ["--backend does not apply", "--verify"]),
    ("verify-huge", ["--verify", "10000000"], "graph", ["--verify 10000000", "at most"]),
    ("multipliers-unknown", ["--multipliers", "dsp,fpga"], "graph", ["--multipliers", "fpga"]),
    ("multipliers-empty", ["--multipliers", ","], "graph", ["--multipliers"]),
    ("multipliers-with-fold", ["--fold", "{fold}", "--multipliers", "dsp"], "graph",
     ["--multipliers does not apply", "--fold"]),
    ("utilization-zero", ["--utilization", "0"], "graph", ["--utilization 0", "at least 0.1"]),
    ("utilization-above-one", ["--utilization", "1.5"], "graph", ["--utilization 1.5", "at most 1"]),
    ("utilization-nan", ["--utilization", "nan"], "graph", ["--utilization nan", "finite"]),
    ("utilization-with-fold", ["--fold", "{fold}", "--utilization", "0.8"], "graph",
     ["--utilization does not apply", "--fold"]),
    ("board-unknown", ["--board", "zcu104"], "graph", ["--board 'zcu104'", "ultra96"]),
    ("source-missing", [], "missing", ["missing.pt", "no such file"]),
    ("source-folder", [], "folder", ["a_folder.pt", "folder"]),
    ("source-empty", [], "empty", ["empty.pt", "empty"]),
    ("source-random-bytes", [], "random", ["random.pt", "not a checkpoint"]),
    ("source-pickle", [], "evil", ["evil.pt", "refused"]),
    ("source-pickle-in-zip", [], "evilzip", ["evilzip.pt", "refused"]),
    ("source-suffix", [], "txt", ["weights.txt", ".npz"]),
    ("npz-random-bytes", [], "randnpz", ["random.npz", "corrupt"]),
    ("npz-inflates-too-far", [], "bomb", ["bomb.npz", "before decompression", "536,870,912"]),
    ("npz-huge-input", [], "hugeshape", ["huge.npz", "3x100000x100000", "4,096"]),
    ("npz-too-many-channels", [], "wideshape", ["wide.npz", "100000x8x8", "65,536"]),
    ("ckpt-huge-class-count", [], "classes", ["classes.pt", "num_classes=1000000000"]),
    ("ckpt-huge-input", [], "ckshape", ["ckshape.pt", "3x100000x100000"]),
    ("name-semicolon", [], "semicolon", ["name_semicolon.npz", "'c1; rm -rf /'", "not a safe name"]),
    ("name-space", [], "space", ["'c 1'", "not a safe name"]),
    ("name-newline", [], "newline", ["'c1\\nendmodule'", "not a safe name"]),
    ("name-nul", [], "nul", ["'c1\\x00'", "not a safe name"]),
    ("name-quote", [], "quote", ["'c1\"'", "not a safe name"]),
    ("name-leading-digit", [], "digit", ["'1c'", "not a safe name"]),
    ("name-non-ascii", [], "unicode", ["'c\u00f61'", "not a safe name"]),
    ("name-backslash", [], "backslash", ["'c1\\\\'", "not a safe name"]),
    ("name-dollar", [], "dollar", ["'c$1'", "not a safe name"]),
    ("name-brace", [], "brace", ["'c1}'", "not a safe name"]),
    ("graph-name-traversal", [], "gname", ["'../../evil'", "not a safe name"]),
    ("fold-missing", ["--fold", "{missing}"], "graph", ["--fold", "missing.pt", "no such file"]),
    ("fold-folder", ["--fold", "{folder}"], "graph", ["--fold", "a_folder.pt"]),
    ("fold-wrong", ["--fold", "{badfold}"], "graph", ["c1", "simd"]),
    ("verify-too-many-pixels", ["--verify", "9"], "bigimg", ["--verify 9", "1,073,741,824"]),
]


@pytest.mark.parametrize("case", BUILD_CASES, ids=[c[0] for c in BUILD_CASES])
def test_build_refuses(case, files, previous_build, tmp_path, capsys):
    from mixq_hw.build import main

    _, args, source, expect = case
    out = tmp_path / "build"
    shutil.copytree(previous_build, out)
    before = snapshot(out)
    argv = [str(files[source])] + [a.format(**{k: str(v) for k, v in files.items()}) for a in args]
    if "--fold" not in args and "--multipliers" not in args and "--utilization" not in args and source != "bigimg":
        argv += ["--fold", str(files["fold"])]
    status, err = _run_main(main, argv + ["--out", str(out), "-q"], capsys)
    check_refused(status, err, expect, before, out, files)
    # nothing new next to the folder but, at most, its lock file
    assert {p.name for p in tmp_path.iterdir()} <= {"build", "build.lock"}


OUT_CASES = [
    # (id, --out relative to tmp_path, fragments)
    ("out-is-a-file", "afile", ["--out", "afile", "is a file"]),
    ("out-under-a-file", "afile/sub", ["--out", "afile", "is a file, not a folder"]),
    ("out-user-folder", "mine", ["--out", "mine", "not a mixq build"]),
    ("out-newline", "bad\nname", ["--out", "control characters"]),
    ("out-dot-dot", "..", ["--out", "not '.', '..'"]),
]


@pytest.mark.parametrize("case", OUT_CASES, ids=[c[0] for c in OUT_CASES])
def test_build_refuses_output_paths(case, files, tmp_path, capsys):
    from mixq_hw.build import main

    _, rel, expect = case
    (tmp_path / "afile").write_text("mine")
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("my notes")
    before = snapshot(tmp_path)
    out = rel if rel == ".." else str(tmp_path / rel)
    status, err = _run_main(main, [str(files["graph"]), "--fold", str(files["fold"]), "--out", out, "-q"], capsys)
    check_refused(status, err, expect, before, tmp_path, files)


def test_build_refuses_locked_folder(files, previous_build, tmp_path, capsys):
    """A second build into a folder whose lock is held stops at once with a clear message."""
    from mixq_hw.atomic import folder_lock
    from mixq_hw.build import main

    out = tmp_path / "build"
    shutil.copytree(previous_build, out)
    before = snapshot(out)
    with folder_lock(out):
        status, err = _run_main(main, [str(files["graph"]), "--fold", str(files["fold"]), "--out", str(out), "-q"],
                                capsys)
    check_refused(status, err, ["another build is writing", str(out), "build.lock"], before, out, files)


# --------------------------------------------------------------------------------------- export, evaluate

def _old_file(tmp_path: Path, name: str) -> Path:
    path = tmp_path / name
    path.write_bytes(b"earlier output, must survive")
    return path


EXPORT_CASES = [
    ("missing", "{missing}", None, ["missing.pt", "no such file"]),
    ("random-bytes", "{random}", None, ["random.pt", "not a checkpoint"]),
    ("pickle", "{evil}", None, ["evil.pt", "refused"]),
    ("supernet", "{supernet}", None, ["supernet.pt", "state does not match"]),
    ("huge-classes", "{classes}", None, ["num_classes=1000000000"]),
    ("out-is-folder", "{ckpt}", "folder", ["-o/--output", "is a folder"]),
    ("out-under-file", "{ckpt}", "afile/x.npz", ["-o/--output", "is a file, not a folder"]),
]


@pytest.mark.parametrize("case", EXPORT_CASES, ids=[c[0] for c in EXPORT_CASES])
def test_export_refuses(case, files, tmp_path, capsys):
    from mixq_nn.export import main

    _, source, out, expect = case
    old = _old_file(tmp_path, "model.npz")
    (tmp_path / "folder").mkdir()
    (tmp_path / "afile").write_text("x")
    before = snapshot(tmp_path)
    target = str(old) if out is None else str(tmp_path / out)
    status, err = _run_main(main, [source.format(**{k: str(v) for k, v in files.items()}), "-o", target, "-q"],
                            capsys)
    check_refused(status, err, expect, before, tmp_path, files)


EVALUATE_CASES = [
    ("missing", ["{missing}"], ["missing.pt", "no such file"]),
    ("random-bytes", ["{random}"], ["random.pt", "not a checkpoint"]),
    ("limit-zero", ["{ckpt}", "--limit", "0"], ["--limit 0"]),
    ("batch-size-zero", ["{ckpt}", "--batch-size", "0"], ["--batch-size 0"]),
    ("save-graph-folder", ["{ckpt}", "--save-graph", "{out}"], ["--save-graph", "is a folder"]),
    ("data-root-missing", ["{ckpt}", "--data-root", "{out}/nope"], ["--data-root", "nope"]),
    ("dataset-unknown", ["{ckpt}", "--dataset", "imagenet"], ["--dataset", "imagenet"]),
]


@pytest.mark.parametrize("case", EVALUATE_CASES, ids=[c[0] for c in EVALUATE_CASES])
def test_evaluate_refuses(case, files, tmp_path, capsys):
    from mixq_nn.evaluate import main

    _, args, expect = case
    _old_file(tmp_path, "graph.npz")
    names = {**{k: str(v) for k, v in files.items()}, "out": str(tmp_path)}
    before = snapshot(tmp_path)
    status, err = _run_main(main, [a.format(**names) for a in args], capsys)
    check_refused(status, err, expect, before, tmp_path, files)


# ------------------------------------------------------------------------------------------ train, search

TRAIN_CASES = [
    ("batch-size-zero", ["--batch-size", "0"], ["--batch-size 0"]),
    ("lr-nan", ["--lr", "nan"], ["--lr nan"]),
    ("lr-inf", ["--lr", "inf"], ["--lr inf"]),
    ("lr-zero", ["--lr", "0"], ["--lr 0", "above 0"]),
    ("weight-decay-negative", ["--weight-decay", "-1"], ["--weight-decay -1"]),
    ("limit-zero", ["--limit", "0"], ["--limit 0"]),
    ("epochs-negative", ["--epochs", "-1"], ["--epochs -1"]),
    ("threads-zero", ["--threads", "0"], ["--threads 0"]),
    ("seed-negative", ["--seed", "-1"], ["--seed -1"]),
    ("calibration-zero", ["--epochs", "0", "--calibration-batches", "0"], ["--calibration-batches 0"]),
    ("calibration-when-training", ["--calibration-batches", "3"], ["--calibration-batches does not apply"]),
    ("input-shape-huge", ["--input-shape", "3,100000,100000"], ["--input-shape", "4,096"]),
    ("scratch-alone", ["--scratch"], ["--scratch does not apply", "--from-search"]),
    ("from-search-missing", ["--from-search", "{missing}"], ["--from-search", "missing.pt"]),
    ("from-search-random", ["--from-search", "{random}"], ["random.pt", "not a checkpoint"]),
    ("data-root-missing", ["--data-root", "{tmp}/nope"], ["--data-root", "nope"]),
    ("out-is-folder", ["--out", "{tmp}/folder"], ["--out", "is a folder"]),
    ("out-under-file", ["--out", "{tmp}/afile/w.pt"], ["--out", "is a file, not a folder"]),
]


@pytest.mark.parametrize("case", TRAIN_CASES, ids=[c[0] for c in TRAIN_CASES])
def test_train_refuses_before_training(case, files, tmp_path, capsys):
    from mixq_nn.train import main

    _, args, expect = case
    old = _old_file(tmp_path, "weights.pt")
    (tmp_path / "folder").mkdir()
    (tmp_path / "afile").write_text("x")
    names = {**{k: str(v) for k, v in files.items()}, "tmp": str(tmp_path)}
    argv = [a.format(**names) for a in args]
    if "--out" not in args:
        argv += ["--out", str(old)]
    before = snapshot(tmp_path)
    status, err = _run_main(main, argv + ["--epochs", "1"] if "--epochs" not in args else argv, capsys)
    check_refused(status, err, expect, before, tmp_path, files)


SEARCH_CASES = [
    ("cd-nan", ["--cd", "nan"], ["--cd nan"]),
    ("cd-negative", ["--cd", "-1"], ["--cd -1"]),
    ("epochs-zero", ["--epochs", "0"], ["--epochs 0"]),
    ("arch-lr-zero", ["--arch-lr", "0"], ["--arch-lr 0"]),
    ("eval-every-negative", ["--eval-every", "-1"], ["--eval-every -1"]),
    ("wbits-out-of-range", ["--wbits", "1,2"], ["--wbits"]),
    ("out-is-folder", ["--out", "{tmp}/folder"], ["--out", "is a folder"]),
    ("plot-is-folder", ["--plot", "{tmp}/folder"], ["--plot", "is a folder"]),
]


@pytest.mark.parametrize("case", SEARCH_CASES, ids=[c[0] for c in SEARCH_CASES])
def test_search_refuses_before_searching(case, files, tmp_path, capsys):
    from mixq_nn.search import main

    _, args, expect = case
    old = _old_file(tmp_path, "search.pt")
    _old_file(tmp_path, "search.png")
    (tmp_path / "folder").mkdir()
    argv = [a.format(tmp=str(tmp_path)) for a in args]
    if "--out" not in args:
        argv += ["--out", str(old)]
    before = snapshot(tmp_path)
    status, err = _run_main(main, argv, capsys)
    check_refused(status, err, expect, before, tmp_path, files)


# ------------------------------------------------------------------------------------ sim, packing, models

SIM_CASES = [
    ("images-zero", ["{graph}", "--images", "0"], ["--images 0"]),
    ("images-huge", ["{graph}", "--images", "10000000"], ["--images 10000000", "at most"]),
    ("images-too-many-pixels", ["{bigimg}", "--images", "2", "--random"], ["--images 2", "1,073,741,824"]),
    ("stall-above-one", ["{graph}", "--stall", "1.5"], ["--stall 1.5"]),
    ("stall-nan", ["{graph}", "--stall", "nan"], ["--stall nan"]),
    ("stall-negative", ["{graph}", "--stall", "-0.1"], ["--stall -0.1"]),
    ("seed-negative", ["{graph}", "--seed", "-3"], ["--seed -3"]),
    ("opt-injection", ["{graph}", "--opt", "-O1 -o /tmp/x; rm"], ["--opt '-O1 -o /tmp/x; rm'"]),
    ("vcd-folder", ["{graph}", "--backend", "pysim", "--vcd", "{tmp}"], ["--vcd", "is a folder"]),
    ("random-with-dataset", ["{graph}", "--random", "--dataset", "digits"], ["--dataset does not apply"]),
    ("source-random-bytes", ["{random}"], ["random.pt", "not a checkpoint"]),
    ("source-pickle", ["{evil}"], ["evil.pt", "refused"]),
    ("source-name-newline", ["{newline}"], ["not a safe name"]),
    ("source-bomb", ["{bomb}"], ["bomb.npz", "before decompression"]),
    ("fold-and-dsp", ["{graph}", "--fold", "{fold}", "--dsp", "4"], ["--fold or --dsp"]),
    ("opt-with-pysim", ["{graph}", "--backend", "pysim", "--opt=-O2"], ["--opt does not apply to --backend pysim"]),
    ("flatten-with-pysim", ["{graph}", "--backend", "pysim", "--flatten", "yes"], ["--flatten does not apply"]),
]


@pytest.mark.parametrize("case", SIM_CASES, ids=[c[0] for c in SIM_CASES])
def test_sim_refuses(case, files, tmp_path, capsys):
    from sim.__main__ import main

    _, args, expect = case
    _old_file(tmp_path, "wave.vcd")
    names = {**{k: str(v) for k, v in files.items()}, "tmp": str(tmp_path)}
    before = snapshot(tmp_path)
    status, err = _run_main(main, [a.format(**names) for a in args] + ["-q"], capsys)
    check_refused(status, err, expect, before, tmp_path, files)


PACKING_CASES = [
    ("k-with-plan", ["--plan", "4", "4", "3", "--k", "7"], ["--k does not apply to --plan"]),
    ("k-with-synth", ["--synth", "4", "4", "3", "--k", "3"], ["--k does not apply to --synth"]),
    ("k-unknown", ["--table", "--k", "7"], ["--k 7"]),
    ("plan-bits", ["--plan", "9", "4", "3"], ["w_bits=9"]),
]


@pytest.mark.parametrize("case", PACKING_CASES, ids=[c[0] for c in PACKING_CASES])
def test_packing_refuses(case, files, tmp_path, capsys):
    from mixq_hw.packing.__main__ import main

    _, args, expect = case
    status, err = _run_main(main, args, capsys)
    check_refused(status, err, expect, {}, tmp_path / "nothing", files)


def test_models_refuses_unknown_model(files, tmp_path, capsys):
    from mixq_nn.models.__main__ import main

    status, err = _run_main(main, ["--model", "ResNet50"], capsys)
    check_refused(status, err, ["--model", "ResNet50"], {}, tmp_path / "nothing", files)


def test_limits_are_stated_in_one_place():
    """The limits every command applies live in validate.LIMITS (and the messages quote them)."""
    assert validate.LIMITS["graph_bytes"] == 512 * 2 ** 20
    assert validate.LIMITS["side"] == 4096 and validate.LIMITS["channels"] == 65_536
    with pytest.raises(validate.InputError, match=r"--x \(3, 0, 4\)"):
        validate.shape((3, 0, 4), "--x")


@pytest.mark.parametrize("name", ["c 1", "c1;", "c1\n", "c1\x00", "'c1'", "1c", "c\u00e91", "c1.", ".c1", "c..1",
                                  "c1-2", "x" * 129])
def test_graph_api_refuses_unsafe_layer_names(name):
    """Names reach Verilog, C++ and Python: the Graph itself refuses unsafe ones, naming the layer."""
    from mixq_hw.graph import GraphError

    g = Graph("g", (1, 4, 4))
    g.add_input(8)
    with pytest.raises(GraphError, match="not a safe name") as info:
        g.add_conv(name, "input", np.ones((1, 1, 1, 1), dtype=np.int64), w_bits=2)
    assert repr(name)[:60] in str(info.value) or repr(name)[1:40] in str(info.value)
    assert [n.name for n in g.nodes] == ["input"]
