"""Bad arguments get clear errors that say what was expected, not a traceback from inside."""

import inspect

import numpy as np
import pytest

import symgraph as sg


@pytest.mark.parametrize(
    "build, message",
    [
        (lambda x: x.argmax(axis=(0, 1)), r"argmax takes one axis \(an int\) or None"),
        (lambda x: x.sum(axis=1.0), r"axis must be None, an int or a tuple of ints, not 1.0"),
        (lambda x: sg.ones(2.5), r"a shape is an int, a tuple .* not 2.5"),
        (lambda x: sg.grad(x.sum(), 3), r"with respect to a variable or a list of them, not 3"),
        (lambda x: sg.RandomStreams(0).uniform((2,), dtype="int32"), r"dtype must be a float dtype, not int32"),
        (lambda x: x.reshape(sg.lvector()), r"number of dimensions: .* ndim="),
        (lambda x: x.reshape((2, 3), ndim=3), r"ndim=3, but the shape has 2 entries"),
    ],
)
def test_bad_arguments_are_named_clearly(build, message):
    with pytest.raises((TypeError, ValueError), match=message):
        build(sg.matrix("x"))


def test_reshape_by_a_vector_of_unknown_length_with_ndim():
    x, shape = sg.matrix("x"), sg.lvector("shape")
    reshaped = x.reshape(shape, ndim=3)
    assert reshaped.ndim == 3
    f = sg.function([x, shape], reshaped)
    data = np.arange(12.0).reshape(2, 6)
    np.testing.assert_array_equal(f(data, np.array([3, 2, 2])), data.reshape(3, 2, 2))
    with pytest.raises(ValueError, match="expected 3 entries"):
        f(data, np.array([12]))


def test_set_value_advice_makes_sense_for_a_shared_variable():
    counter = sg.shared(np.zeros(2, "int64"), name="counter")
    with pytest.raises(sg.errors.InputError, match=r"counter.*astype\('int64'\)") as error:
        counter.set_value(np.ones(2))
    assert "compiled function's arguments" in str(error.value)
    np.testing.assert_array_equal(counter.get_value(), [0, 0])  # unchanged


@pytest.mark.parametrize("operation", ["exp", "maximum", "where", "clip"])
def test_each_elementwise_operation_has_its_own_docstring(operation):
    op = getattr(sg, operation)
    doc = inspect.getdoc(op)
    assert operation in doc and doc != inspect.getdoc(type(op))
