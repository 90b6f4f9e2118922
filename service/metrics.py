"""Prometheus metrics (served over HTTP by `--metrics-port`)."""
from __future__ import annotations

import socket
import socketserver
import threading
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram, make_wsgi_app

from .loopmetrics import LoopCounter, LoopHistogram

# Latencies of interest sit between a few hundred microseconds and the auction window.
_SCORE_BUCKETS = (0.01, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99)
_LATENCY_BUCKETS = (0.0005, 0.001, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.015, 0.02, 0.03, 0.05, 0.1, 0.25, 1.0)


class Metrics:
    def __init__(self, registry: CollectorRegistry = REGISTRY):
        self.registry = registry
        # Updated on every request, from the event loop only: the cheap kind (see loopmetrics).
        # Labels named as gRPC's own Prometheus interceptors name them (grpc_service, grpc_method,
        # grpc_code), so stock dashboards and alert rules read them. ClassifyStream counts messages.
        self.requests = LoopCounter("brandsafe_requests_total", "Requests by gRPC method and status code",
                                    ["grpc_service", "grpc_method", "grpc_code"], registry=registry)
        self.latency = LoopHistogram("brandsafe_request_latency_seconds", "End-to-end server latency per request",
                                     ["grpc_service", "grpc_method"], buckets=_LATENCY_BUCKETS, registry=registry)
        self.decisions = LoopCounter("brandsafe_decisions_total",
                                     "Answers by brand profile, decision, deciding category (none = allowed; "
                                     "list:… = a domain list) and source (model, local, redis, fallback)",
                                     ["policy", "decision", "category", "source"], registry=registry)
        self.category_scores = LoopHistogram("brandsafe_category_score",
                                             "Calibrated score per category of each page the model scored (drift)",
                                             ["category"], buckets=_SCORE_BUCKETS, registry=registry)
        self.queue_wait = Histogram("brandsafe_queue_wait_seconds", "Time from enqueue to batch start",
                                    buckets=_LATENCY_BUCKETS, registry=registry)
        self.batch_size = Histogram("brandsafe_batch_size", "Requests per inference batch",
                                    buckets=(1, 2, 4, 8, 16, 32, 64, 128), registry=registry)
        self.inference = Histogram("brandsafe_inference_seconds", "Tokenize + model time per batch",
                                   buckets=_LATENCY_BUCKETS, registry=registry)
        self.queue_depth = Gauge("brandsafe_queue_depth", "Requests waiting for a batch", registry=registry)
        self.fallbacks = Counter("brandsafe_fallbacks_total", "Answers given by a profile's fallback, by reason",
                                 ["reason"], registry=registry)
        self.dropped = Counter("brandsafe_dropped_total", "Requests dropped before inference, by reason",
                               ["reason"], registry=registry)
        self.bundle = Gauge("brandsafe_bundle_info", "The model bundle in use (value 1)", ["bundle_id"],
                            registry=registry)
        self.cache_lookups = LoopCounter("brandsafe_cache_lookups_total",
                                         "Verdict cache lookups by where the scores came from", ["result"],
                                         registry=registry)
        self.cache_redis_up = Gauge("brandsafe_cache_redis_up", "1 while the Redis tier is used, 0 while bypassed",
                                    registry=registry)
        self.cache_redis_errors = Counter("brandsafe_cache_redis_errors_total", "Redis tier errors by kind",
                                          ["kind"], registry=registry)
        self.cache_redis_rejected = Counter("brandsafe_cache_redis_rejected_total",
                                            "Redis values refused (treated as misses) by reason: size, format, "
                                            "mac, key, shape, range, type", ["reason"], registry=registry)
        self.reloads = Counter("brandsafe_bundle_reloads_total", "Bundle hot-swap attempts by result",
                               ["result"], registry=registry)
        self.index_reloads = Counter("brandsafe_index_reloads_total", "Retrieval index hot-swap attempts by result",
                                     ["result"], registry=registry)
        self.release_follow_errors = Counter("brandsafe_release_follow_errors_total",
                                             "Registry alias follower failures by kind (registry, artifacts, swap)",
                                             ["kind"], registry=registry)
        self.retrievals = Counter("brandsafe_retrievals_total", "Retrieval hook outcomes per scored request",
                                  ["status"], registry=registry)
        self.retrieval_latency = Histogram("brandsafe_retrieval_seconds", "Retrieval hook time (embed + search)",
                                           buckets=_LATENCY_BUCKETS, registry=registry)
        self.gc_pauses = Histogram("brandsafe_gc_pause_seconds",
                                   "Cyclic garbage collections by generation (all Python threads stop meanwhile)",
                                   ["generation"], buckets=(0.0001, 0.00025, 0.0005, 0.001, 0.002, 0.005, 0.01,
                                                            0.02, 0.05, 0.1), registry=registry)

    def set_bundle(self, bundle_id: str) -> None:
        self.bundle.clear()
        self.bundle.labels(bundle_id=bundle_id).set(1)

    def serve(self, port: int, host: str = "127.0.0.1") -> int:
        """Serve /metrics from a daemon thread; returns the bound port."""
        return serve_registry(self.registry, port, host)[0].server_port


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format, *args):  # a scrape every few seconds is not news
        pass


def serve_registry(registry: CollectorRegistry, port: int, host: str) -> tuple[WSGIServer, threading.Thread]:
    """prometheus_client's start_http_server without its half-second poll. Its thread wakes twice
    a second to look for a shutdown nobody asks for, and each wake-up takes the GIL, on a core the
    hit path shares (loadtest/TUNING.md §21). Here the thread sleeps until a scrape connects."""
    family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]

    class Server(socketserver.ThreadingMixIn, WSGIServer):
        address_family = family
        daemon_threads = True

    httpd = make_server(host, port, make_wsgi_app(registry), Server, handler_class=_QuietHandler)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": None}, daemon=True,
                              name="metrics-http")
    thread.start()
    return httpd, thread


_default: Metrics | None = None


def default_metrics() -> Metrics:
    """One set per process: prometheus_client refuses to register the same names twice."""
    global _default
    if _default is None:
        _default = Metrics()
    return _default
