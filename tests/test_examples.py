"""Each example runs end to end as a user would run it (reduced settings), and writes its files;
the main job, at full length, reaches its accuracy (marked slow: CI runs it too)."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
pytest.importorskip("sklearn")
pytest.importorskip("matplotlib")


def run_example(script: str, *arguments: str, timeout: float = 300) -> str:
    result = subprocess.run(
        [sys.executable, os.path.join(ROOT, "examples", script), *arguments],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "TQDM_DISABLE": "1"},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


def accuracy(output: str, label: str = "test accuracy after") -> float:
    return float(re.search(rf"{label} [^:]*: ([0-9.]+)", output).group(1))


@pytest.mark.parametrize("script", ["mlp_dropout_digits.py", "cnn_digits.py", "logistic_regression.py", "visualize.py"])
def test_help_explains_the_options(script):
    output = run_example(script, "--help")
    for option in ("--out",) + (("--epochs", "--seed", "--float32") if script != "visualize.py" else ()):
        assert option in output


def test_mlp_dropout_digits_runs_and_writes_its_pictures(tmp_path):
    output = run_example(
        "mlp_dropout_digits.py", "--epochs", "3", "--study-epochs", "3", "--study-seeds", "2", "--out", str(tmp_path)
    )
    assert "epoch   3" in output
    assert accuracy(output) > 0.8
    assert "dropout" in output and "no dropout" in output and "+-" in output
    assert (tmp_path / "training.png").read_bytes().startswith(b"\x89PNG")
    for picture in ("train_graph.svg", "predict_graph.svg"):
        svg = (tmp_path / picture).read_text()
        assert svg.lstrip().startswith(("<?xml", "<svg"))
    # The train function's picture shows dropout; the predict function's holds none.
    assert "bernoulli" in (tmp_path / "train_graph.svg").read_text()
    assert "bernoulli" not in (tmp_path / "predict_graph.svg").read_text()


def test_mlp_dropout_digits_in_float32(tmp_path):
    output = run_example(
        "mlp_dropout_digits.py",
        "--float32",
        "--epochs",
        "2",
        "--study-epochs",
        "1",
        "--study-seeds",
        "1",
        "--out",
        str(tmp_path),
    )
    assert "float32" in output and accuracy(output) > 0.7


def test_cnn_digits_runs_and_writes_its_pictures(tmp_path):
    output = run_example("cnn_digits.py", "--epochs", "2", "--out", str(tmp_path))
    assert accuracy(output) > 0.8
    assert (tmp_path / "training.png").read_bytes().startswith(b"\x89PNG")
    assert "batch_norm" in (tmp_path / "train_graph.svg").read_text()


def test_logistic_regression_learns(tmp_path):
    output = run_example("logistic_regression.py", "--epochs", "100", "--out", str(tmp_path))
    assert float(re.search(r"test accuracy ([0-9.]+)", output).group(1)) > 0.9
    assert (tmp_path / "predict_graph.svg").exists()


def test_visualize_writes_every_picture(tmp_path):
    run_example("visualize.py", "--out", str(tmp_path))
    pictures = sorted(path.name for path in tmp_path.iterdir() if path.suffix in (".svg", ".png", ".pdf"))
    assert len(pictures) >= 5, pictures


@pytest.mark.slow
def test_main_job_reaches_its_accuracy_at_full_length(tmp_path):
    output = run_example("mlp_dropout_digits.py", "--study-seeds", "1", "--study-epochs", "1", "--out", str(tmp_path))
    assert accuracy(output) >= 0.975


@pytest.mark.slow
def test_cnn_reaches_its_accuracy_at_full_length(tmp_path):
    output = run_example("cnn_digits.py", "--out", str(tmp_path))
    assert accuracy(output) >= 0.98


def test_serve_loads_a_trained_model_in_a_fresh_process(tmp_path):
    run_example("cnn_digits.py", "--epochs", "1", "--out", str(tmp_path))
    output = run_example("serve.py", str(tmp_path / "model.sg"))
    assert accuracy(output, "test accuracy of") > 0.8
    try:
        import onnx  # noqa: F401
        import onnxruntime  # noqa: F401
    except ImportError:
        assert "ONNX export skipped" in output
    else:
        assert (tmp_path / "model.onnx").exists() and "agree with symgraph's to" in output
