"""The LSTM captioning example runs end to end with reduced settings and writes its pictures; at
full length it captions at least 95% of the test images exactly (marked slow: CI runs it too)."""

from __future__ import annotations

import re

import pytest
from test_examples import run_example

pytest.importorskip("sklearn")
pytest.importorskip("matplotlib")


def captioned(output: str) -> float:
    return float(re.search(r"test images captioned exactly after \d+ epochs: ([0-9.]+)", output).group(1))


def test_lstm_captions_runs_and_writes_its_pictures(tmp_path):
    output = run_example("lstm_captions.py", "--epochs", "2", "--out", str(tmp_path))
    assert "epoch   2" in output
    assert captioned(output) > 0.6
    assert re.search(r"test image 0: a \d, captioned '[a-z]*'", output)
    for picture in ("training.png", "captions.png"):
        assert (tmp_path / picture).read_bytes().startswith(b"\x89PNG")


def test_lstm_captions_help_explains_the_options():
    output = run_example("lstm_captions.py", "--help")
    for option in ("--epochs", "--seed", "--out", "--float32"):
        assert option in output


@pytest.mark.slow
def test_lstm_captions_reaches_its_accuracy_at_full_length(tmp_path):
    assert captioned(run_example("lstm_captions.py", "--out", str(tmp_path), timeout=900)) >= 0.95
