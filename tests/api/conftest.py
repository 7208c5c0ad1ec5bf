"""Fixtures of the API tests: a broker on a temporary data directory and
the in-process app over it."""

import pytest

from api.app import create_app
from broker.broker import Broker, BrokerConfig


@pytest.fixture
def broker(tmp_path):
    broker = Broker.open(BrokerConfig(str(tmp_path / "data")))
    yield broker
    broker.close()


@pytest.fixture
def app(broker):
    return create_app(broker, request_bytes_max=64 * 1024)


@pytest.fixture
def client(app):
    return app.test_client()
