"""``examples/dask_digits.py`` runs end to end as a user would run it (reduced settings): it trains
on a LocalCluster it starts, prints the dashboard's address, and predicts an enlarged data set,
stored as zarr, larger than a worker's memory limit.

Skipped, with the reason, where the ``dask`` extra or scikit-learn is not installed.
"""

from __future__ import annotations

import re

import pytest

pytest.importorskip("distributed", reason="the dask extra is not installed: pip install -e '.[dask]'")
pytest.importorskip("zarr", reason="the dask extra is not installed: pip install -e '.[dask]'")
pytest.importorskip("sklearn", reason="the examples need scikit-learn: pip install -e '.[examples]'")

from test_examples import run_example


def test_help_explains_the_cluster_options():
    output = run_example("dask_digits.py", "--help")
    for option in ("--scheduler", "--workers", "--memory-limit", "--rows", "--epochs", "--out"):
        assert option in output


@pytest.mark.slow
def test_dask_digits_trains_on_a_cluster_and_predicts_out_of_core(tmp_path):
    output = run_example(
        "dask_digits.py", "--epochs", "4", "--rows", "600000", "--memory-limit", "256MiB", "--out", str(tmp_path)
    )
    assert re.search(r"Dask dashboard: http://\S+ +\(2 workers\)", output)
    assert float(re.search(r"test accuracy after 4 epochs: ([0-9.]+)", output).group(1)) > 0.8
    assert "does not fit in one worker's memory limit (256 MiB)" in output
    assert float(re.search(r"accuracy on the 600000 enlarged digits[^:]*: ([0-9.]+)", output).group(1)) > 0.8
    assert (tmp_path / "predictions.zarr").is_dir()
