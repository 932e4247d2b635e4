"""An llc result as JSON records and as a tidy table."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from toyanalysis._labels import instance_coords, json_number, json_scalar

if TYPE_CHECKING:
    import pandas as pd
    import xarray as xr

__all__ = ["llc_frame", "llc_records"]


def _rows(result: xr.Dataset) -> list[dict[str, Any]]:
    coords = instance_coords(result)
    kept = (~result["divergent"]).sum("chain").transpose("step", "instance").values
    names = ("llc", "llc_se", "init_loss", "n_divergent", "unreliable")
    values = {n: result[n].transpose("step", "instance").values for n in names}
    rows = []
    for s, step in enumerate(result["step"].values.tolist()):
        for i, instance in enumerate(result["instance"].values.tolist()):
            rows.append(
                {
                    "step": step,
                    "instance": json_scalar(instance),
                    **{k: json_scalar(v[i]) for k, v in coords.items()},
                    "llc": json_number(values["llc"][s, i]),
                    "llc_se": json_number(values["llc_se"][s, i]),
                    "init_loss": json_number(values["init_loss"][s, i]),
                    "chains_kept": int(kept[s, i]),
                    "n_divergent": int(values["n_divergent"][s, i]),
                    "unreliable": bool(values["unreliable"][s, i]),
                }
            )
    return rows


def llc_records(result: xr.Dataset) -> dict[str, Any]:
    """The JSON document of an llc result (schema in ``docs/llc.md``)."""
    import json

    return {
        "params": json.loads(result.attrs["params"]),
        "nbeta": json_number(result.attrs["nbeta"]),
        "model": result.attrs.get("model", ""),
        "estimates": _rows(result),
    }


def llc_frame(result: xr.Dataset) -> pd.DataFrame:
    """One row per (step, instance): λ̂, its standard error, L(w*) and the diagnostics."""
    import pandas as pd

    return pd.DataFrame(_rows(result))
