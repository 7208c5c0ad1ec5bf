"""The Prometheus metrics of one app, served at `GET /metrics`.

`Metrics` is the broker's observer (`broker/observer.py`): the broker
calls it where the facts are, and it counts them into a registry of its
own (not prometheus_client's global one, so several apps in one process
do not clash). States rather than events (the bytes each event type takes
on disk, the committed lag of each subscription partition) are asked of
the broker at each scrape. `docs/metrics.md` lists every metric.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from prometheus_client import CONTENT_TYPE_PLAIN_0_0_4, CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from quart import Response
from quart_trio import QuartTrio

from broker.broker import Broker
from broker.observer import Observer, Stream, StreamEnd

# Seconds; a publish waits for its fdatasync, so both span the same range.
LATENCY_BUCKETS_S = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class Metrics(Observer):
    """The counters and histograms of one app, fed by the broker and the
    access log; `exposition` renders them with the scrape-time gauges."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        registry = self.registry
        self.published_events = Counter("nakadi_published_events", "Events stored by publishing, per event type",
                                        ["event_type"], registry=registry)
        self.published_bytes = Counter("nakadi_published_bytes", "Bytes of the events stored by publishing "
                                       "(their JSON as stored), per event type", ["event_type"], registry=registry)
        self.publish_seconds = Histogram("nakadi_publish_duration_seconds", "Time to answer a publish, "
                                         "acknowledgement included, per event type", ["event_type"],
                                         buckets=LATENCY_BUCKETS_S, registry=registry)
        self.fsync_seconds = Histogram("nakadi_fsync_duration_seconds", "Time of one fdatasync of a partition log",
                                       buckets=LATENCY_BUCKETS_S, registry=registry)
        self.open_streams = Gauge("nakadi_open_streams", "Streams sending now, per kind (event-type or "
                                  "subscription)", ["kind"], registry=registry)
        self.streamed_events = Counter("nakadi_streamed_events", "Events sent on streams, per kind and event type",
                                       ["kind", "event_type"], registry=registry)
        self.streams_ended = Counter("nakadi_streams_ended", "Streams ended, per kind and reason",
                                     ["kind", "reason"], registry=registry)
        self.responses = Counter("nakadi_http_responses", "HTTP responses, per method and status",
                                 ["method", "status"], registry=registry)
        for kind in ("event-type", "subscription"):
            self.open_streams.labels(kind)
        # Labelled children, looked up once: `labels()` on every publish and
        # response cost a few percent of a one-event publish.
        self._publish_children: dict[str, tuple[Any, Any, Any]] = {}
        self._response_children: dict[tuple[str, int], Any] = {}

    # -- the broker's reports (Observer) -------------------------------------

    def published(self, event_type: str, events: int, size_bytes: int, seconds: float) -> None:
        children = self._publish_children.get(event_type)
        if children is None:
            children = self._publish_children[event_type] = (
                self.published_events.labels(event_type), self.published_bytes.labels(event_type),
                self.publish_seconds.labels(event_type))
        if events:
            children[0].inc(events)
            children[1].inc(size_bytes)
        children[2].observe(seconds)

    def synced(self, seconds: float) -> None:
        self.fsync_seconds.observe(seconds)

    def stream_opened(self, stream: Stream) -> None:
        self.open_streams.labels(stream.kind).inc()

    def streamed(self, stream: Stream, event_type: str, events: int) -> None:
        self.streamed_events.labels(stream.kind, event_type).inc(events)

    def stream_closed(self, stream: Stream, reason: StreamEnd) -> None:
        self.open_streams.labels(stream.kind).dec()
        self.streams_ended.labels(stream.kind, reason.value).inc()

    # -- the access log's report ---------------------------------------------

    def responded(self, method: str, status: int) -> None:
        child = self._response_children.get((method, status))
        if child is None:
            child = self._response_children[method, status] = self.responses.labels(method, str(status))
        child.inc()

    # -- exposition ------------------------------------------------------------

    async def exposition(self, broker: Broker) -> bytes:
        """The text format of every metric, with the broker's states of now."""
        states = CollectorRegistry(auto_describe=False)
        states.register(_States(broker.storage_bytes(), await broker.committed_lags()))
        return generate_latest(self.registry) + generate_latest(states)


class _States(Collector):
    """Gauges of the broker's state at one scrape."""

    def __init__(self, storage_bytes: dict[str, int], lags: list[tuple[str, str, str, int]]) -> None:
        self._storage_bytes = storage_bytes
        self._lags = lags

    def collect(self) -> Iterator[GaugeMetricFamily]:
        storage = GaugeMetricFamily("nakadi_storage_bytes", "Bytes the partition logs of an event type take on "
                                    "disk", labels=["event_type"])
        for name, size in sorted(self._storage_bytes.items()):
            storage.add_metric([name], size)
        yield storage
        lag = GaugeMetricFamily("nakadi_subscription_committed_lag_events", "Events after the committed cursor "
                                "of a subscription partition", labels=["subscription_id", "event_type", "partition"])
        for subscription_id, event_type, partition, events in self._lags:
            lag.add_metric([subscription_id, event_type, partition], events)
        yield lag


def register(app: QuartTrio, broker: Broker | None, metrics: Metrics) -> None:
    """Serve `/metrics`, and make `metrics` the broker's observer (of two
    apps over one broker, the one built last observes it; an app built
    without a broker only lists its routes)."""
    if broker is not None:
        broker.observe(metrics)

    async def scrape() -> Response:
        # generate_latest writes text format 0.0.4, which every Prometheus reads.
        assert broker is not None
        return Response(await metrics.exposition(broker), content_type=CONTENT_TYPE_PLAIN_0_0_4)
    app.add_url_rule("/metrics", view_func=scrape, methods=["GET"])
