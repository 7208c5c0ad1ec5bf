"""Every broker error has exactly one HTTP status, mapped in api/problems.py."""

import importlib
import pkgutil

import broker
from api.problems import STATUS_OF, status_of
from broker.errors import BrokerError


def all_subclasses(cls):
    for sub in cls.__subclasses__():
        yield sub
        yield from all_subclasses(sub)


def test_problems_every_broker_error_subclass_has_a_status():
    for module in pkgutil.iter_modules(broker.__path__):
        importlib.import_module(f"broker.{module.name}")
    classes = list(all_subclasses(BrokerError))
    assert len(classes) >= len(STATUS_OF)
    for cls in classes:
        assert 400 <= status_of(cls("x")) < 600, cls
