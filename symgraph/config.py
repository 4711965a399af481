"""Global settings: ``sg.config.floatX``.

``floatX`` is the dtype of float variables declared without a dtype and of Python floats turned
into shared variables. It starts as ``'float64'``, or as the environment variable
``SYMGRAPH_FLOATX`` says, and may be set at any time (it applies to variables declared after).
"""

from __future__ import annotations

import os

_FLOAT_DTYPES = ("float32", "float64")


class Config:
    def __init__(self) -> None:
        self.floatX = os.environ.get("SYMGRAPH_FLOATX", "float64")

    @property
    def floatX(self) -> str:
        return self._floatX

    @floatX.setter
    def floatX(self, value: str) -> None:
        if value not in _FLOAT_DTYPES:
            raise ValueError(f"config.floatX must be one of {_FLOAT_DTYPES}, not {value!r}")
        self._floatX = value

    def __repr__(self) -> str:
        return f"Config(floatX={self.floatX!r})"


config = Config()
