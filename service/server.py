"""Server lifecycle: load and warm the bundle, then serve BrandSafety, health and reflection.

Health says NOT_SERVING until the bundle is verified, loaded and warmed at every batch size the
batcher uses; SIGTERM/SIGINT drain in-flight calls for the grace period, then exit; SIGHUP (and,
when configured, a watched bundle path or the token-protected Admin RPC) hot-swaps the bundle, and
the retrieval index when one is configured.
"""
from __future__ import annotations

import asyncio
import concurrent.futures
import dataclasses
import logging
import os
import signal
from dataclasses import dataclass, field
from pathlib import Path

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection, reflection_pb2_grpc

from brandsafe.urltext import load_segmenter
from brandsafe.v1 import brandsafe_pb2, brandsafe_pb2_grpc

from . import heap, scheduling
from .cpus import available_cpus
from .answers import HIT_PATH_LANGUAGE
from .batcher import MicroBatcher
from .cache import LocalTier, RedisTier, VerdictCache
from .metrics import Metrics, default_metrics
from .model import LoadedBundle
from .policy import DEFAULT_POLICY_FILE, load_policies
from .reload import AdminService, BundleSwapper
from .servicer import BrandSafetyService, Serving

log = logging.getLogger(__name__)
SERVICE_NAME = brandsafe_pb2.DESCRIPTOR.services_by_name["BrandSafety"].full_name
ADMIN_SERVICE_NAME = brandsafe_pb2.DESCRIPTOR.services_by_name["Admin"].full_name
MAX_MESSAGE_BYTES = 256 * 1024  # a bid request's page context is a few KB; anything larger is abuse


@dataclass
class ServerConfig:
    bundle: Path
    policies: Path = DEFAULT_POLICY_FILE
    host: str = "127.0.0.1"
    port: int = 50051
    max_batch: int = 32
    max_wait_us: int = 2000
    inference_workers: int = 0             # 0: one per CPU (cgroup quota counted) on CPU, one on a GPU
    intra_op_threads: int = 0              # per worker; 0: the cores shared among the workers
    device: str = "auto"
    backend: str = "onnxruntime"           # or "torch": PyTorch on `torch_model` (no CUDA build of ORT)
    torch_model: Path | None = None        # merged checkpoint for backend="torch"
    report_floor: float = 0.05
    grace_seconds: float = 5.0
    metrics_port: int | None = None        # None = no metrics endpoint; 0 = any free port
    tls_cert: Path | None = None
    tls_key: Path | None = None
    tls_client_ca: Path | None = None      # set = mutual TLS: clients must present a cert it signed
    admin_token: str = field(default_factory=lambda: os.environ.get("BRANDSAFE_ADMIN_TOKEN", ""))
    watch_seconds: float = 0.0             # > 0: poll the bundle path and hot-swap when it changes
    max_queue: int = 1024                  # beyond it: RESOURCE_EXHAUSTED at once
    # Connection limits every production gRPC server sets (see grpc_options):
    max_concurrent_rpcs: int = 4096        # calls open at once, server-wide; beyond: RESOURCE_EXHAUSTED
    max_concurrent_streams: int = 1024     # calls open at once on one HTTP/2 connection
    max_connection_age_seconds: float = 300.0  # then GOAWAY: clients reconnect, and spread to new replicas
    max_connection_age_grace_seconds: float = 30.0  # calls still open then get this long to finish
    cache_entries: int = 200_000           # in-process verdict cache; 0 = no cache
    cache_ttl_seconds: float = 3600.0
    redis_url: str = ""                    # shared verdict cache tier, e.g. redis://cache:6379/0
    redis_timeout_ms: float = 5.0
    # HMAC key for values in the shared tier (cache.RedisTier): every replica needs the same one.
    redis_secret_file: Path | None = None  # else $BRANDSAFE_REDIS_SECRET; neither = values unsigned
    index: Path | None = None              # retrieval index folder; used when the bundle reads <context>
    retrieval_top_k: int = 3
    retrieval_budget_ms: float = 10.0      # retrieval slower than this is abandoned for that request
    registry: str = ""                     # MLflow registry URI (sqlite:///… or http://…) to follow
    follow: str = ""                       # alias to serve and follow, e.g. "champion" (bundle/index then ignored)
    follow_seconds: float = 5.0
    registry_model: str = "brandsafe"
    registry_cache: Path = Path(".brandsafe-releases")  # downloaded releases
    # Serving threads (event loop, gRPC's, inference) at real-time priority, guarded (scheduling.py):
    # opt-in for dedicated hosts (`brandsafe serve --scheduling realtime`).
    realtime_serving: bool = False


