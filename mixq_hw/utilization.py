"""How full the PL is: the accelerator's estimate plus the board's shell, against the device and the target.

The folding fits the accelerator into ``utilization x device - shell``
(:func:`~mixq_hw.folding.budget.accelerator_limit`); this module states the result for the report
and warns when the whole PL (shell included) is above :data:`WARN_ABOVE` of any resource, where
placement and routing start to fail timing.
"""

from __future__ import annotations

from .estimate import Resources

__all__ = ["DEFAULT_UTILIZATION", "WARN_ABOVE", "utilization_table", "utilization_warnings"]

#: The default share of each PL resource the design (shell included) may use: the usual target for closing
#: timing at 300 MHz on a full device.
DEFAULT_UTILIZATION = 0.85
#: A warning is given when the shell and the accelerator together use more than this share of a resource.
WARN_ABOVE = 0.90

_NAMES = {"dsp": "DSP", "lut": "LUT", "ff": "FF", "bram36": "BRAM36"}


def utilization_table(accelerator: Resources, shell: Resources, device: Resources, target: float) -> dict:
    """Per resource: the accelerator's estimate, the shell's reserve, their total and its share of
    ``device``; the ``target`` share the folding aimed at, and the warnings (:func:`utilization_warnings`)."""
    rows = {}
    for key in _NAMES:
        acc, sh, dev = getattr(accelerator, key), getattr(shell, key), getattr(device, key)
        total = acc + sh
        rows[key] = {"accelerator": acc, "shell": sh, "total": total, "device": dev,
                     "share": round(total / dev, 4) if dev else None}
    table = {"target": target, "warn_above": WARN_ABOVE, "resources": rows,
             "estimates": "accelerator: mixq's per-layer estimates; shell: boards.shell (product-guide based)"}
    table["warnings"] = utilization_warnings(table)
    return table


def utilization_warnings(table: dict) -> list[str]:
    """One message per resource whose total share is above :data:`WARN_ABOVE`."""
    out = []
    for key, row in table["resources"].items():
        share = row["share"]
        if share is not None and share > WARN_ABOVE:
            out.append(f"{_NAMES[key]} {row['total']:,g} of {row['device']:,g} ({100 * share:.1f} %, shell "
                       f"{row['shell']:,g} included) is above {100 * WARN_ABOVE:g} % of the device: placement "
                       f"and routing may fail timing (fold with a lower --utilization)")
    return out
