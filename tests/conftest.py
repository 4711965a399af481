import numpy as np
import pytest

import symgraph as sg


@pytest.fixture(autouse=True)
def _restore_floatx():
    """Tests may change sg.config.floatX; every test starts from float64."""
    saved = sg.config.floatX
    sg.config.floatX = "float64"
    yield
    sg.config.floatX = saved


@pytest.fixture
def rng():
    return np.random.default_rng(1234)
