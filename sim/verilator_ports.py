"""The Verilated model's stream ports as the C++ testbench (``verilator_tb.cc``) sees them: which of a design's
interfaces are streams, and ``mixq_ports.h``, the header generated per design with the model's class, its
clocks and an accessor of every stream port's valid, ready and payload.  Part of every program's cache key
(:func:`sim.verilator.compile_verilator`)."""

from __future__ import annotations

import re

from amaranth.lib import wiring

from .beats import payload_shape, payload_width, words_of
from .cxxrtl import CompileError

__all__ = ["PORT_NAME", "MAX_PORTS", "stream_interfaces", "ports_header"]

#: Most input (and most output) streams of a design (``kMaxPorts`` of ``stream_loop.h``).
MAX_PORTS = 500
#: Verilog top-level port names the testbench can address: Verilator mangles "__" inside names, so the
#: stream port's own name must not hold one or start or end with "_".
PORT_NAME = re.compile(r"^[A-Za-z](?:[A-Za-z0-9]|_(?!_))*(?<!_)$")


def stream_interfaces(dut) -> tuple[list[str], list[str]]:
    """The stream interfaces of ``dut``: (sinks, whose valid/payload are inputs; sources)."""
    sinks: list[str] = []
    sources: list[str] = []
    for name, member in dut.signature.members.items():
        if not member.is_signature or not {"valid", "ready", "payload"} <= set(member.signature.members.keys()):
            continue
        if not PORT_NAME.match(name):
            raise ValueError(f"{type(dut).__name__}: stream port {name!r} cannot be addressed in the Verilated "
                             "model (use letters, digits and single underscores inside the name)")
        (sinks if member.flow == wiring.In else sources).append(name)
    return sinks, sources


def _mangle(name: str) -> str:
    return name.replace("__", "___05F")


def ports_header(dut, text: str, top: str) -> str:
    """mixq_ports.h for the testbench of ``dut`` verilated from ``text`` (top module ``top``): the model's class,
    its clock/reset and accessors of every stream port; a CompileError when ``text`` lacks a port."""
    header = re.search(rf"^module {top}\((.*?)\);", text, re.MULTILINE | re.DOTALL)
    if header is None:
        raise CompileError(f"{type(dut).__name__}: no module {top} in the emitted Verilog")
    top_ports = {p.strip() for p in header.group(1).split(",")}
    sinks, sources = stream_interfaces(dut)
    cls = f"V{top}"
    lines = [f'#include "{cls}.h"', f"#define MIXQ_TOP_CLASS {cls}",
             f"#define MIXQ_HAS_RST {int('rst' in top_ports)}",
             f"#define MIXQ_N_IN {len(sinks)}", f"#define MIXQ_N_OUT {len(sources)}"]
    words = {p: words_of(payload_width(payload_shape(dut, p))) for p in sinks + sources}
    lines.append(f"static const int kInWords[] = {{{', '.join(str(words[p]) for p in sinks) or '0'}}};")
    lines.append(f"static const int kOutWords[] = {{{', '.join(str(words[p]) for p in sources) or '0'}}};")

    for port in sinks + sources:
        for signal in ("valid", "ready", "payload"):
            if f"{port}__{signal}" not in top_ports:
                raise CompileError(f"{type(dut).__name__}: no top-level port {port}__{signal} in the emitted Verilog")
    lines += _clocks_header(dut, cls, top_ports, sources)
    for name, ports, body, default in [
        (f"void mixq_set_in_payload({cls} *t, int p, const uint32_t *w)", sinks, "put(t->{payload}, w); return;", ""),
        (f"void mixq_set_in_valid({cls} *t, int p, bool v)", sinks, "t->{valid} = v; return;", ""),
        (f"bool mixq_get_in_ready({cls} *t, int p)", sinks, "return t->{ready} & 1;", " return false;"),
        (f"void mixq_set_out_ready({cls} *t, int p, bool v)", sources, "t->{ready} = v; return;", ""),
        (f"bool mixq_get_out_valid({cls} *t, int p)", sources, "return t->{valid} & 1;", " return false;"),
        (f"void mixq_get_out_payload({cls} *t, int p, uint32_t *w)", sources, "get(t->{payload}, w); return;", ""),
    ]:
        lines.append(f"static inline {name} {{")
        lines.append("  switch (p) {")
        for k, port in enumerate(ports):
            names = {s: _mangle(f"{port}__{s}") for s in ("valid", "ready", "payload")}
            lines.append(f"    case {k}: " + body.format(**names))
        lines.append("    default: break;")
        lines.append(f"  }}{default}")
        lines.append("}")
    return "\n".join(lines) + "\n"


def _clocks_header(dut, cls: str, top_ports: set[str], sources: list[str]) -> list[str]:
    """The clocks part of mixq_ports.h: ``MIXQ_N_CLK``, ``mixq_set_clock`` and, per output stream, the clock
    of what drives it (``kClockOfOut``, -1: none).  ``dut.clocks`` (clock input -> output streams, e.g.
    :class:`sim.board_text.BoardBankPorts`) gives one clock per group; the testbench toggles a clock only
    while one of its streams has beats left.  Without it, ``clk`` (if any) clocks everything, always."""
    groups: dict[str, list[str]] = getattr(dut, "clocks", None) or ({"clk": []} if "clk" in top_ports else {})
    clock_of = [-1] * len(sources)
    for c, (clock, streams) in enumerate(groups.items()):
        if clock not in top_ports or not PORT_NAME.match(clock):
            raise CompileError(f"{type(dut).__name__}: no top-level clock input {clock!r} in the emitted Verilog")
        for stream in streams:
            if stream not in sources or clock_of[sources.index(stream)] != -1:
                raise CompileError(f"{type(dut).__name__}: clock {clock!r} drives {stream!r}, which is not an "
                                   "output stream of one clock")
            clock_of[sources.index(stream)] = c
    lines = [f"#define MIXQ_N_CLK {len(groups)}",
             f"static const int kClockOfOut[] = {{{', '.join(map(str, clock_of)) or '-1'}}};",
             f"static const bool kClockAlways[] = {{{', '.join('false' if s else 'true' for s in groups.values()) or 'false'}}};",
             f"static inline void mixq_set_clock({cls} *t, int c, bool v) {{", "  switch (c) {"]
    lines += [f"    case {c}: t->{clock} = v; return;" for c, clock in enumerate(groups)]
    return lines + ["    default: break;", "  }", "}"]
