"""Structure rules of the code base, checked statically (no imports of the checked code).

- no import cycle among the modules of ``mixq_hw``, ``mixq_nn`` and ``sim``: every ``import`` statement
  counts, at module level or inside a function (a deferred import still makes the two modules depend on
  each other); only imports under ``if TYPE_CHECKING:`` are left out (never executed);
- no ``from x import _private`` across modules in ``mixq_hw``, ``mixq_nn``, ``sim`` and ``boards``;
- no ``isinstance`` on a packing-plan type outside the plan classes' own modules (callers use the
  :class:`~mixq_hw.packing.protocol.PackingPlan` contract);
- the packing table and the search's cost model agree on what they report for every (w, a, k).
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("mixq_hw", "mixq_nn", "sim")
PRIVATE_CHECKED = ("mixq_hw", "mixq_nn", "sim", "boards")
PLAN_TYPES = ("Plan", "SplitPlan", "MixedSplitPlan", "PackingPlan")
PLAN_MODULES = {"mixq_hw/packing/protocol.py", "mixq_hw/packing/layout.py", "mixq_hw/packing/split.py",
                "mixq_hw/packing/mixed.py"}

#: Cross-module private imports that predate this test, outside the packing planner; each names the
#: issue that removes it.  The test fails on any other, and on an entry that no longer occurs.
KNOWN_PRIVATE_IMPORTS: set[tuple[str, str, str]] = set()


def _modules(packages) -> dict[str, Path]:
    out = {}
    for package in packages:
        for path in sorted((ROOT / package).rglob("*.py")):
            rel = path.relative_to(ROOT).with_suffix("")
            parts = rel.parts[:-1] if rel.name == "__init__" else rel.parts
            out[".".join(parts)] = path
    return out


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or \
        (isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _imports(module: str, path: Path) -> list[tuple[str, list[str]]]:
    """``(imported module, imported names)`` of every import statement that can run."""
    tree = ast.parse(path.read_text(), filename=str(path))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = []

    def visit(node: ast.AST) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and _is_type_checking(child.test):
                for other in child.orelse:
                    visit(other)
                continue
            if isinstance(child, ast.Import):
                found.extend((alias.name, []) for alias in child.names)
            elif isinstance(child, ast.ImportFrom):
                if child.level:
                    base = package.split(".")
                    base = base[:len(base) - (child.level - 1)]
                    target = ".".join(base + ([child.module] if child.module else []))
                else:
                    target = child.module or ""
                found.append((target, [alias.name for alias in child.names]))
            visit(child)
    visit(tree)
    return found


def _graph(packages) -> dict[str, set[str]]:
    modules = _modules(packages)
    graph: dict[str, set[str]] = {m: set() for m in modules}
    for module, path in modules.items():
        for target, names in _imports(module, path):
            # ``from package import submodule`` depends on the submodule
            for name in names or [None]:
                candidate = f"{target}.{name}" if name else target
                dep = candidate if candidate in modules else target if target in modules else None
                if dep and dep != module:
                    graph[module].add(dep)
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []

    def strong(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                strong(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            strong(v)
    return out


def test_cycle_finder_finds_a_cycle():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycle_in_the_packing_planner():
    graph = {m: deps for m, deps in _graph(("mixq_hw",)).items() if m.startswith("mixq_hw.packing")}
    assert _cycles({m: {d for d in deps if d in graph} for m, deps in graph.items()}) == []


def test_no_import_cycle():
    assert _cycles(_graph(PACKAGES)) == []


def test_no_private_import_across_modules():
    modules = _modules(PRIVATE_CHECKED)
    found = set()
    for module, path in modules.items():
        for target, names in _imports(module, path):
            if target not in modules:
                continue            # third-party (numpy._core fallbacks are numpy's business)
            for name in names:
                if name.startswith("_") and not name.startswith("__"):
                    found.add((str(modules[target].relative_to(ROOT)), str(path.relative_to(ROOT)), name))
    assert found == KNOWN_PRIVATE_IMPORTS


def test_no_isinstance_on_plan_types_outside_the_plan_classes():
    pattern = re.compile(r"isinstance\([^)]*\b(" + "|".join(PLAN_TYPES) + r")\b")
    offenders = []
    for package in PRIVATE_CHECKED:
        for path in sorted((ROOT / package).rglob("*.py")):
            rel = str(path.relative_to(ROOT))
            if rel in PLAN_MODULES:
                continue
            for n, line in enumerate(path.read_text().splitlines(), 1):
                if pattern.search(line) or re.search(r"hasattr\([^)]*\"(copies|operand|hi|lo|shift)\"", line):
                    offenders.append(f"{rel}:{n}: {line.strip()}")
    assert offenders == []


def test_no_must_use_silencing():
    """Every Elaboratable that is created is elaborated (or never created): nothing silences Amaranth's check."""
    private = "_MustUse" + "__silence"          # spelt in two pieces so this file does not match itself
    offenders = [f"{path.relative_to(ROOT)}:{n}" for package in (*PACKAGES, "tests", "boards", "benchmarks")
                 for path in sorted((ROOT / package).rglob("*.py"))
                 for n, line in enumerate(path.read_text().splitlines(), 1) if private in line]
    assert offenders == []