class RunningServer:
    """A started server and what it owns; `stop()` drains in-flight calls within the grace period."""

    def __init__(self, server: grpc.aio.Server, port: int, service: BrandSafetyService, swapper: BundleSwapper,
                 health_servicer: health.aio.HealthServicer, grace: float, metrics_port: int | None):
        self.server, self.port, self.service, self.swapper = server, port, service, swapper
        self.health = health_servicer
        self.grace = grace
        self.metrics_port = metrics_port
        self.background: list[asyncio.Task] = []
        self.scheduling = scheduling.Outcome(False, reason="not requested")

    @property
    def model(self) -> LoadedBundle:
        return self.service.serving.model

    async def stop(self) -> None:
        await self.health.enter_graceful_shutdown()
        for task in self.background:
            task.cancel()
        await self.server.stop(self.grace)
        serving = self.service.serving
        if serving is not None:
            await serving.batcher.stop()
            serving.model.close()
        if self.service.cache is not None and self.service.cache.redis is not None:
            await self.service.cache.redis.close()
        self.service.close()
        if self.scheduling.realtime:
            scheduling.lower_calling_thread()

    async def wait(self) -> None:
        await self.server.wait_for_termination()


def threads_per_worker(intra_op_threads: int, workers: int) -> int:
    """ORT intra-op threads for each worker: as asked, else the cores divided among the workers."""
    return intra_op_threads or max(1, available_cpus() // workers)


def inference_threads(config: ServerConfig) -> int:
    """threads_per_worker for the server: an automatic worker count counts as one per core here
    (so one thread each by default on CPU)."""
    return threads_per_worker(config.intra_op_threads, config.inference_workers or available_cpus())


def inference_workers(config: ServerConfig, on_device: bool) -> int:
    """Concurrent batches: as asked, else one per core on CPU, and one on a GPU, where a single
    stream of larger batches is what the device runs best."""
    if config.inference_workers:
        return config.inference_workers
    return 1 if on_device else available_cpus()


def batch_sizes(max_batch: int) -> list[int]:
    sizes, size = [], 1
    while size < max_batch:
        sizes.append(size)
        size *= 2
    return sizes + [max_batch]


def _credentials(config: ServerConfig) -> grpc.ServerCredentials | None:
    if not (config.tls_cert or config.tls_key):
        return None
    if not (config.tls_cert and config.tls_key):
        raise ValueError("TLS needs both --tls-cert and --tls-key")
    client_ca = Path(config.tls_client_ca).read_bytes() if config.tls_client_ca else None
    return grpc.ssl_server_credentials([(Path(config.tls_key).read_bytes(), Path(config.tls_cert).read_bytes())],
                                       root_certificates=client_ca, require_client_auth=client_ca is not None)


class GenericHandlersOnly:
    """The part of a grpc.aio server the generated add_*Servicer_to_server functions call, adding
    every service as a generic handler only, never as registered methods. grpc.aio's accept loop
    keeps one pending call per registered method (and one for all generic ones) and waits on them
    with asyncio.wait, whose Python code walks every one of them on each accepted call (warm, one
    wait over 9 pending calls costs ~17 us against ~9.5 us over one; loadtest/TUNING.md §20)."""

    def __init__(self, server: grpc.aio.Server):
        self.server = server

    def add_generic_rpc_handlers(self, generic_rpc_handlers) -> None:
        self.server.add_generic_rpc_handlers(generic_rpc_handlers)

    def add_registered_method_handlers(self, service_name: str, method_handlers: dict) -> None:
        """Not registered: the generic handler added beside them serves the same methods."""


def grpc_options(config: ServerConfig) -> list[tuple[str, int]]:
    """Limits no client can talk the server out of: message size, calls per connection, connection
    age (a bidder's long-lived connection is closed gracefully every few minutes, so it reconnects,
    possibly to a new replica; without it a scale-out never receives old clients' traffic), and
    keepalive: dead peers are found within ~80 s, and a client pinging more often than every 10 s
    without calls is sent GOAWAY instead of costing a wake-up per ping."""
    return [
        ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
        ("grpc.so_reuseport", 0),
        ("grpc.max_concurrent_streams", config.max_concurrent_streams),
        ("grpc.max_connection_age_ms", int(config.max_connection_age_seconds * 1000)),
        ("grpc.max_connection_age_grace_ms", int(config.max_connection_age_grace_seconds * 1000)),
        ("grpc.keepalive_time_ms", 60_000),
        ("grpc.keepalive_timeout_ms", 20_000),
        ("grpc.keepalive_permit_without_calls", 0),
        ("grpc.http2.min_ping_interval_without_data_ms", 10_000),
        ("grpc.http2.max_ping_strikes", 2),
    ]


def _secret(path: Path | None, variable: str) -> bytes:
    """A secret from a file (trailing newline dropped) or the environment, never from argv, where
    any user of the machine can read it (ps)."""
    if path is not None:
        secret = Path(path).read_bytes().strip()
        if not secret:
            raise ValueError(f"{path}: the secret file is empty")
        return secret
    return os.environ.get(variable, "").encode()


def _cache(config: ServerConfig, metrics: Metrics) -> VerdictCache | None:
    if config.cache_entries <= 0:
        return None
    redis = (RedisTier(config.redis_url, config.cache_ttl_seconds, config.redis_timeout_ms / 1000, metrics=metrics,
                       secret=_secret(config.redis_secret_file, "BRANDSAFE_REDIS_SECRET"))
             if config.redis_url else None)
    return VerdictCache(LocalTier(config.cache_entries, config.cache_ttl_seconds), redis, metrics)


async def start(config: ServerConfig, metrics: Metrics | None = None) -> RunningServer:
    metrics = metrics or default_metrics()
    heap.watch_pauses(metrics.gc_pauses)
    if not 1 <= config.retrieval_top_k <= 5:
        raise ValueError(f"retrieval_top_k: {config.retrieval_top_k} is outside 1..5 (the <context> block holds 5)")
    if config.inference_workers < 0 or config.intra_op_threads < 0:
        raise ValueError(f"workers ({config.inference_workers}) and threads ({config.intra_op_threads}) "
                         "must be >= 0 (0 = automatic)")
    server = grpc.aio.server(options=grpc_options(config), maximum_concurrent_rpcs=config.max_concurrent_rpcs)
    handlers = GenericHandlersOnly(server)
    # BrandSafety first: a call's handler is found by asking each generic handler in turn.
    service = BrandSafetyService(config.report_floor, _cache(config, metrics), metrics, config.retrieval_top_k,
                                 config.retrieval_budget_ms / 1000)
    service.add_to_server(handlers)
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, handlers)
    for name in ("", SERVICE_NAME):
        await health_servicer.set(name, health_pb2.HealthCheckResponse.NOT_SERVING)
    loop = asyncio.get_running_loop()
    if config.realtime_serving:
        # Work started from the event loop runs in normal threads, whatever the loop's class becomes.
        loop.set_default_executor(concurrent.futures.ThreadPoolExecutor(initializer=scheduling.as_normal_work))

    await loop.run_in_executor(None, load_segmenter)

    async def load_serving(bundle_path: Path) -> Serving:
        model = await loop.run_in_executor(None, LoadedBundle, bundle_path, inference_threads(config), config.device,
                                           config.backend, config.torch_model)
        try:
            policies = load_policies(config.policies, model.labels, model.thresholds)
            await loop.run_in_executor(None, model.warm_up, batch_sizes(config.max_batch))
        except BaseException:
            model.close()
            raise
        workers = inference_workers(config, getattr(model.backend, "on_device", False))
        batcher = MicroBatcher(model.score, config.max_batch, config.max_wait_us, config.max_queue, metrics, workers)
        log.info("inference: %d worker(s), %d ONNX Runtime thread(s) each", workers, inference_threads(config))
        batcher.start()
        return Serving(model, policies, batcher)

    async def load_index(index_path: Path):
        from brandsafe.rendering import PageContext
        from brandsafe.retrieval import Retriever

        retriever = await loop.run_in_executor(None, Retriever.load, index_path)
        await loop.run_in_executor(None, retriever.retrieve, PageContext(url="warm-up.example/index"))
        return retriever

    follower = None
    if config.follow:
        follower, config = await _follow(config, metrics,
                                         lambda bundle, index, _version: swapper.swap_release(bundle, index))
    swapper = BundleSwapper(service, load_serving, config.bundle, metrics, config.index, load_index)
    services = [SERVICE_NAME, health.SERVICE_NAME, reflection.SERVICE_NAME]
    if config.admin_token:
        brandsafe_pb2_grpc.add_AdminServicer_to_server(AdminService(swapper, config.admin_token), handlers)
        services.append(ADMIN_SERVICE_NAME)
    reflection_pb2_grpc.add_ServerReflectionServicer_to_server(reflection.aio.ReflectionServicer(services), handlers)
    credentials = _credentials(config)
    address = f"{config.host}:{config.port}"
    port = server.add_secure_port(address, credentials) if credentials else server.add_insecure_port(address)
    if port == 0:
        raise OSError(f"cannot bind {address}")
    # Up early so health checks see NOT_SERVING (not a refused connection) while the bundle loads.
    await server.start()
    try:
        if config.index is not None:
            await swapper.swap_index()
        await swapper.swap()
    except BaseException:
        await server.stop(0)
        raise
    frozen = heap.settle()
    log.debug("startup heap: %d objects frozen out of the cyclic GC", frozen)
    metrics_port = metrics.serve(config.metrics_port, config.host) if config.metrics_port is not None else None
    for name in ("", SERVICE_NAME):
        await health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
    running = RunningServer(server, port, service, swapper, health_servicer, config.grace_seconds, metrics_port)
    if config.realtime_serving:
        running.scheduling = scheduling.serve_realtime()
        log.info("scheduling: %s", running.scheduling.describe())
    if service.cache is not None:
        log.info("cache-hit path: %s", HIT_PATH_LANGUAGE)
    if config.watch_seconds > 0:
        running.background.append(loop.create_task(swapper.watch(config.watch_seconds)))
    if follower is not None:
        running.background.append(follower.start())
    log.info("serving bundle %s on %s:%d (%s; profiles: %s)", service.serving.model.bundle_id, config.host, port,
             "TLS" if credentials else "plaintext", ", ".join(sorted(service.serving.policies)))
    return running


