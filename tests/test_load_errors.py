"""sg.load on files that are wrong: truncated, random, hostile, malformed anywhere. Each gives a
LoadError saying what is wrong: never another exception, never a partial load, never code run or
a module imported. A fuzzer mutates valid files (their bytes, and their JSON fields)."""

from __future__ import annotations

import copy
import io
import json
import os
import sys
import zipfile

import numpy as np
import pytest

import symgraph as sg

# --- a small valid file holding every kind of thing --------------------------------------------------


def _model() -> dict:
    x = sg.vector("x")
    W = sg.shared(np.arange(4.0), name="W")
    stream = sg.RandomStreams(3)
    dropped = sg.nn.dropout(x * W, rate=0.5, rng=stream)
    cost = (dropped**2).sum()
    train = sg.function([x], cost, updates=sg.optim.sgd(cost, [W], 0.1), phase="train", name="train")
    a, b = sg.vector("a"), sg.vector("b")
    subgraph = sg.OpFromGraph([a, b], [a * 2 + sg.exp(b)], name="sub")
    stats = [sg.shared(np.zeros(2), name=n) for n in ("mean", "var")]
    normed = sg.nn.batch_norm(sg.matrix("m"), sg.shared(np.ones(2)), sg.shared(np.zeros(2)), *stats)
    graph = subgraph(x, x)[1:3].sum() + normed.mean() + stream.normal((2,)).sum()
    return {"train": train, "graph": graph, "array": np.arange(3, dtype="int32"), "n": (1, 2.5, None)}


@pytest.fixture(scope="module")
def valid() -> bytes:
    buffer = io.BytesIO()
    sg.save(buffer, _model())
    return buffer.getvalue()