def test_plan_isinstance_pattern_catches_dispatch():
    pattern = re.compile(r"isinstance\([^)]*\b(" + "|".join(PLAN_TYPES) + r")\b")
    assert pattern.search("x = a if isinstance(plan, SplitPlan) else b")
    assert not pattern.search("isinstance(stride, (int, np.integer))")


def test_table_and_search_cost_agree_for_every_entry():
    """The search's cost model (``mixq_nn.cost``) prices every (w, a, k) with the densest plan the conv engine
    builds (``engine_plan``: a single layout or a digit split), and ``python -m mixq_hw.packing --table`` shows
    that same figure for every entry the engine builds; an entry it does not build (a mixed-rate split) is
    marked table only, is denser than the engine's plan, and the cost model never uses it."""
    torch = pytest.importorskip("torch")
    from mixq_hw.packing.__main__ import _table
    from mixq_hw.packing.planner import ENGINE_PLAN_TYPES, KERNEL_SIZES, PLANNER, cost_table, density_table
    from mixq_nn.cost import TABLE_BITS, cost_report, packing_density

    rows = {(r["w"], r["a"], r["k"]): r for r in cost_table()}
    table = {(r["w"], r["a"], r["k"]): r for r in density_table()}
    single = {(r["w"], r["a"], r["k"]): r for r in density_table(split=False)}
    assert set(rows) == set(table) == set(single) == {(w, a, k) for w in TABLE_BITS for a in TABLE_BITS
                                                       for k in KERNEL_SIZES}
    grids = {k: _table([k], False).splitlines() for k in KERNEL_SIZES}
    for k in KERNEL_SIZES:
        density = packing_density(k, dtype=torch.float64)
        for i, w in enumerate(TABLE_BITS):
            cells = grids[k][2 + i].split()[1:]          # the printed MACs grid's row for w
            for j, a in enumerate(TABLE_BITS):
                r, t = rows[(w, a, k)], table[(w, a, k)]
                search = 1.0 / density[i, j].item()
                engine = PLANNER.engine_plan(w, a, k)
                assert engine.plan_type in ENGINE_PLAN_TYPES, (w, a, k)
                assert search == engine.macs_per_dsp == r["cost_macs_per_dsp"] == t["engine_macs_per_dsp"], (w, a, k)
                assert t["engine_builds"] == (t["macs_per_dsp"] == search) == (cells[j][-1] != "t"), (w, a, k)
                if t["engine_builds"]:
                    assert cells[j] == f"{search:.3g}", (w, a, k)
                else:
                    assert t["mixed"] and t["macs_per_dsp"] > search and r["best_plan"] == "mixed", (w, a, k)
                assert single[(w, a, k)]["macs_per_dsp"] == t["single_macs_per_dsp"] <= search, (w, a, k)
    w3a4 = rows[(3, 4, 3)]          # the example: the engine builds a 9.0 activation split, priced so
    assert (w3a4["single_macs_per_dsp"], w3a4["cost_macs_per_dsp"], w3a4["engine_plan"]) == (6.0, 9.0, "split")
    from mixq_nn import models
    model = models.build("VGGtiny", "fixed", input_shape=(3, 32, 32))
    for row in cost_report(model, (3, 32, 32)):       # a whole model's rows price the same figures
        assert row["macs_per_dsp"] == rows[(row["w"], max(row["a"], 2), row["k"])]["cost_macs_per_dsp"]


def test_bit_width_rules_have_one_answer():
    """The quantizers' step tables, the graph's validation and the conv engine accept the same widths
    (mixq_hw.packing.bits), and the graph refuses a width the hardware cannot build, naming the layer."""
    pytest.importorskip("torch")
    import numpy as np

    from mixq_hw.graph import Graph, GraphError
    from mixq_hw.packing.bits import ACT_BITS, PACKED_BITS, WEIGHT_BITS
    from mixq_hw.packing.planner import BIT_WIDTHS
    from mixq_nn.cost import TABLE_BITS
    from mixq_nn.quant import GAUSS_WEIGHT_STEP, HALF_GAUSS_ACT_STEP

    assert tuple(GAUSS_WEIGHT_STEP) == tuple(WEIGHT_BITS) and tuple(HALF_GAUSS_ACT_STEP) == tuple(ACT_BITS)
    assert tuple(TABLE_BITS) == tuple(BIT_WIDTHS) == tuple(PACKED_BITS)
    g = Graph("w9", (3, 8, 8))
    x = g.add_input(5)
    with pytest.raises(GraphError, match=r"'c1'.*w_bits=9 out of range 2\.\.8"):
        g.add_conv("c1", x, np.ones((4, 3, 3, 3), dtype=np.int64), w_bits=9)
