"""The file itself: one zip archive holding ``symgraph.json`` (deflated) and one ``.npy`` file per
array (stored as they are), ``arrays/0.npy``, ``arrays/1.npy``...

Reading trusts nothing: the archive's sizes are checked before anything is allocated, each array's
header (dtype, shape) is parsed and checked against the bytes that hold it, no dtype holding
Python objects is ever read (``allow_pickle`` is never on), and the names of the entries read are
made here, never taken from the file.
"""

from __future__ import annotations

import functools
import io
import json
import math
import os
import tempfile
import zipfile
from collections.abc import Iterable
from typing import IO, Any

import numpy as np

from ..errors import LoadError

DOCUMENT = "symgraph.json"
#: Larger documents are refused: a graph of 100,000 nodes takes about 10 MiB.
MAX_DOCUMENT_BYTES = 64 * 2**20
#: The dtypes an array in a file may have: booleans, integers, floats, complex numbers.
ARRAY_KINDS = "biufc"
# Deflate cannot expand data more than about 1032 times: a larger declared size is a lie.
_MAX_DEFLATE_RATIO = 1100
# The one-line-per-entry layout of the document's tables (readable with ``unzip -p``).
_TABLES = ("functions", "arrays", "variables", "ops", "nodes", "scopes")


def array_entry(index: int) -> str:
    return f"arrays/{index}.npy"


# --- writing ----------------------------------------------------------------------------------------
def document_text(document: dict) -> str:
    """The document as JSON text, one line per table entry."""
    parts = []
    for key, value in document.items():
        if key in _TABLES and isinstance(value, list) and value:
            body = ",\n  ".join(_dumps(item) for item in value)
            parts.append(f"{json.dumps(key)}: [\n  {body}\n ]")
        else:
            parts.append(f"{json.dumps(key)}: {_dumps(value)}")
    return "{\n " + ",\n ".join(parts) + "\n}\n"


_dumps = json.JSONEncoder(allow_nan=False, ensure_ascii=False, separators=(", ", ": ")).encode


