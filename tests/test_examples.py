"""Each example runs end to end as a user would run it (reduced settings), and writes its files;
the main job, at full length, reaches its accuracy (marked slow: CI runs it too).

The examples are found next to this folder (``../examples``, with ``../README.md`` which lists
them); when they are not there (the tests copied without them), these tests are skipped."""

from __future__ import annotations

import importlib
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

import symgraph as sg

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
if not EXAMPLES.is_dir() or not (ROOT / "README.md").is_file():
    pytest.skip(f"no examples and README.md in {ROOT}: these tests run the examples", allow_module_level=True)
pytest.importorskip("sklearn")
pytest.importorskip("matplotlib")


def run_example(script: str, *arguments: str, timeout: float = 300, cwd: str | None = None) -> str:
    result = subprocess.run(
        [sys.executable, str(EXAMPLES / script), *arguments],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=cwd,
        env={**os.environ, "TQDM_DISABLE": "1"},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


def accuracy(output: str, label: str = "test accuracy after") -> float:
    return float(re.search(rf"{label} [^:]*: ([0-9.]+)", output).group(1))


def readme_options() -> dict[str, list[str]]:
    """The options the README's table of examples says each script takes."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("\n## Examples", 1)[1].split("\n## ", 1)[0]
    rows = re.findall(r"^\| `examples/(\w+\.py)` \| ([^|]*) \|", section, re.M)
    return {script: re.findall(r"--[\w-]+", options) for script, options in rows}


def test_the_readme_lists_every_example():
    scripts = {path.name for path in EXAMPLES.glob("*.py") if path.name != "digits.py"}  # digits.py: shared code
    assert set(readme_options()) == scripts


@pytest.mark.parametrize("script", sorted(readme_options()))
def test_each_example_takes_the_options_the_readme_lists(script):
    options = readme_options()[script]
    output = run_example(script, "--help")
    for option in options:
        assert re.search(rf"{option}\b", output), (script, option)
    if "--out" in options:  # every example writes under out/<its name> by default
        assert re.search(rf"default[^)]*\bout/{script[:-3]}\b", output), output


def test_mlp_dropout_digits_runs_and_writes_its_pictures(tmp_path):
    output = run_example("mlp_dropout_digits.py", "--epochs", "3", "--out", str(tmp_path))
    assert "epoch   3" in output
    assert accuracy(output) > 0.8
    assert "no dropout" not in output and "--study" in output  # the quick start leaves the study out
    assert (tmp_path / "training.png").read_bytes().startswith(b"\x89PNG")
    for picture in ("train_graph.svg", "predict_graph.svg"):
        svg = (tmp_path / picture).read_text()
        assert svg.lstrip().startswith(("<?xml", "<svg"))
    # The train function's picture shows dropout; the predict function's holds none.
    assert "bernoulli" in (tmp_path / "train_graph.svg").read_text()
    assert "bernoulli" not in (tmp_path / "predict_graph.svg").read_text()


def test_mlp_dropout_digits_overfitting_study_in_float32(tmp_path):
    output = run_example(
        "mlp_dropout_digits.py",
        "--float32",
        "--epochs",
        "2",
        "--study",
        "--study-epochs",
        "3",
        "--study-seeds",
        "2",
        "--out",
        str(tmp_path),
    )
    assert "float32" in output and accuracy(output) > 0.7
    assert "what dropout does to overfitting" in output
    assert re.search(r"  dropout +: .* \+- ", output) and re.search(r"  no dropout: .* \+- ", output)
    assert (tmp_path / "training.png").read_bytes().startswith(b"\x89PNG")


def test_cnn_digits_runs_and_writes_its_pictures(tmp_path):
    output = run_example("cnn_digits.py", "--epochs", "2", "--out", str(tmp_path))
    assert accuracy(output) > 0.8
    assert (tmp_path / "training.png").read_bytes().startswith(b"\x89PNG")
    # What either renderer (Graphviz or matplotlib) writes: an SVG with the nodes' labels as text.
    train, predict = ((tmp_path / name).read_text() for name in ("train_graph.svg", "predict_graph.svg"))
    assert train.lstrip().startswith(("<?xml", "<svg")) and predict.lstrip().startswith(("<?xml", "<svg"))
    assert "bn1_mean" in train and "bn2_var" in predict
    assert "bernoulli" in train and "bernoulli" not in predict


def test_cnn_digits_train_graph_updates_the_batch_norm_statistics(monkeypatch):
    """The graph the pictures are drawn from: batch normalization's nodes, traced to the user's
    line, and its running statistics updated by the train function only."""
    monkeypatch.syspath_prepend(str(EXAMPLES))
    model = importlib.import_module("cnn_digits").ConvNet(seed=0, dtype="float64")
    statistics = {"bn1_mean", "bn1_var", "bn2_mean", "bn2_var"}
    for function, updated in ((model.train, statistics), (model.predict, set())):
        graph = sg.to_networkx(function)
        assert any("sg.nn.batch_norm(" in data.get("source", "") for _, data in graph.nodes(data=True))
        targets = {graph.nodes[shared]["name"] for _, shared, update in graph.edges(data="update") if update}
        assert targets & statistics == updated


def test_logistic_regression_learns(tmp_path):
    output = run_example("logistic_regression.py", "--epochs", "100", "--out", str(tmp_path))
    assert float(re.search(r"test accuracy ([0-9.]+)", output).group(1)) > 0.9
    assert (tmp_path / "predict_graph.svg").exists()


def test_logistic_regression_in_float32_computes_in_float32(tmp_path):
    run_example("logistic_regression.py", "--float32", "--epochs", "5", "--out", str(tmp_path))
    svg = (tmp_path / "predict_graph.svg").read_text()
    assert "float32" in svg and "float64" not in svg


def test_visualize_writes_every_picture(tmp_path):
    run_example("visualize.py", "--out", str(tmp_path))
    pictures = sorted(path.name for path in tmp_path.iterdir() if path.suffix in (".svg", ".png", ".pdf"))
    assert len(pictures) >= 5, pictures


@pytest.mark.slow
def test_main_job_reaches_its_accuracy_at_full_length(tmp_path):
    output = run_example("mlp_dropout_digits.py", "--out", str(tmp_path))
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
