"""One training step of an LSTM, and the per-step overhead of ``sg.scan``.

The step (forward, loss, back-propagation through time, SGD) of an LSTM over T=50 steps, batch
32, input 64, hidden 256, float32, with a linear layer and softmax cross-entropy on every step:
symgraph (one ``sg.scan``, its gradient by ``sg.grad``) against the hand-written numpy LSTM of
``../shared/reference/numpy_lstm.py`` (forward and backward by hand) in the same process, and
against PyTorch's eager ``nn.LSTM`` (fused kernels) in a process of its own, so that the BLAS
thread pools do not fight; the three alternate round by round. All three start from the same
weights: the script first checks that they compute the same loss and gradients.

Then the per-step overhead: a cumulative sum over 10,000 scalar steps with ``sg.scan`` against a
plain Python loop doing the same with numpy scalars.

Run: env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/lstm_step.py [--rounds 7]

On a busy machine, multi-threaded BLAS makes wall-clock times meaningless (threads spin while
others run); ``OPENBLAS_NUM_THREADS=1 ... --cpu-time`` then compares symgraph with the numpy
reference by the CPU time of this process, which the load barely changes (PyTorch is left out:
its thread pool's CPU time is no measure of its speed).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time

import numpy as np
from _timing import compare, format_time, machine, per_call

import symgraph as sg

REFERENCE_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "shared", "reference")
T, N, D, H, V = 50, 32, 64, 256, 64
LEARNING_RATE = 0.1
NAMES = ("Wx", "Wh", "b", "h0", "Wout", "bout")


def reference_module():
    sys.path.insert(0, REFERENCE_DIR)
    try:
        import numpy_lstm
    except ImportError:
        return None
    return numpy_lstm


def starting_point() -> tuple[dict, np.ndarray, np.ndarray]:
    """The weights (the reference's initialization, or the same recipe) and one batch."""
    reference = reference_module()
    if reference is not None:
        params = reference.init_params(D, H, V, N, "float32", seed=0)
    else:
        rng = np.random.default_rng(0)
        params = {
            "Wx": (rng.standard_normal((D, 4 * H)) / np.sqrt(D)).astype("float32"),
            "Wh": (rng.standard_normal((H, 4 * H)) / np.sqrt(H)).astype("float32"),
            "b": np.zeros(4 * H, "float32"),
            "h0": (0.1 * rng.standard_normal((N, H))).astype("float32"),
            "Wout": (rng.standard_normal((H, V)) / np.sqrt(H)).astype("float32"),
            "bout": np.zeros(V, "float32"),
        }
    rng = np.random.default_rng(1)
    x = rng.standard_normal((T, N, D)).astype("float32")
    y = rng.integers(0, V, (T, N)).astype("int32")
    return params, x, y


# --- symgraph ---------------------------------------------------------------------------------------
def symgraph_functions(params: dict):
    """The train step, and a function giving the loss and the gradients (for the check)."""
    shared = {name: sg.shared(value.copy(), name=name) for name, value in params.items()}
    Wx, Wh, b, h0, Wout, bout = (shared[name] for name in NAMES)
    x = sg.tensor3("x", dtype="float32", shape=(None, N, D))
    y = sg.imatrix("y")
    steps = x.shape[0]
    # The input projection of every step at once, as the reference does: one large product.
    projected = (sg.dot(x.reshape((steps * N, D)), Wx) + b).reshape((steps, N, 4 * H))

    def step(projected_t, h, c):
        a = projected_t + sg.dot(h, Wh)
        ifo = sg.nn.sigmoid(a[:, : 3 * H])  # gates i, f, o, g as in the reference
        c_new = ifo[:, H : 2 * H] * c + ifo[:, :H] * sg.tanh(a[:, 3 * H :])
        return ifo[:, 2 * H :] * sg.tanh(c_new), c_new

    (hs, _), _ = sg.scan(step, sequences=projected, outputs_info=[h0, sg.zeros_like(h0)], name="lstm")
    logits = sg.dot(hs.reshape((steps * N, H)), Wout) + bout
    loss = sg.nn.categorical_crossentropy(sg.nn.softmax(logits), y.flatten()).mean()
    parameters = [shared[name] for name in NAMES]
    gradients = sg.grad(loss, parameters)
    train = sg.function([x, y], loss, updates=sg.optim.sgd(loss, parameters, LEARNING_RATE))
    check = sg.function([x, y], [loss, *gradients])
    return train, check


# --- PyTorch, in a process of its own ---------------------------------------------------------------
def torch_worker() -> None:
    """Reads commands on stdin: ``check PATH`` writes the loss and gradients to PATH (.npz);
    ``time SECONDS`` prints the seconds per train step, timed for about SECONDS."""
    import torch

    torch.set_num_threads(os.cpu_count() or 1)
    params, x, y = starting_point()

    def gates_to_torch(array: np.ndarray) -> np.ndarray:  # the reference's (i, f, o, g) -> torch's (i, f, g, o)
        i, f, o, g = np.split(array, 4, axis=-1)
        return np.concatenate([i, f, g, o], axis=-1)

    lstm = torch.nn.LSTM(D, H)
    with torch.no_grad():
        lstm.weight_ih_l0.copy_(torch.tensor(gates_to_torch(params["Wx"]).T))
        lstm.weight_hh_l0.copy_(torch.tensor(gates_to_torch(params["Wh"]).T))
        lstm.bias_ih_l0.copy_(torch.tensor(gates_to_torch(params["b"])))
        lstm.bias_hh_l0.zero_()
    lstm.bias_hh_l0.requires_grad_(False)  # one bias, as the reference has: torch adds the two
    h0 = torch.tensor(params["h0"][None], requires_grad=True)
    Wout = torch.tensor(params["Wout"], requires_grad=True)
    bout = torch.tensor(params["bout"], requires_grad=True)
    tensors = [lstm.weight_ih_l0, lstm.weight_hh_l0, lstm.bias_ih_l0, h0, Wout, bout]
    xt, yt = torch.tensor(x), torch.tensor(y.astype("int64")).reshape(-1)

    def loss_and_backward() -> torch.Tensor:
        for tensor in tensors:
            tensor.grad = None
        out, _ = lstm(xt, (h0, torch.zeros_like(h0)))
        loss = torch.nn.functional.cross_entropy((out.reshape(-1, H) @ Wout) + bout, yt)
        loss.backward()
        return loss

    def train_step() -> None:
        loss_and_backward()
        with torch.no_grad():
            for tensor in tensors:
                tensor -= LEARNING_RATE * tensor.grad

    def untorch(array: np.ndarray) -> np.ndarray:  # torch's (i, f, g, o) -> the reference's (i, f, o, g)
        i, f, g, o = np.split(array, 4, axis=-1)
        return np.concatenate([i, f, o, g], axis=-1)

    for line in sys.stdin:
        command, argument = line.split()
        if command == "check":
            loss = loss_and_backward()
            np.savez(
                argument,
                loss=loss.item(),
                Wx=untorch(lstm.weight_ih_l0.grad.numpy().T),
                Wh=untorch(lstm.weight_hh_l0.grad.numpy().T),
                b=untorch(lstm.bias_ih_l0.grad.numpy()),
                h0=h0.grad.numpy()[0],
                Wout=Wout.grad.numpy(),
                bout=bout.grad.numpy(),
            )
            print("ok", flush=True)
        elif command == "time":
            print(per_call(train_step, float(argument)), flush=True)


class TorchProcess:
    """PyTorch's side, in its own process (``None`` methods' results when torch is missing)."""

    def __init__(self) -> None:
        self.process = subprocess.Popen(
            [sys.executable, os.path.abspath(__file__), "--torch-worker"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )

    def ask(self, command: str) -> str:
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.write(command + "\n")
        self.process.stdin.flush()
        return self.process.stdout.readline().strip()

    def close(self) -> None:
        if self.process.stdin is not None:
            self.process.stdin.close()
        self.process.wait()


def check_agreement(check, reference, params: dict, x: np.ndarray, y: np.ndarray, torch_side) -> None:
    """The loss and every gradient of symgraph against the reference's and PyTorch's."""
    ours = dict(zip(("loss", *NAMES), check(x, y)))
    others = {}
    if reference is not None:
        loss, grads = reference.loss_and_grads({k: v.copy() for k, v in params.items()}, x, y)
        others["numpy reference"] = {"loss": loss, **grads}
    if torch_side is not None:
        with tempfile.TemporaryDirectory() as folder:
            path = os.path.join(folder, "torch.npz")
            torch_side.ask(f"check {path}")
            with np.load(path) as saved:
                others["pytorch"] = {key: saved[key] for key in saved.files}
    print("same start, same results? (largest difference relative to the largest value)")
    for name, theirs in others.items():
        worst = 0.0
        for key in ("loss", *NAMES):
            mine, other = np.asarray(ours[key], np.float64), np.asarray(theirs[key], np.float64)
            worst = max(worst, float(np.abs(mine - other).max() / max(np.abs(other).max(), 1e-30)))
        print(f"  symgraph vs {name}: loss {float(ours['loss']):.6f} vs {float(theirs['loss']):.6f}; worst {worst:.1e}")
        if worst > 1e-4:
            raise SystemExit(f"symgraph and {name} disagree ({worst:.1e}): the timings would compare different work")


def cpu_per_call(function, seconds: float) -> float:
    """CPU seconds of this process per call of ``function``, over about ``seconds`` of calls."""
    calls, start = 0, time.process_time()
    while time.process_time() - start < seconds or calls < 3:
        function()
        calls += 1
    return (time.process_time() - start) / calls


def step_benchmark(rounds: int, seconds: float, cpu_time: bool) -> None:
    reference = reference_module()
    if reference is None:
        print(f"reference not found at {REFERENCE_DIR}: no numpy column")
    params, x, y = starting_point()
    train, check = symgraph_functions(params)
    timer = cpu_per_call if cpu_time else per_call
    try:
        import torch  # noqa: F401

        torch_side = TorchProcess() if not cpu_time else None
    except ImportError:
        torch_side = None
        print("PyTorch not installed (pip install torch==2.13.0 for the CPU wheel): no PyTorch column")
    try:
        check_agreement(check, reference, params, x, y, torch_side)
        reference_params = {key: value.copy() for key, value in params.items()}
        samples: dict[str, list[float]] = {"symgraph": [], "numpy reference": [], "pytorch eager": []}
        for _ in range(rounds):
            samples["symgraph"].append(timer(lambda: train(x, y), seconds))
            if reference is not None:
                samples["numpy reference"].append(
                    timer(lambda: reference.sgd_step(reference_params, x, y, LEARNING_RATE), seconds)
                )
            if torch_side is not None:
                samples["pytorch eager"].append(float(torch_side.ask(f"time {seconds}")))
    finally:
        if torch_side is not None:
            torch_side.close()
    times = {name: float(np.median(values)) for name, values in samples.items() if values}
    clock = "CPU time of this process" if cpu_time else "wall clock"
    threads = os.environ.get("OPENBLAS_NUM_THREADS", "default")
    print(f"\nLSTM train step, T={T}, batch {N}, input {D}, hidden {H}, {V} classes, float32")
    print(f"({rounds} rounds, medians, {clock}, BLAS threads: {threads}):")
    for name, value in times.items():
        ratio = f"{times['symgraph'] / value:.2f}x" if name != "symgraph" else ""
        spread = f"{format_time(min(samples[name]))}-{format_time(max(samples[name]))}"
        print(f"  {name:16s} {format_time(value):>10s}  ({spread})   symgraph / this: {ratio}")


def overhead_benchmark(rounds: int, seconds: float) -> None:
    x = sg.vector("x")
    sums, _ = sg.scan(lambda x_t, total: total + x_t, sequences=x, outputs_info=sg.constant(0.0))
    cumulative = sg.function([x], sums)
    values = np.random.default_rng(0).random(10_000)

    def python_loop(values: np.ndarray) -> np.ndarray:
        total, out = np.float64(0.0), np.empty(len(values))
        for t in range(len(values)):
            total = total + values[t]
            out[t] = total
        return out

    np.testing.assert_allclose(cumulative(values), python_loop(values))
    times = compare(
        {"sg.scan": lambda: cumulative(values), "python loop": lambda: python_loop(values)}, rounds, seconds
    )
    ratio = times["sg.scan"] / times["python loop"]
    print("\ncumulative sum over 10,000 scalar steps:")
    print(f"  sg.scan      {format_time(times['sg.scan']):>10s}   ({times['sg.scan'] / 1e4 * 1e9:.0f} ns per step)")
    print(f"  python loop  {format_time(times['python loop']):>10s}   sg.scan / python loop: {ratio:.2f}x")


def main() -> None:
    arguments = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    arguments.add_argument("--rounds", type=int, default=7, help="alternating rounds of timing (default 7)")
    arguments.add_argument("--seconds", type=float, default=0.5, help="about how long each timing lasts (default 0.5)")
    arguments.add_argument(
        "--cpu-time", action="store_true", help="time by this process's CPU time (for a busy machine; no PyTorch)"
    )
    arguments.add_argument("--torch-worker", action="store_true", help=argparse.SUPPRESS)
    options = arguments.parse_args()
    if options.torch_worker:
        torch_worker()
        return
    print(machine())
    print(f"load average: {', '.join(f'{value:.2f}' for value in os.getloadavg())}")
    started = time.perf_counter()
    step_benchmark(options.rounds, options.seconds, options.cpu_time)
    overhead_benchmark(options.rounds, min(options.seconds, 0.2))
    print(f"\n({time.perf_counter() - started:.0f} s; load average then {os.getloadavg()[0]:.2f})")


if __name__ == "__main__":
    main()