def entries(data: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


def rezip(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, content in files.items():
            archive.writestr(name, content)
    return buffer.getvalue()


def with_document(data: bytes, change) -> bytes:
    files = entries(data)
    document = json.loads(files["symgraph.json"])
    changed = change(document)
    files["symgraph.json"] = json.dumps(document if changed is None else changed).encode()
    return rezip(files)


class Guard:
    """Loads a file and checks that nothing but a LoadError comes out, that no module is imported
    and that ``os.system`` is not called."""

    def __init__(self, monkeypatch):
        self.calls: list = []
        monkeypatch.setattr(os, "system", lambda *args: self.calls.append(args))

    def load(self, data: bytes):
        before = set(sys.modules)
        try:
            return sg.load(io.BytesIO(data))
        finally:
            assert not self.calls, "loading called os.system"
            assert set(sys.modules) == before, f"loading imported {set(sys.modules) - before}"

    def refuses(self, data: bytes, match: str) -> str:
        with pytest.raises(sg.LoadError, match=match) as caught:
            self.load(data)
        return str(caught.value)


@pytest.fixture
def guard(monkeypatch, valid) -> Guard:
    import encodings.cp437  # noqa: F401 (zipfile's codec for names that are not UTF-8)

    sg.load(io.BytesIO(valid))  # the modules a valid load needs are imported once, before the checks
    return Guard(monkeypatch)


def test_the_valid_file_loads_and_works(guard, valid):
    loaded = guard.load(valid)
    assert loaded["train"](np.ones(4)) >= 0 and loaded["n"] == (1, 2.5, None)
    assert sg.errors.LoadError is sg.LoadError and issubclass(sg.LoadError, ValueError)


# --- each way a file can be wrong ------------------------------------------------------------------------
def test_not_a_file_symgraph_can_read(guard, valid, tmp_path):
    guard.refuses(b"", "not a symgraph file")
    guard.refuses(np.random.default_rng(0).bytes(1000), "not a symgraph file")
    guard.refuses(rezip({"other.txt": b"hello"}), "symgraph.json")
    guard.refuses(rezip({"symgraph.json": b"{not json"}), "not valid JSON")
    guard.refuses(rezip({"symgraph.json": b"\xff\xfe"}), "UTF-8")
    guard.refuses(rezip({"symgraph.json": b'{"format": "pickle"}'}), "not a symgraph file")
    guard.refuses(rezip({"symgraph.json": b"[" * 100_000 + b"]" * 100_000}), "deeply|not a symgraph")
    guard.refuses(with_document(valid, lambda d: {**d, "root": float("nan")}), "NaN is not JSON")
    with pytest.raises(FileNotFoundError):
        sg.load(tmp_path / "missing.sg")


def test_every_truncation_is_refused(guard, valid):
    for length in range(0, len(valid), max(1, len(valid) // 300)):
        guard.refuses(valid[:length], "not a symgraph file|ends|CRC|Bad|missing|Error")


def test_a_newer_format_says_so(guard, valid):
    message = guard.refuses(with_document(valid, lambda d: {**d, "version": 99}), "newer symgraph")
    assert "version 99" in message and "upgrade" in message
    guard.refuses(with_document(valid, lambda d: {**d, "version": "1"}), "format version")


def _set_op(document, predicate, change):
    for entry in document["ops"]:
        if predicate(entry):
            change(entry)
            return
    raise AssertionError("no such op")


def test_names_that_are_not_registered_are_never_imported(guard, valid):
    def class_named(name):
        return lambda d: _set_op(d, lambda e: "class" in e, lambda e: e.update({"class": name}))

    for name in ("os.system", "subprocess.Popen", "builtins.eval", "symgraph.serialize.save"):
        message = guard.refuses(with_document(valid, class_named(name)), "not a known op")
        assert name in message and "import the module" in message
    guard.refuses(
        with_document(
            valid, lambda d: _set_op(d, lambda e: "elemwise" in e, lambda e: e.update({"elemwise": "os.system"}))
        ),
        "elementwise op 'os.system'.*not registered",
    )

    def bit_generator(document):
        for variable in document["variables"]:
            if "generator" in variable:
                variable["generator"]["dict"][0][1] = "os.system"

    guard.refuses(with_document(valid, bit_generator), "no known bit generator")
    for field, value in (("backend", "os.system"), ("mode", "os.system"), ("phase", "os.system")):
        guard.refuses(with_document(valid, lambda d: d["functions"][0].update({field: value})), "does not compile")


def test_dtypes_that_hold_objects_are_refused(guard, valid):
    def object_type(document):
        document["variables"][0]["type"]["dtype"] = "object"

    guard.refuses(with_document(valid, object_type), "dtype 'object' is not read")
    files = entries(valid)
    pickled = io.BytesIO()
    np.save(pickled, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    files["arrays/0.npy"] = pickled.getvalue()
    guard.refuses(rezip(files), "holds dtype object")
    guard.refuses(with_document(valid, lambda d: d["arrays"][0].update({"dtype": "O"})), "not read")
    guard.refuses(with_document(valid, lambda d: d["arrays"][0].update({"dtype": "i4,f8"})), "not read")


def test_wrong_or_absurd_shapes_are_refused_without_allocating(guard, valid):
    guard.refuses(with_document(valid, lambda d: d["variables"][0]["type"].update({"shape": [-1]})), "lengths")
    guard.refuses(
        with_document(valid, lambda d: d["arrays"][0].update({"shape": [10**12, 10**12]})), "array 0|arrays/0"
    )
    guard.refuses(with_document(valid, lambda d: d["arrays"][0].update({"shape": [3]})), "arrays/0.npy holds")
    files = entries(valid)
    files["arrays/0.npy"] = files["arrays/0.npy"][:-8]  # a lying header: fewer bytes than it says
    guard.refuses(rezip(files), "takes 32 bytes")

    def huge_constant(document):
        for variable in document["variables"]:
            if variable["kind"] == "constant" and "value" in variable:
                variable["type"]["shape"] = [10**9, 10**9]
                return

    guard.refuses(with_document(valid, huge_constant), "do not fill")


def test_cycles_and_missing_references_are_refused(guard, valid):
    def cycle(document):
        nodes = document["nodes"]
        nodes[0]["inputs"][0] = nodes[-1]["outputs"][0]

    guard.refuses(with_document(valid, cycle), "which no earlier node computes")
    guard.refuses(with_document(valid, lambda d: d["nodes"].reverse()), "which no earlier node computes")
    guard.refuses(with_document(valid, lambda d: d["nodes"][0].update({"op": 10**6})), "refers to op")
    guard.refuses(with_document(valid, lambda d: d["variables"][1].update({"array": 99})), "refers to array")
    files = entries(valid)
    del files["arrays/1.npy"]
    guard.refuses(rezip(files), "array 1 is missing")

    def op_holding_itself(document):
        for index, op in enumerate(document["ops"]):
            if "state" in op:
                op["state"]["extra"] = {"op": index}
                return

    guard.refuses(with_document(valid, op_holding_itself), "holds itself")


def test_wrong_json_types_are_refused_by_name(guard, valid):
    cases = [
        (lambda d: d.update({"nodes": {}}), "'nodes' must be an array"),
        (lambda d: d["nodes"][0].update({"inputs": "abc"}), "node 0 must be an array"),
        (lambda d: d["nodes"][0].update({"gradient": 1}), "gradient mark must be true or false"),
        (lambda d: d["nodes"][0].update({"extra": 1}), "unknown field"),
        (lambda d: d["variables"][0].update({"name": 5}), "name must be a string or null"),
        (lambda d: d["variables"][0].update({"kind": "pickle"}), "kind must be"),
        (lambda d: d["variables"][0].pop("type") and None, "lacks 'type'"),
        (lambda d: d["functions"][0].update({"inputs": [True]}), "refers to variable the boolean true"),
        (lambda d: d["functions"][0].update({"single_output": "yes"}), "single_output"),
        (lambda d: d.update({"root": {"pickle": "x"}}), "'pickle' is not a kind of value"),
        (lambda d: d.update({"root": {"a": 1, "b": 2}}), "one key"),
        (lambda d: d.update({"root": {"dict": [[{"list": [1]}, 2]]}}), "dict key"),
        (lambda d: d.update({"root": {"scalar": ["int8", 1000]}}), "not a int8 value"),
        (lambda d: d.update({"root": {"float": "NaN!"}}), "'nan', 'inf' or '-inf'"),
        (lambda d: d["scopes"][0].update({"parent": 0}), "refers to earlier scope"),
    ]
    for change, match in cases:
        guard.refuses(with_document(valid, change), match)


def test_op_states_hold_parameters_only(guard, valid):
    def state_key(key):
        return lambda d: _set_op(
            d, lambda e: e.get("class", "").endswith("Reduce"), lambda e: e["state"].update({key: 1})
        )

    for key in ("perform", "__class__", "name", "make_node", "1x"):
        guard.refuses(with_document(valid, state_key(key)), "cannot be a parameter")
    guard.refuses(
        with_document(
            valid, lambda d: _set_op(d, lambda e: "Reduce" in e.get("class", ""), lambda e: e["state"].pop("axes"))
        ),
        "lacks parameter",
    )
    guard.refuses(
        with_document(
            valid,
            lambda d: _set_op(
                d, lambda e: "Reduce" in e.get("class", ""), lambda e: e["state"].update({"axes": "abc"})
            ),
        ),
        r"cannot load node \d+: TypeError",
    )
    guard.refuses(
        with_document(valid, lambda d: _set_op(d, lambda e: "class" in e, lambda e: e.update({"class": 3}))),
        "class must be a string",
    )
    # an elementwise op holds code (numpy functions): never rebuilt from a state, only found by name
    elemwise_state = {"_name": "exp", "function": "os.system", "grads": [None], "nin": 1}
    guard.refuses(
        with_document(
            valid,
            lambda d: _set_op(
                d,
                lambda e: "elemwise" in e,
                lambda e: (e.clear(), e.update({"class": "symgraph.ops.elemwise.Elemwise", "state": elemwise_state})),
            ),
        ),
        "given by name",
    )


def test_huge_counts_are_refused_quickly(guard):
    x = sg.matrix("x")
    pieces = sg.ops.shape.Split(1, 2)(x, sg.constant(np.array([1, 1])))
    buffer = io.BytesIO()
    sg.save(buffer, pieces[0] + pieces[1])

    def many_pieces(document):
        _set_op(
            document, lambda e: e.get("class", "").endswith("Split"), lambda e: e["state"].update({"count": 10**12})
        )

    guard.refuses(with_document(buffer.getvalue(), many_pieces), "split into 1000000000000 pieces")
    guard.refuses(rezip({"symgraph.json": b'{"format": "symgraph", "version": 1' + b", " * 10 + b"}"}), "JSON")


def test_a_failed_load_leaves_no_object_behind(guard, valid):
    # the nodes are fine, the function does not compile: nothing is returned, nothing changes
    data = with_document(valid, lambda d: d["functions"][0].update({"phase": None}))
    message = guard.refuses(data, "function 0 \\(train\\) does not compile")
    assert "PhaseError" in message and "dropout" in message


# --- the fuzzer ------------------------------------------------------------------------------------------
_PALETTE = [
    None, True, False, 0, 1, -1, 2, 2**31, 2**63, 10**30, -(10**30), 0.5, -0.0, 1e308,
    "", "x", "os.system", "float64", "object", "generator", "computed", "nan", "x" * 300,
    [], [0], [[0]], [None, -5], {}, {"list": []}, {"float": "nan"}, {"array": 0}, {"variable": 0},
    {"op": 0}, {"function": 0}, {"graph": {"inputs": [], "outputs": [0], "updates": []}},
    {"dict": [[1, 2]]}, {"scalar": ["object", 1]}, {"scalar": ["float32", 1e300]}, {"slice": [1, 2, 3]},
    {"dtype": "V8"}, {"tuple": []}, {"dtype": "float64", "shape": [None]},
]  # fmt: skip


def _paths(value, prefix=()):
    yield prefix
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _paths(item, (*prefix, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _paths(item, (*prefix, index))


def _mutate(document, paths, rng) -> str:
    """One random change somewhere in the document (``paths``: those of the unchanged document;
    after an earlier change some may lead nowhere, and are skipped); what it did, for messages."""
    path = paths[rng.integers(len(paths))]
    parent = document
    try:
        for key in path[:-1]:
            parent = parent[key]
        key = path[-1]
        old = parent[key]
    except (KeyError, IndexError, TypeError):
        return f"skipped {path}"
    if not isinstance(parent, (dict, list)):  # an earlier change put a string where a table was
        return f"skipped {path}"
    choice = rng.integers(6)
    if choice == 0 and isinstance(parent, dict):
        del parent[key]
        return f"deleted {path}"
    if choice == 1 and isinstance(parent, list):
        parent.insert(int(rng.integers(len(parent) + 1)), copy.deepcopy(old))
        return f"duplicated {path}"
    if choice == 2 and isinstance(parent, list) and len(parent) > 1:
        other = int(rng.integers(len(parent)))
        parent[key], parent[other] = parent[other], old
        return f"swapped {path} with {other}"
    if choice == 3 and type(old) is int:
        parent[key] = old + [-2, -1, 1, 2, 1000, -(10**9), 10**18][rng.integers(7)]
        return f"shifted {path}"
    new = copy.deepcopy(_PALETTE[rng.integers(len(_PALETTE))])
    parent[key] = new
    return f"set {path} to {new!r}"[:200]


def _fuzz(valid: bytes, guard: Guard, cases: int, seed: int) -> dict:
    rng = np.random.default_rng(seed)
    files = entries(valid)
    text = files["symgraph.json"]
    paths = [path for path in _paths(json.loads(text)) if path]
    outcomes = {"loaded": 0, "refused": 0}
    for case in range(cases):
        if case % 4 == 0:  # the bytes of the file
            data = bytearray(valid)
            kind = rng.integers(4)
            if kind == 0:
                for position in rng.integers(len(data), size=int(rng.integers(1, 9))):
                    data[position] = int(rng.integers(256))
            elif kind == 1:
                data = data[: int(rng.integers(len(data)))]
            elif kind == 2:
                start = int(rng.integers(len(data)))
                data[start : start + int(rng.integers(1, 64))] = bytes(int(rng.integers(1, 64)))
            else:
                position = int(rng.integers(len(data)))
                data[position:position] = rng.bytes(int(rng.integers(1, 32)))
            data, what = bytes(data), f"byte mutation {kind}"
        else:  # the fields of the document, in a well-formed archive
            document = json.loads(text)
            what = "; ".join(_mutate(document, paths, rng) for _ in range(int(rng.integers(1, 4))))
            data = rezip({**files, "symgraph.json": json.dumps(document).encode()})
        try:
            guard.load(data)
            outcomes["loaded"] += 1
        except sg.LoadError:
            outcomes["refused"] += 1
        except Exception as error:
            raise AssertionError(f"case {case} (seed {seed}), {what}: {type(error).__name__}: {error}") from error
    return outcomes


def test_fuzzed_files_give_load_errors_or_load(guard, valid):
    outcomes = _fuzz(valid, guard, cases=1500, seed=0)
    assert outcomes["refused"] > 700 and outcomes["loaded"] > 15, outcomes


@pytest.mark.slow
def test_fuzzed_files_give_load_errors_or_load_at_length(guard, valid):
    for seed in range(1, 6):
        _fuzz(valid, guard, cases=2000, seed=seed)
