import numpy as np
import pytest

import symgraph as sg


def pytest_report_header(config):
    """Which symgraph the tests run against (the source tree, or an installed wheel)."""
    return f"symgraph {sg.__version__} from {sg.__file__}"


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