def write_archive(target: str | os.PathLike | IO[bytes], text: str, arrays: Iterable[np.ndarray]) -> None:
    """Write the archive to a path (through a temporary file, so that a failed save leaves no
    half-written file behind) or to a binary file object."""
    if hasattr(target, "write"):
        _write_zip(target, text, arrays)  # type: ignore[arg-type]
        return
    path = os.fspath(target)
    folder = os.path.dirname(os.path.abspath(path))
    handle, temporary = tempfile.mkstemp(prefix=".symgraph-", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(handle, "wb") as stream:
            _write_zip(stream, text, arrays)
        os.replace(temporary, path)
    except BaseException:
        if os.path.exists(temporary):
            os.unlink(temporary)
        raise


def _write_zip(stream: IO[bytes], text: str, arrays: Iterable[np.ndarray]) -> None:
    with zipfile.ZipFile(stream, "w") as archive:
        archive.writestr(zipfile.ZipInfo(DOCUMENT), text.encode("utf-8"), compress_type=zipfile.ZIP_DEFLATED)
        for index, array in enumerate(arrays):
            header = _npy_header(array)
            info = zipfile.ZipInfo(array_entry(index))
            info.file_size = len(header) + array.nbytes
            with archive.open(info, "w", force_zip64=info.file_size > 2**31) as entry:
                entry.write(header)
                entry.write(_bytes_of(array))


def _npy_header(array: np.ndarray) -> bytes:
    """The ``.npy`` header of ``array``."""
    return _npy_header_of(array.dtype, array.shape, array.flags.f_contiguous and not array.flags.c_contiguous)


def _bytes_of(array: np.ndarray) -> memoryview | bytes:
    """The array's bytes in the order its header says (Fortran order for Fortran arrays)."""
    if array.flags.c_contiguous:
        return memoryview(array).cast("B") if array.size else b""
    if array.flags.f_contiguous:
        return memoryview(array.T).cast("B") if array.size else b""
    return np.ascontiguousarray(array).tobytes()


# --- reading ----------------------------------------------------------------------------------------
class Archive:
    """A saved file, opened for reading."""

    def __init__(self, stream: IO[bytes], name: str):
        self.name = name
        try:
            self.zip = zipfile.ZipFile(stream)
        except Exception as error:  # zipfile raises many kinds on a file that is no zip
            raise LoadError(f"{name} is not a symgraph file (not a zip archive: {error})") from None

    def close(self) -> None:
        self.zip.close()

    def _info(self, name: str, what: str) -> zipfile.ZipInfo:
        try:
            info = self.zip.getinfo(name)
        except KeyError:
            raise LoadError(f"{what} is missing: the archive holds no {name}") from None
        if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
            raise LoadError(f"{name} is compressed with method {info.compress_type}; only stored and deflated are read")
        if info.flag_bits & 0x1:
            raise LoadError(f"{name} is encrypted")
        limit = info.compress_size * (_MAX_DEFLATE_RATIO if info.compress_type == zipfile.ZIP_DEFLATED else 1)
        if info.file_size > limit:
            raise LoadError(
                f"{name} claims {info.file_size} bytes, more than its {info.compress_size} compressed ones can hold"
            )
        return info

    def document(self) -> Any:
        """The parsed JSON document."""
        info = self._info(DOCUMENT, f"{self.name}: the graph document")
        if info.file_size > MAX_DOCUMENT_BYTES:
            raise LoadError(f"{DOCUMENT} is {info.file_size} bytes, more than the {MAX_DOCUMENT_BYTES} read")
        data = self.zip.read(info)
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as error:
            raise LoadError(f"{DOCUMENT} is not UTF-8 text: {error}") from None
        try:
            return json.loads(text, parse_constant=_refuse_constant)
        except RecursionError:
            raise LoadError(f"{DOCUMENT} nests too deeply") from None
        except ValueError as error:
            raise LoadError(f"{DOCUMENT} is not valid JSON: {error}") from None

    def array(self, index: int, dtype: np.dtype, shape: tuple[int, ...]) -> np.ndarray:
        """Array ``index``, which the document says has ``dtype`` and ``shape``: a new, writeable
        array in native byte order."""
        name = array_entry(index)
        info = self._info(name, f"array {index}")
        with self.zip.open(info) as entry:
            header = _read_npy_header(entry, name)
            if header == _npy_header_of(dtype, shape):  # what sg.save writes: nothing more to parse
                stored_shape, fortran, stored_dtype = shape, False, dtype
            else:
                stored_shape, fortran, stored_dtype = _parse_npy_header(io.BytesIO(header), name)
            if stored_dtype.hasobject or stored_dtype.fields is not None or stored_dtype.subdtype is not None:
                raise LoadError(f"{name} holds dtype {stored_dtype}: only plain numeric arrays are read")
            if stored_dtype.newbyteorder("=") != dtype or tuple(stored_shape) != shape:
                raise LoadError(
                    f"{name} holds an array of dtype {stored_dtype} and shape {stored_shape}, but the document "
                    f"says {dtype} and {shape}"
                )
            size = stored_dtype.itemsize * math.prod(shape)
            remaining = info.file_size - len(header)
            if size != remaining:
                raise LoadError(
                    f"{name}: an array of shape {shape} and dtype {dtype} takes {size} bytes, "
                    f"the entry holds {remaining}"
                )
            buffer = bytearray(size)
            view = memoryview(buffer)
            filled = 0
            while filled < size:
                count = entry.readinto(view[filled:])
                if not count:
                    raise LoadError(f"{name} ends after {filled} of its {size} bytes")
                filled += count
            entry.read(1)  # reaching the end checks the entry's CRC
        array = np.frombuffer(buffer, dtype=stored_dtype).reshape(shape, order="F" if fortran else "C")
        if not stored_dtype.isnative:
            array = array.astype(dtype)
        return array


@functools.lru_cache(maxsize=256)  # a model's arrays repeat shapes (a weight, its two Adam moments)
def _npy_header_of(dtype: np.dtype, shape: tuple, fortran_order: bool = False) -> bytes:
    """The ``.npy`` header of an array of ``dtype`` and ``shape`` (format 1.0, or 2.0 for a header
    too long for it)."""
    header = io.BytesIO()
    data = {"descr": np.lib.format.dtype_to_descr(dtype), "fortran_order": fortran_order, "shape": shape}
    try:
        np.lib.format.write_array_header_1_0(header, data)
    except ValueError:
        header = io.BytesIO()
        np.lib.format.write_array_header_2_0(header, data)
    return header.getvalue()


def _read_npy_header(entry: IO[bytes], name: str) -> bytes:
    """The raw header of a ``.npy`` entry (magic string, version, length, text)."""
    start = entry.read(8)
    if len(start) < 8 or start[:6] != b"\x93NUMPY" or start[6] not in (1, 2, 3):
        raise LoadError(f"{name} is not a .npy file (versions 1 to 3)")
    size_bytes = entry.read(2 if start[6] == 1 else 4)
    length = int.from_bytes(size_bytes, "little")
    if length > 10_000:
        raise LoadError(f"{name} has a header of {length} bytes, more than the 10000 read")
    text = entry.read(length)
    if len(size_bytes) < 2 or len(text) != length:
        raise LoadError(f"{name} ends inside its header")
    return start + size_bytes + text


def _parse_npy_header(stream: IO[bytes], name: str) -> tuple:
    """``(shape, fortran_order, dtype)`` of a ``.npy`` header written otherwise than by ``sg.save``."""
    try:
        version = np.lib.format.read_magic(stream)
        if version == (1, 0):
            return np.lib.format.read_array_header_1_0(stream, max_header_size=10_000)
        if version == (2, 0):
            return np.lib.format.read_array_header_2_0(stream, max_header_size=10_000)
        raise ValueError(f"npy format version {version} is not read")
    except ValueError as error:
        raise LoadError(f"{name} is not a valid .npy file: {error}") from None


def _refuse_constant(name: str) -> Any:
    raise ValueError(f'{name} is not JSON (non-finite floats are written {{"float": "nan"}})')


def check_array_dtype(name: Any, where: str) -> np.dtype:
    """The numpy dtype a document names for an array: a plain numeric one, in native byte order."""
    if not isinstance(name, str):
        raise LoadError(f"{where}: a dtype is a string such as 'float32', not {name!r}")
    try:
        dtype = np.dtype(name)
    except (TypeError, ValueError, SyntaxError):
        raise LoadError(f"{where}: {name!r} is not a numpy dtype") from None
    if dtype.kind not in ARRAY_KINDS or dtype.fields is not None or dtype.subdtype is not None:
        raise LoadError(f"{where}: dtype {name!r} is not read (only booleans, integers, floats and complex numbers)")
    return dtype.newbyteorder("=")
