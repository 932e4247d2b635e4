"""λ̂ joined with the phases over training: ``phases(..., llc=)`` and ``phases --llc``."""

from __future__ import annotations

import io
import json

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from toyanalysis import testing
from toyanalysis.errors import ConfigError
from toyanalysis.phase_changes import phase_records, phase_text, phases
from toyanalysis.store import open_store, save_analysis, write_store

# step -> (λ̂, its se, unreliable): steps 200-600 lie in the first phase (mean 2), 1200-1600
# in the second (mean 6); step 800 is unreliable (masked) and step 50 is no step of the store.
ESTIMATES = {
    50: (50.0, 0.1, False),
    200: (1.0, 0.3, False),
    400: (2.0, 0.3, False),
    600: (3.0, 0.3, False),
    800: (100.0, 0.3, True),
    1200: (5.0, 0.4, False),
    1600: (7.0, 0.4, False),
}
FIRST_SE = np.sqrt(3 * 0.3**2) / 3
SECOND_SE = np.sqrt(2 * 0.4**2) / 2


@pytest.fixture
def forced_store(tmp_path):
    """n=4, m=2: two digons for 10 records, then a triangle + 1 unlearned; loss drops 5x."""
    rng = np.random.default_rng(0)
    square, triangle = testing.tegum("digon", "digon"), testing.tegum("triangle", dead=1)
    W = np.stack([testing.rotate(square if t < 10 else triangle, rng) for t in range(20)])[:, None]
    loss = np.where(np.arange(20) < 10, 1e-2, 2e-3)[:, None]
    path = tmp_path / "forced.zarr"
    write_store(path, testing.as_dataset(W, steps=np.arange(20) * 100, loss=loss, seed=[3]))
    return path


def llc_result(instance) -> xr.Dataset:
    """An llc result built by hand with the known values of ``ESTIMATES``."""
    steps = np.array(list(ESTIMATES), dtype=np.int64)
    value, se, unreliable = (np.array([[v[k]] for v in ESTIMATES.values()]) for k in range(3))
    return xr.Dataset(
        {
            "llc": (("step", "instance"), value),
            "llc_se": (("step", "instance"), se),
            "unreliable": (("step", "instance"), unreliable.astype(bool)),
        },
        coords={"step": steps, "instance": [instance]},
        attrs={"analysis": "llc", "params": "{}"},
    )


@pytest.fixture
def saved_store(forced_store):
    instance = open_store(forced_store)["instance"].values[0]
    save_analysis(forced_store, llc_result(instance), "llc")
    return forced_store


def test_phases_joins_llc_per_phase_and_transition(forced_store):
    ds = open_store(forced_store)
    result = phases(ds, llc=llc_result(ds["instance"].values[0]))
    assert result.attrs["llc_joined"] is True
    np.testing.assert_allclose(result["phase_llc"].values, [2.0, 6.0])
    np.testing.assert_allclose(result["phase_llc_se"].values, [FIRST_SE, SECOND_SE])
    assert result["phase_llc_records"].values.tolist() == [3, 2]
    np.testing.assert_allclose(result["delta_llc"].values, [4.0])
    np.testing.assert_allclose(result["delta_llc_se"].values, [np.hypot(FIRST_SE, SECOND_SE)])
    np.testing.assert_allclose(result["llc_before"].values, [2.0])
    np.testing.assert_allclose(result["llc_after"].values, [6.0])
    record = phase_records(result)[0]
    assert [p["llc"] for p in record["phases"]] == pytest.approx([2.0, 6.0])
    assert record["transitions"][0]["delta_llc"] == pytest.approx(4.0)
    assert "delta_llc" in phase_text(result)


def test_phases_reads_the_saved_llc(saved_store):
    ds = open_store(saved_store)
    joined = phases(ds, llc=True)
    assert joined["delta_llc"].values == pytest.approx([4.0])
    assert phases(ds, llc="saved")["phase_llc"].values == pytest.approx([2.0, 6.0])
    plain = phases(ds)
    assert "phase_llc" not in plain and "llc_joined" not in plain.attrs


def test_phases_llc_true_without_a_saved_result_says_how(forced_store):
    with pytest.raises(ConfigError, match="--save"):
        phases(open_store(forced_store), llc=True)


def test_phases_command_json_with_llc(cli, saved_store):
    result = cli("phases", saved_store, "--llc", "--format", "json")
    assert result.exit_code == 0, result.stderr
    record = json.loads(result.stdout)["instances"][0]
    assert [p["llc"] for p in record["phases"]] == pytest.approx([2.0, 6.0])
    assert [p["llc_se"] for p in record["phases"]] == pytest.approx([FIRST_SE, SECOND_SE])
    transition = record["transitions"][0]
    assert transition["delta_llc"] == pytest.approx(4.0)
    assert transition["delta_llc_se"] == pytest.approx(np.hypot(FIRST_SE, SECOND_SE))
    assert (transition["llc_before"], transition["llc_after"]) == pytest.approx((2.0, 6.0))


def test_phases_command_csv_and_text_with_llc(cli, saved_store):
    csv = cli("phases", saved_store, "--llc", "--format", "csv")
    assert csv.exit_code == 0, csv.stderr
    frame = pd.read_csv(io.StringIO(csv.stdout))
    assert list(frame.columns[-6:]) == [
        "llc",
        "llc_se",
        "llc_before",
        "llc_after",
        "delta_llc",
        "delta_llc_se",
    ]
    assert frame.loc[frame.event == "phase", "llc"].tolist() == pytest.approx([2.0, 6.0])
    assert frame.loc[frame.event == "transition", "delta_llc"].tolist() == pytest.approx([4.0])
    text = cli("phases", saved_store, "--llc")
    assert text.exit_code == 0, text.stderr
    assert "delta_llc" in text.stdout and "llc_se" in text.stdout


def test_phases_command_llc_without_a_saved_result(cli, forced_store):
    result = cli("phases", forced_store, "--llc")
    assert result.exit_code == 1
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and f"toyanalysis llc {forced_store} --save" in lines[0]


@pytest.mark.parametrize("fmt", ["json", "csv", "table"])
def test_phases_command_without_llc_is_unchanged(cli, forced_store, fmt):
    """Without --llc a saved llc result is not joined: the output is byte for byte the same."""
    before = cli("phases", forced_store, "--format", fmt)
    assert before.exit_code == 0, before.stderr
    instance = open_store(forced_store)["instance"].values[0]
    save_analysis(forced_store, llc_result(instance), "llc")
    after = cli("phases", forced_store, "--format", fmt)
    assert after.exit_code == 0, after.stderr
    assert after.stdout == before.stdout
    assert "llc" not in after.stdout


def test_a_phase_without_reliable_estimates_has_null_llc(forced_store):
    ds = open_store(forced_store)
    first = llc_result(ds["instance"].values[0]).sel(step=[200, 400, 600, 800])
    result = phases(ds, llc=first)
    assert result["phase_llc"].values[0] == pytest.approx(2.0)
    assert np.isnan(result["phase_llc"].values[1]) and result["phase_llc_records"].values[1] == 0
    transition = phase_records(result)[0]["transitions"][0]
    assert transition["delta_llc"] is None and transition["llc_after"] is None


def test_bad_llc_arguments_are_refused(forced_store):
    ds = open_store(forced_store)
    with pytest.raises(ConfigError, match="llc="):
        phases(ds, llc="yes")
    with pytest.raises(ConfigError, match="no step and instance"):
        phases(ds, llc=llc_result(ds["instance"].values[0]).sel(step=[50]))
