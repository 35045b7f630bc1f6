"""``python -m mixq_nn.models``: the model zoo, one row per model (input shape, parameters, MACs/frame)."""

from __future__ import annotations

import argparse
import json
import sys

from . import MODELS, build, macs


def zoo_rows(names: list[str] | None = None) -> list[dict]:
    """One dict per model at its published input size (counted on the float variant)."""
    rows = []
    for name in names or list(MODELS):
        info = MODELS[name]
        model = build(name, "float")
        rows.append({
            "name": name, "input_shape": list(info.input_shape), "task": info.task,
            "params": sum(p.numel() for p in model.parameters()),
            "macs": macs(model, info.input_shape), "num_qlayers": info.num_qlayers,
            "default_bitw": "".join(map(str, info.default_bitw)),
            "default_bita": "".join(map(str, info.default_bita)),
        })
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m mixq_nn.models",
        description="List mixq's model zoo: input shape (C, H, W), parameter count and MACs per frame "
                    "at the published input size, number of searchable quantised layers and the "
                    "preset bit widths.")
    parser.add_argument("--json", action="store_true",
                        help="print a JSON list of objects (keys name, input_shape, params, macs, ...)")
    parser.add_argument("--model", action="append", choices=list(MODELS), metavar="NAME",
                        help=f"only this model (repeatable); one of {', '.join(MODELS)}")
    args = parser.parse_args(argv)
    rows = zoo_rows(args.model)
    if args.json:
        json.dump(rows, sys.stdout, indent=2)
        print()
        return 0
    width = max(16, 2 + max(len(r["name"]) for r in rows))
    header = f"{'model':<{width}}{'task':<10}{'input (C,H,W)':<16}{'params':>11}{'MACs/frame':>15}  {'qlayers':>7}  preset bitw/bita"
    print(header)
    print("-" * len(header))
    for r in rows:
        shape = "x".join(map(str, r["input_shape"]))
        print(f"{r['name']:<{width}}{r['task']:<10}{shape:<16}{r['params']:>11,}{r['macs']:>15,}  "
              f"{r['num_qlayers']:>7}  {r['default_bitw']}/{r['default_bita']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
