"""Graph.frozen: value infos computed once inside the block, the same as outside; adding a node refuses."""

from __future__ import annotations

import numpy as np
import pytest
from networks import plain_net

from mixq_hw.graph import GraphError


def test_frozen_infos_are_the_graph_s_and_adding_refuses():
    graph = plain_net(np.random.default_rng(4))
    outside = {n.name: graph.value_info(n.name) for n in graph}
    with graph.frozen():
        with graph.frozen():                         # re-entrant
            assert {n.name: graph.value_info(n.name) for n in graph} == outside
        assert graph.value_infos() == outside
        with pytest.raises(GraphError, match="no node 'nope'"):
            graph.value_info("nope")
        with pytest.raises(GraphError, match="frozen"):
            graph.add_maxpool("extra", graph.nodes[1].name)
    assert graph.value_infos() == outside
