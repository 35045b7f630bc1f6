"""Graph files: one ``.npz`` holding every tensor plus a JSON metadata entry, never pickle.

The metadata (entry ``__graph__``, UTF-8 JSON stored as a uint8 array) carries
``format`` = ``"mixq-graph"``, ``version``, the graph name, input shape and,
per node, its op, inputs, attrs and the archive key of each tensor.
"""

from __future__ import annotations

import json
import os
import zipfile
import zlib
from os import PathLike
from typing import Any, Callable

import numpy as np

from ..atomic import atomic_path
from ..validate import InputError, npz_size
from .checks import GraphError, Node

__all__ = ["FORMAT", "VERSION", "META_KEY", "save_graph", "load_graph"]

FORMAT = "mixq-graph"
VERSION = 1
META_KEY = "__graph__"


def save_graph(graph, path: str | PathLike) -> None:
    """Validate ``graph`` and write it to ``path`` atomically (the name is used as given, no suffix added)."""
    graph.validate()
    arrays: dict[str, np.ndarray] = {}
    nodes = []
    for i, node in enumerate(graph.nodes):
        keys = {}
        for tname, value in node.tensors.items():
            key = f"n{i}.{tname}"
            arrays[key] = np.ascontiguousarray(value)
            keys[tname] = key
        nodes.append({"name": node.name, "op": node.op, "inputs": list(node.inputs),
                      "attrs": node.attrs, "tensors": keys})
    meta = {"format": FORMAT, "version": VERSION, "name": graph.name,
            "input_shape": list(graph.input_shape), "nodes": nodes}
    arrays[META_KEY] = np.frombuffer(json.dumps(meta, allow_nan=False).encode("utf-8"), dtype=np.uint8)
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        np.savez(f, **arrays)   # type: ignore[arg-type]  # numpy's stub matches **arrays with allow_pickle


def _corrupt(path, what: str) -> GraphError:
    return GraphError(f"graph file {os.fspath(path)!r}: {what}")


def load_graph(path: str | PathLike, graph_type: Callable[..., Any]):
    """Read and validate a graph file as ``graph_type(name, input_shape, nodes)`` (``Graph.load`` passes
    ``Graph``: this module does not import the Graph); every failure is a GraphError naming ``path``.

    The archive's uncompressed size is read from its zip headers and refused above
    ``validate.LIMITS["graph_bytes"]`` before any member is inflated."""
    if not os.path.exists(path):
        raise _corrupt(path, "does not exist")
    if os.path.isdir(path):
        raise _corrupt(path, "is a directory, not a graph file")
    try:
        if zipfile.is_zipfile(path):  # other files get np.load's own diagnosis below
            npz_size(path)
    except InputError as e:
        raise GraphError(str(e)) from None
    try:
        archive = np.load(path, allow_pickle=False)
        if isinstance(archive, np.ndarray):
            raise _corrupt(path, "is a single .npy array, not a mixq graph (.npz)")
        with archive:
            if META_KEY not in archive.files:
                raise _corrupt(path, f"no {META_KEY!r} metadata entry: not a mixq graph file")
            meta = json.loads(archive[META_KEY].tobytes().decode("utf-8"))
            _check_meta(path, meta)
            nodes = []
            for entry in meta["nodes"]:
                tensors = {}
                for tname, key in entry["tensors"].items():
                    if key not in archive.files:
                        raise _corrupt(path, f"node {entry['name']!r} tensor {tname!r}: "
                                             f"archive entry {key!r} is missing")
                    tensors[tname] = archive[key]
                nodes.append(Node(entry["name"], entry["op"], list(entry["inputs"]),
                                  dict(entry["attrs"]), tensors))
    except GraphError:
        raise
    except (OSError, EOFError, ValueError, KeyError, TypeError, zipfile.BadZipFile,
            zlib.error, UnicodeDecodeError) as e:
        raise _corrupt(path, f"corrupt or not a mixq graph file ({type(e).__name__}: {e})") from None
    try:
        graph = graph_type(meta["name"], meta["input_shape"], nodes)
        graph.validate()
    except GraphError as e:
        raise _corrupt(path, f"invalid graph: {e}") from None
    return graph


def _check_meta(path, meta: object) -> None:
    if not isinstance(meta, dict):
        raise _corrupt(path, "metadata is not a JSON object")
    if meta.get("format") != FORMAT:
        raise _corrupt(path, f"format is {meta.get('format')!r}, expected {FORMAT!r}")
    if meta.get("version") != VERSION:
        raise _corrupt(path, f"version {meta.get('version')!r} is not supported (this mixq reads "
                             f"version {VERSION})")
    if not isinstance(meta.get("name"), str) or not isinstance(meta.get("input_shape"), list):
        raise _corrupt(path, "metadata lacks a name or input_shape")
    if not isinstance(meta.get("nodes"), list):
        raise _corrupt(path, "metadata lacks a node list")
    for i, entry in enumerate(meta["nodes"]):
        if not (isinstance(entry, dict) and isinstance(entry.get("name"), str)
                and isinstance(entry.get("op"), str) and isinstance(entry.get("inputs"), list)
                and isinstance(entry.get("attrs"), dict) and isinstance(entry.get("tensors"), dict)):
            raise _corrupt(path, f"metadata node #{i} is malformed")
