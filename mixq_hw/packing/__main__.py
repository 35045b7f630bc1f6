"""Command line of the packing planner: the density table, one plan's bit maps, or a core's synthesis figures."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Sequence

from .. import validate
from .planner import BIT_WIDTHS, KERNEL_SIZES, best_plan, cost_table, density_table, explain, plan

_EPILOG = """\
examples:
  python -m mixq_hw.packing --table                 MACs per DSP48E2 per cycle, one grid per kernel size
  python -m mixq_hw.packing --table --json --k 3    the same as JSON objects (w, a, k, macs_per_dsp, ...)
  python -m mixq_hw.packing --table --cost          the cost model's figure (= what the conv engine builds) per entry
  python -m mixq_hw.packing --plan 4 4 3            bit maps of both ports and of P for w4a4, 3x3 kernels
  python -m mixq_hw.packing --plan 4 4 3 --single   the same for the best one-multiply layout (plan())
  python -m mixq_hw.packing --synth 4 4 3 --json    DSP48E2/LUT/FF of the packed core (yosys, slow)
  python -m mixq_hw.packing --table --signed        the table for signed (two's-complement) activation codes

Entries marked w: / a: in the layout grid are digit splits: the weight / activation cut into two digits,
each digit's products on its own DSP48E2 (2 per core), the fields recombined as (hi << shift) + lo.
Entries marked m: are mixed-rate weight splits: the signed high digit w >> shift on several DSP48E2s, the
unsigned low digit on one, denser layout (the one shown); see mixq_hw/packing/mixed.py.

The table is the densest plan of any kind (best_plan).  The conv engine builds single layouts and digit
splits (engine_plan); a mixed-rate split is table only (marked t): the engine does not build it, and the
search's cost model (mixq_nn.cost) prices every entry with the engine's figure, never a table-only one.
--cost prints the cost model's figure next to the best single layout's (--single).
"""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m mixq_hw.packing",
        description="DSP48E2 packing planner: for weight bits W and activation bits A in 2..8 and kernel size "
                    "K in {1, 3, 5}, the exact layout with the most useful multiply-accumulates per DSP per "
                    "cycle (weights signed narrow-range, activations unsigned, or signed with --signed).",
        epilog=_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    what = parser.add_mutually_exclusive_group(required=True)
    what.add_argument("--table", action="store_true", help="print the density table (one w x a grid per k)")
    what.add_argument("--plan", nargs=3, type=int, metavar=("W", "A", "K"),
                      help="explain the best plan: port and P bit maps, fields, depth, correction")
    what.add_argument("--synth", nargs=3, type=int, metavar=("W", "A", "K"),
                      help="synthesise the plan's packed core (mixq_hw.packing.synth) and print DSP48E2/LUT/FF")
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    parser.add_argument("--single", action="store_true",
                        help="only one-multiply layouts (plan()), no digit splits")
    parser.add_argument("--cost", action="store_true",
                        help="with --table: the figure the search's cost model uses (the densest plan the conv "
                             "engine builds) next to the densest plan of any kind")
    parser.add_argument("--signed", action="store_true",
                        help="signed two's-complement activation codes (after a LeakyReLU or a residual add) "
                             "instead of unsigned ones")
    parser.add_argument("--k", nargs="+", type=int, default=None, metavar="K",
                        help=f"kernel sizes for --table (default: {' '.join(map(str, KERNEL_SIZES))})")
    return parser


def _grid(rows: list[dict], k: int, title: str, cell, width: int) -> list[str]:
    by = {(r["w"], r["a"]): r for r in rows if r["k"] == k}
    out = [f"k={k}: {title} (rows: weight bits, columns: activation bits)",
           "  w\\a " + "".join(f"{a:>{width}}" for a in BIT_WIDTHS)]
    for w in BIT_WIDTHS:
        out.append(f"  {w:>3} " + "".join(f"{cell(by[(w, a)]):>{width}}" for a in BIT_WIDTHS))
    return out


def _layout(r: dict) -> str:
    split = "m:" if r.get("mixed") else f"{r['split'][0]}:" if r.get("split") else ""
    return (f"{split}{r['kind'][0].upper()}{r['n_weights']}x{r['n_acts']}/{r['depth']}"
            + ("s" if r["act_sign_bit"] else ""))


def _table(ks: Sequence[int], as_json: bool, single: bool = False, signed_act: bool = False) -> str:
    rows = density_table(ks, split=not single, signed_act=signed_act)
    if as_json:
        return json.dumps(rows, indent=1)
    out: list[str] = []
    what = "exact MACs per DSP48E2 per cycle" + (", signed activation codes" if signed_act else "")
    for k in ks:
        out += _grid(rows, k, what + " (t: table only, a mixed-rate split the conv engine does not build; the "
                              "search prices that entry at the engine's figure, --cost)",
                     lambda r: f"{r['macs_per_dsp']:.3g}" + ("" if r["engine_builds"] else "t"), 7)
        out += _grid(rows, k, "layout: K(ernel)/F(ilter) weights x activations / accumulation depth "
                              "(s: activation word in the port's sign bit, corrected through C; w:/a: weight/"
                              "activation digit split on 2 DSPs; m: mixed-rate weight split, low-digit layout)", _layout, 12)
        out.append("")
    return "\n".join(out)


def _cost_table(ks: Sequence[int], as_json: bool, signed_act: bool = False) -> str:
    rows = cost_table(ks, signed_act=signed_act)
    if as_json:
        return json.dumps(rows, indent=1)
    out: list[str] = []
    for k in ks:
        signed = ", signed activation codes" if signed_act else ""
        out += _grid(rows, k, "MACs per DSP48E2 the search's cost model uses (mixq_nn.cost), the densest plan "
                              "the conv engine builds (s: a digit split; *: denser than the best single layout"
                              + signed + ")",
                     lambda r: ("s" if r["engine_plan"] == "split" else "") + f"{r['cost_macs_per_dsp']:.3g}"
                     + ("*" if r["cost_macs_per_dsp"] != r["single_macs_per_dsp"] else ""), 8)
        out += _grid(rows, k, "MACs per DSP48E2 of the densest plan of any kind (t: a table-only mixed-rate split, "
                              "denser than what the engine builds)",
                     lambda r: f"{r['best_macs_per_dsp']:.3g}" + ("t" if r["best_plan"] == "mixed" else ""), 8)
        out.append("")
    return "\n".join(out)


def _synth(w: int, a: int, k: int, as_json: bool, single: bool = False, signed_act: bool = False) -> str:
    # validate the arguments before the slow part
    chosen = plan(w, a, k, signed_act=signed_act) if single else best_plan(w, a, k, signed_act=signed_act)
    from . import synth                               # written separately; imported only when asked for
    result = synth.synth_core(w, a, k, plan=chosen)
    if as_json:
        return json.dumps(result, indent=1)
    return "\n".join(f"{key}: {value}" for key, value in result.items())


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status (2 for bad arguments, with the reason on stderr)."""
    args = _parser().parse_args(argv)
    try:
        if not args.table:
            validate.unused_options({"--k": args.k is not None},
                                    f"to {'--plan' if args.plan else '--synth'} (its third number is the kernel size)")
        if args.table:
            ks = list(KERNEL_SIZES) if args.k is None else args.k
            for k in ks:
                if k not in KERNEL_SIZES:
                    raise ValueError(f"--k {k}: kernel size not in {KERNEL_SIZES}")
            print(_cost_table(ks, args.json, args.signed) if args.cost
                  else _table(ks, args.json, args.single, args.signed))
        elif args.cost:
            raise ValueError("--cost goes with --table")
        elif args.plan:
            p = (plan(*args.plan, signed_act=args.signed) if args.single
                 else best_plan(*args.plan, signed_act=args.signed))
            print(json.dumps(p.to_dict(), indent=1) if args.json else explain(p))
        else:
            w, a, k = args.synth
            print(_synth(w, a, k, args.json, args.single, args.signed))
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except ImportError as err:
        print(f"error: --synth needs mixq_hw.packing.synth ({err})", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
