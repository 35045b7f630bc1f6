"""RTLIL of a design plus, for each submodule of one of its modules, where its signature's bits went.

Amaranth names the ports of a submodule's Verilog module after whichever signal
carries each group of nets (``o_valid``, ``o__payload$228``, ``port$4051$0``),
drops ports whose value the parent sees anyway (an output that is an input, a
constant) and splits a payload driven by several cells into several ports.  A
test bench that wants to drive one stage module of a whole design on its own
needs the map from the stage Component's signature (``i__valid``,
``o__payload`` ...) to those ports.  :func:`convert_with_stages` elaborates a
design once, writes the same RTLIL text as ``amaranth.back.rtlil.convert``
(checked in tests/test_sim_board_bank.py; memory contents are written as one
constant, not bit by bit) and reads that map off the netlist the text is
written from; :func:`rtlil_text` is that text alone, for every other conversion (a
network's weight memories make Amaranth's own writer several seconds slower).

The netlist is Amaranth 0.5's own (``amaranth.hdl._ir``, ``amaranth.back.rtlil``'s
emitter classes); anything unexpected in it raises :class:`StagePortsError`, and a
caller then drives the stages from their own elaboration instead.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

from amaranth.back import rtlil
from amaranth.hdl import ValueCastable, _ast, _ir, _nir
from amaranth.lib import wiring

__all__ = ["StagePortsError", "StageModule", "convert_with_stages", "rtlil_text", "signature_ports"]


class StagePortsError(ValueError):
    """A submodule's ports cannot be mapped to its signature (the caller falls back)."""


#: One bit of a signature output: ("port", module port, bit), ("const", 0 or 1) or ("in", signature port, bit)
OutBit = tuple


@dataclass
class StageModule:
    """Where the signature of submodule ``name`` went in the Verilog of the whole design."""

    name: str
    #: the Component elaborated there (its signature gives the stream ports' shapes)
    component: Any
    #: Verilog module name; None when the submodule holds no logic (every output is an input or a constant)
    module: str | None
    #: module port -> ("input" or "output", width)
    ports: dict[str, tuple[str, int]] = field(default_factory=dict)
    #: module input ports that are the clock domain's ``clk`` / ``rst``: port -> "clk" or "rst"
    clock: dict[str, str] = field(default_factory=dict)
    #: signature input (e.g. ``i__payload``) -> per bit: (module port, bit), or None where the module never reads it
    inputs: dict[str, list[tuple[str, int] | None]] = field(default_factory=dict)
    #: signature output -> per bit: an :data:`OutBit`
    outputs: dict[str, list[OutBit]] = field(default_factory=dict)


def signature_ports(component: Any) -> list[tuple[str, Any, bool]]:
    """``(name, value, is_input)`` of every port of ``component``'s signature, named as ``rtlil.convert``
    names a top module's ports (path joined by ``__``)."""
    ports = []
    for path, member, value in component.signature.flatten(component):
        if isinstance(value, ValueCastable):
            value = value.as_value()
        ports.append(("__".join(map(str, path)), value, member.flow == wiring.In))
    return ports


class _ModuleEmitter(rtlil.ModuleEmitter):
    """Amaranth's module emitter, writing a memory's initial contents as one constant directly (the same text
    as its ``sigspec`` of one constant net per bit writes, at a small fraction of the time: the weight ROMs
    hold most of a network's bits)."""

    def emit_memory(self, cell_idx: int, cell: Any) -> None:
        width, init = cell.width, list(cell.init)
        if not width or not init:
            return super().emit_memory(cell_idx, cell)
        mask = (1 << width) - 1
        # sigspec's one constant chunk: every row's bits, the first row's least significant bit last
        data = "".join(format(row & mask, f"0{width}b") for row in reversed(init))
        self.builder.cell("$meminit_v2", ports={
            "ADDR": self.sigspec(),
            "DATA": f"{len(data)}'{data}",
            "EN": self.sigspec(_nir.Value.ones(width)),
        }, parameters={
            "MEMID": self.memories[cell_idx].memid,
            "ABITS": 0,
            "WIDTH": width,
            "WORDS": cell.depth,
            "PRIORITY": 0,
        }, src_loc=cell.src_loc)


def rtlil_text(elaboratable: Any, name: str, platform: Any = None) -> str:
    """``rtlil.convert(elaboratable, name=name, platform=platform, emit_src=False)``'s text, memories' initial
    contents written as one constant (a Component; any other elaboratable goes through ``rtlil.convert``)."""
    if not isinstance(elaboratable, wiring.Component):
        return rtlil.convert(elaboratable, name=name, platform=platform, emit_src=False)
    return _emit(_netlist(elaboratable, name, platform)[1])[0]


def _netlist(elaboratable: Any, name: str, platform: Any) -> tuple[Any, Any]:
    """(the prepared design, its netlist) of a Component as ``rtlil.convert`` builds them."""
    ports = {pname: (value, _ir.PortDirection.Input if is_in else _ir.PortDirection.Output)
             for pname, value, is_in in signature_ports(elaboratable)}
    design = _ir.Fragment.get(elaboratable, platform).prepare(ports=ports, hierarchy=(name,))
    return design, _ir.build_netlist(design, name=name)


