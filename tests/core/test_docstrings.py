"""The examples in the core's docstrings are true."""

import doctest
import importlib
import pkgutil

import pytest

import minio3_ext.core as core

MODULES = [m.name for m in pkgutil.iter_modules(core.__path__)]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    module = importlib.import_module(f"minio3_ext.core.{name}")
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.failed == 0
