"""Server lifecycle: load and warm the bundle, then serve BrandSafety, health and reflection."""
from __future__ import annotations

import asyncio
import logging
import signal
from dataclasses import dataclass
from pathlib import Path

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from brandsafe.v1 import brandsafe_pb2, brandsafe_pb2_grpc

from .batcher import MicroBatcher
from .model import LoadedBundle
from .policy import DEFAULT_POLICY_FILE, load_policies
from .servicer import BrandSafetyService, Serving

log = logging.getLogger(__name__)
SERVICE_NAME = brandsafe_pb2.DESCRIPTOR.services_by_name["BrandSafety"].full_name
MAX_MESSAGE_BYTES = 256 * 1024  # a bid request's page context is a few KB; anything larger is abuse


@dataclass
class ServerConfig:
    bundle: Path
    policies: Path = DEFAULT_POLICY_FILE
    host: str = "127.0.0.1"
    port: int = 50051
    max_batch: int = 32
    max_wait_us: int = 2000
    intra_op_threads: int = 0
    device: str = "auto"
    report_floor: float = 0.05
    grace_seconds: float = 5.0


class RunningServer:
    """A started server and what it owns; `stop()` drains in-flight calls within the grace period."""

    def __init__(self, server: grpc.aio.Server, port: int, service: BrandSafetyService,
                 health_servicer: health.aio.HealthServicer, grace: float):
        self.server, self.port, self.service = server, port, service
        self.health = health_servicer
        self.grace = grace

    @property
    def model(self) -> LoadedBundle:
        return self.service.serving.model

    async def stop(self) -> None:
        await self.health.enter_graceful_shutdown()
        await self.server.stop(self.grace)
        serving = self.service.serving
        if serving is not None:
            await serving.batcher.stop()
            serving.model.close()

    async def wait(self) -> None:
        await self.server.wait_for_termination()


def _batch_sizes(max_batch: int) -> list[int]:
    sizes, size = [], 1
    while size < max_batch:
        sizes.append(size)
        size *= 2
    return sizes + [max_batch]


async def start(config: ServerConfig) -> RunningServer:
    server = grpc.aio.server(options=[("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
                                      ("grpc.so_reuseport", 0)])
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    for name in ("", SERVICE_NAME):
        await health_servicer.set(name, health_pb2.HealthCheckResponse.NOT_SERVING)
    reflection.enable_server_reflection([SERVICE_NAME, health.SERVICE_NAME, reflection.SERVICE_NAME], server)
    service = BrandSafetyService(config.report_floor)
    brandsafe_pb2_grpc.add_BrandSafetyServicer_to_server(service, server)
    port = server.add_insecure_port(f"{config.host}:{config.port}")
    if port == 0:
        raise OSError(f"cannot bind {config.host}:{config.port}")
    # Up early so health checks see NOT_SERVING (not a refused connection) while the bundle loads.
    await server.start()

    loop = asyncio.get_running_loop()
    try:
        model = await loop.run_in_executor(None, LoadedBundle, config.bundle, config.intra_op_threads, config.device)
        policies = load_policies(config.policies, model.labels, model.thresholds)
        await loop.run_in_executor(None, model.warm_up, _batch_sizes(config.max_batch))
    except BaseException:
        await server.stop(0)
        raise
    batcher = MicroBatcher(model.score, config.max_batch, config.max_wait_us)
    batcher.start()
    service.serving = Serving(model, policies, batcher)
    for name in ("", SERVICE_NAME):
        await health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
    log.info("serving bundle %s on %s:%d (profiles: %s)", model.bundle_id, config.host, port, ", ".join(sorted(policies)))
    return RunningServer(server, port, service, health_servicer, config.grace_seconds)


async def serve_forever(config: ServerConfig) -> None:
    running = await start(config)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    print(f"brandsafe: serving {running.model.bundle_id} on {config.host}:{running.port} (Ctrl-C to stop)", flush=True)
    await stop.wait()
    log.info("shutting down: draining in-flight calls for up to %.1fs", config.grace_seconds)
    await running.stop()


def run(config: ServerConfig) -> None:
    import uvloop

    uvloop.run(serve_forever(config))