def _emit(netlist: Any) -> tuple[str, Any]:
    """(the RTLIL text of ``netlist``, no source locations, its empty-module checker)."""
    empty = rtlil.EmptyModuleChecker(netlist)
    builder = rtlil.Design(emit_src=False)
    for index, module in enumerate(netlist.modules):
        if empty.is_empty(index):
            continue
        module_builder = builder.module(".".join(module.name), src_loc=module.src_loc)
        if index == 0:
            module_builder.attribute("top", 1)
        _ModuleEmitter(module_builder, netlist, module, _ast.SignalDict(), empty_checker=empty).emit()
    return str(builder), empty


def convert_with_stages(elaboratable: Any, name: str, platform: Any = None,
                        parent: Sequence[str] = ()) -> tuple[str, dict[str, StageModule | StagePortsError]]:
    """(``rtlil.convert(elaboratable, name, platform, emit_src=False)``'s text, for every Component
    submodule of the module at hierarchy path ``parent`` below the top, by submodule name: its
    :class:`StageModule`, or the :class:`StagePortsError` saying why its ports cannot be mapped)."""
    design, netlist = _netlist(elaboratable, name, platform)
    text, empty = _emit(netlist)
    where = (name, *parent)
    modules = {module.name: index for index, module in enumerate(netlist.modules)}
    clock_nets = _clock_nets(design, netlist)
    stages: dict[str, StageModule | StagePortsError] = {}
    for fragment, info in design.fragments.items():
        if len(info.name) != len(where) + 1 or tuple(info.name[:-1]) != where:
            continue
        component = next((o for o in fragment.origins or () if isinstance(o, wiring.Component)), None)
        if component is None or info.name not in modules:
            continue
        index = modules[info.name]
        try:
            stages[info.name[-1]] = _map_stage(info.name[-1], component, netlist, index, empty.is_empty(index),
                                               clock_nets)
        except StagePortsError as err:
            stages[info.name[-1]] = err
    return text, stages


def _clock_nets(design: Any, netlist: Any) -> dict[Any, str]:
    """The nets of the ``sync`` domain's clock and reset: net -> "clk" / "rst"."""
    nets: dict[Any, str] = {}
    for fragment in design.fragments:
        domain = fragment.domains.get("sync") if hasattr(fragment, "domains") else None
        if domain is None:
            continue
        for kind, signal in (("clk", domain.clk), ("rst", domain.rst)):
            if signal is not None and signal in netlist.signals:
                for net in netlist.signals[signal]:
                    nets[net] = kind
    return nets


def _map_stage(sub: str, component: Any, netlist: Any, index: int, is_empty: bool,
               clock_nets: dict[Any, str]) -> StageModule:
    module = netlist.modules[index]
    where = f"submodule {sub!r}"
    stage = StageModule(sub, component, None if is_empty else ".".join(module.name))
    at: dict[Any, tuple[str, int, Any]] = {}
    if not is_empty:
        for pname, (value, flow) in module.ports.items():
            if any(c.isspace() for c in pname) or not pname:
                raise StagePortsError(f"{where}: port name {pname!r} cannot be written in Verilog")
            stage.ports[pname] = ("input" if flow == _nir.ModuleNetFlow.Input else "output", len(value))
            for bit, net in enumerate(value):
                at[net] = (pname, bit, flow)
    covered: set[tuple[str, int]] = set()
    read_from: dict[Any, tuple[str, int]] = {}
    signature = signature_ports(component)
    for pname, value, is_in in signature:
        if not is_in:
            continue
        nets = netlist.signals[value] if value in netlist.signals else [None] * len(value)
        bits: list[tuple[str, int] | None] = []
        for bit, net in enumerate(nets):
            if net is not None:
                read_from.setdefault(net, (pname, bit))
            hit = at.get(net) if net is not None else None
            if hit is not None and hit[2] == _nir.ModuleNetFlow.Input and (hit[0], hit[1]) not in covered:
                covered.add((hit[0], hit[1]))
                bits.append((hit[0], hit[1]))
            else:
                bits.append(None)
        stage.inputs[pname] = bits
    for pname, value, is_in in signature:
        if is_in:
            continue
        if value not in netlist.signals:
            raise StagePortsError(f"{where}: output {pname!r} is not in the netlist")
        out: list[OutBit] = []
        for bit, net in enumerate(netlist.signals[value]):
            hit = at.get(net)
            if net.is_const:
                out.append(("const", int(net.const)))
            elif hit is not None and hit[2] == _nir.ModuleNetFlow.Output:
                out.append(("port", hit[0], hit[1]))
            elif net in read_from:
                out.append(("in", *read_from[net]))
            else:
                raise StagePortsError(f"{where}: bit {bit} of output {pname!r} comes from outside the module")
        stage.outputs[pname] = out
    for pname, (direction, width) in stage.ports.items():
        if direction != "input":
            continue
        uncovered = [bit for bit in range(width) if (pname, bit) not in covered]
        if not uncovered:
            continue
        kind = clock_nets.get(module.ports[pname][0][0])
        if width == 1 and kind is not None:
            stage.clock[pname] = kind
        else:
            raise StagePortsError(f"{where}: input port {pname!r} (bits {uncovered[:4]}) is neither a signature "
                                  "port nor the clock or reset")
    return stage