async def _follow(config: ServerConfig, metrics: Metrics, on_change):
    """The follower, and a config whose bundle and index are the downloaded release the alias names now."""
    from brandsafe.release.follow import AliasFollower

    if not config.registry:
        raise ValueError("follow: needs a registry URI (--registry)")
    follower = AliasFollower(config.registry, config.registry_model, config.follow, config.registry_cache, on_change,
                             interval=config.follow_seconds,
                             on_error=lambda kind: metrics.release_follow_errors.labels(kind=kind).inc())
    bundle_dir, index_dir, version = await asyncio.get_running_loop().run_in_executor(None, follower.fetch)
    log.info("registry %s: %s@%s is version %s", config.registry, config.registry_model, config.follow, version)
    return follower, dataclasses.replace(config, bundle=bundle_dir, index=index_dir)


async def serve_forever(config: ServerConfig) -> None:
    running = await start(config)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)

    def reload() -> None:
        swaps = [running.swapper.swap()] + ([running.swapper.swap_index()] if config.index is not None else [])
        for swap in swaps:
            task = loop.create_task(swap)
            task.add_done_callback(lambda t: t.cancelled() or t.exception())  # failures are logged by swap
    loop.add_signal_handler(signal.SIGHUP, reload)
    extra = f", metrics on :{running.metrics_port}/metrics" if running.metrics_port else ""
    print(f"brandsafe: serving {running.model.bundle_id} on {config.host}:{running.port}{extra} (Ctrl-C to stop)",
          flush=True)
    await stop.wait()
    log.info("shutting down: draining in-flight calls for up to %.1fs", config.grace_seconds)
    await running.stop()


def run(config: ServerConfig) -> None:
    import uvloop

    uvloop.run(serve_forever(config))
