"""The op registry: every registered op has every part, and the Graph, the pipeline and export agree with it."""

from __future__ import annotations

import numpy as np
import pytest
from networks import (bypass_net, leaky_net, linear_net, pool_head, res_block, shift_net, shuffle_net, split_net,
                      yolo_tail)

from mixq_hw.graph import Graph, GraphError
from mixq_hw.ops import NoHardwareError, OpDef, op_def, register, registered
from mixq_hw.pipeline import plan_stages

#: Small graphs that together use every registered op (a new op adds its graph here).
EXAMPLES = (bypass_net, linear_net, yolo_tail, shift_net, shuffle_net, split_net, pool_head, res_block, leaky_net)


def _examples() -> list[Graph]:
    return [make(np.random.default_rng(7)) for make in EXAMPLES]


def _overrides(record: OpDef, method: str) -> bool:
    return getattr(type(record), method) is not getattr(OpDef, method)


def test_the_seed_ops_are_registered():
    assert {"input", "conv", "linear", "requant", "output", "maxpool", "reorg", "concat"} <= set(registered())


@pytest.mark.parametrize("name", sorted(registered()))
def test_every_op_has_every_part(name):
    record = op_def(name)
    assert record.name == name
    assert _overrides(record, "infer"), f"{name}: no shape inference"
    assert _overrides(record, "reference"), f"{name}: no numpy reference"
    # lowering: its own, or the explicit "no hardware" error of the base class
    assert _overrides(record, "lower") or record.lower.__func__ is OpDef.lower
    # export: hooks, or a note saying how the exporter makes it
    if record.exports:
        assert _overrides(record, "export_module") or _overrides(record, "export_function"), name
    else:
        assert record.export_note, f"{name}: neither export hooks nor an export_note"
    if record.folded:
        assert record.accumulates and _overrides(record, "fan_in") and _overrides(record, "engine_args")
        assert hasattr(record, "export_layer"), f"{name}: a folded op is exported from a quantised layer"


def test_examples_cover_every_registered_op():
    used = {n.op for g in _examples() for n in g}
    assert used == set(registered()), f"ops without an example graph: {set(registered()) - used}"


def test_registry_and_graph_agree():
    images_rng = np.random.default_rng(3)
    for graph in _examples():
        images = images_rng.integers(0, 256, (2, *graph.input_shape), dtype=np.uint8)
        values = graph.reference(images, keep=True)
        infos = graph.value_infos()
        for node in graph:
            record = op_def(node.op)
            args = [values[s] for s in node.inputs]
            out = record.reference(node, args, images)
            assert np.array_equal(out, values[node.name])
            assert out.shape[1:] == infos[node.name].shape, node.name
            lo, hi = infos[node.name].lo, infos[node.name].hi
            assert lo <= out.min() and out.max() <= hi, f"{node.name}: values outside its ValueInfo"
            assert isinstance(record.details(node), str)
            if record.folded:
                assert graph.node_macs(node.name) == int(np.prod(infos[node.name].shape)) * record.fan_in(node)
            else:
                assert graph.node_macs(node.name) == 0
                with pytest.raises(GraphError, match="no fan-in"):
                    record.fan_in(node)
        # the pipeline lowers every node through its record
        plan = plan_stages(graph)
        assert {s.node for s in plan.stages} == {n.name for n in graph}


def test_unknown_op_is_refused_naming_the_known_ones():
    g = Graph("t", (1, 4, 4))
    with pytest.raises(GraphError, match=r"unknown op; known ops: input, conv"):
        g.add("teleport", "up", [])
    with pytest.raises(GraphError, match="unknown op 'nope'"):
        op_def("nope")


def test_register_refuses_a_taken_or_bad_name():
    class Again(OpDef):
        name = "conv"

    class Bad(OpDef):
        name = "not a name"

    with pytest.raises(ValueError, match="already registered"):
        register(Again())
    with pytest.raises(ValueError, match="identifier"):
        register(Bad())
    with pytest.raises(ValueError, match="OpDef instance"):
        register(Again)


def test_an_op_without_hardware_says_so():
    class Plain(OpDef):
        name = "plain"

    node = Graph("t", (1, 2, 2))
    node.add_input(8)
    with pytest.raises(NoHardwareError, match="op 'plain' has no hardware"):
        Plain().lower(node.node("input").__class__("p", "plain", [], {}, {}), None)
