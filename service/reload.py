"""Hot swap: load, verify and warm a bundle (or a retrieval index) off the serving path, then swap
it in atomically.

Requests capture the Serving they started on, so in-flight ones finish on the old bundle; the
old batcher is drained before its model is closed. Any failure (missing file, bad sha256,
unknown schema, broken policy file, warm-up error) leaves the old bundle serving and is logged.
An index swaps alone: the model, its batcher and its warm state stay as they are.
"""
from __future__ import annotations

import asyncio
import dataclasses
import hmac
import logging
from pathlib import Path

import grpc

from brandsafe.bundle import MANIFEST
from brandsafe.v1 import brandsafe_pb2 as pb
from brandsafe.v1 import brandsafe_pb2_grpc as pb_grpc

from . import heap

log = logging.getLogger(__name__)


class BundleSwapper:
    def __init__(self, service, load_serving, default_path: Path, metrics=None, index_path: Path | None = None,
                 load_index=None):
        self.service = service
        self.load_serving = load_serving  # async (bundle_path) -> Serving, loaded and warmed
        self.default_path = Path(default_path)
        self.metrics = metrics
        self.index_path = Path(index_path) if index_path else None
        self.load_index = load_index      # async (index_path) -> Retriever, verified and warmed
        self.retriever = None             # the index every new Serving gets
        self._lock = asyncio.Lock()  # one swap at a time, bundle or index

    async def swap(self, bundle_path: Path | None = None) -> tuple[str, str]:
        path = Path(bundle_path or self.default_path)
        async with self._lock:
            new, old = await self._swap_bundle(path, self.retriever)
        return new, old

    async def swap_release(self, bundle_path: Path, index_path: Path | None) -> tuple[str, str]:
        """A registry release: model and index move together in one step, so no request is ever
        scored by the new model with the old index, or the reverse."""
        async with self._lock:
            retriever = None
            if index_path is not None:
                if self.load_index is None:
                    raise ValueError("this server cannot load retrieval indexes")
                retriever = await self.load_index(Path(index_path))
            result = await self._swap_bundle(Path(bundle_path), retriever)
            self.retriever = retriever
            self.default_path, self.index_path = Path(bundle_path), Path(index_path) if index_path else None
        return result

    async def _swap_bundle(self, path: Path, retriever) -> tuple[str, str]:
        old = self.service.serving
        try:
            new = dataclasses.replace(await self.load_serving(path), retriever=retriever)
        except Exception as exc:  # noqa: BLE001 - whatever went wrong, the old bundle keeps serving
            self._count("failed")
            log.error("bundle reload from %s refused: %s; still serving %s", path, exc,
                      old.model.bundle_id if old else "nothing", extra={"bundle_path": str(path)})
            raise
        self.service.serving = new
        self._count("ok")
        if self.metrics:
            self.metrics.set_bundle(new.model.bundle_id)
        log.info("swapped bundle %s → %s", old.model.bundle_id if old else "-", new.model.bundle_id,
                 extra={"bundle_id": new.model.bundle_id})
        if old is not None:
            asyncio.get_running_loop().create_task(self._retire(old))
        return new.model.bundle_id, old.model.bundle_id if old else ""

    async def swap_index(self, index_path: Path | None = None) -> tuple[str, str]:
        """Load, verify and warm an index, then give it to new requests; (new, previous) versions."""
        path = index_path or self.index_path
        if self.load_index is None or path is None:
            raise ValueError("index_path: this server was started without --index and none was given")
        path = Path(path)
        async with self._lock:
            previous = self.retriever.version if self.retriever else ""
            try:
                retriever = await self.load_index(path)
            except Exception as exc:  # noqa: BLE001 - whatever went wrong, the old index keeps serving
                self._count("failed", index=True)
                log.error("index reload from %s refused: %s; still serving index %s", path, exc, previous or "none",
                          extra={"index_path": str(path)})
                raise
            self.retriever = retriever
            if self.service.serving is not None:
                self.service.serving = dataclasses.replace(self.service.serving, retriever=retriever)
            self._count("ok", index=True)
            log.info("swapped index %s → %s", previous or "-", retriever.version)
        return retriever.version, previous

    async def _retire(self, old) -> None:
        await old.batcher.drain()
        await old.batcher.stop()
        old.model.close()
        del old
        heap.settle()  # the retired bundle is collected, the new one frozen

    def _count(self, result: str, index: bool = False) -> None:
        if self.metrics:
            (self.metrics.index_reloads if index else self.metrics.reloads).labels(result=result).inc()

    async def watch(self, interval: float) -> None:
        """Swap whenever the bundle's (or the index's) manifest changes (e.g. a symlink re-pointed,
        or a new folder renamed into place)."""
        watched = [(self.default_path, self.swap)]
        if self.index_path is not None:
            watched.append((self.index_path, self.swap_index))
        last = {path: _fingerprint(path) for path, _ in watched}
        while True:
            await asyncio.sleep(interval)
            for path, swap in watched:
                current = _fingerprint(path)
                if current != last[path] and current is not None:
                    last[path] = current
                    try:
                        await swap()
                    except Exception:  # noqa: BLE001 - already logged; keep watching
                        pass


def _fingerprint(path: Path):
    manifest = Path(path) / MANIFEST
    try:
        stat = manifest.stat()
        return (str(manifest.resolve()), stat.st_mtime_ns, stat.st_size)
    except OSError:
        return None


class AdminService(pb_grpc.AdminServicer):
    def __init__(self, swapper: BundleSwapper, token: str):
        if not token:
            raise ValueError("the admin service needs a token")
        self.swapper = swapper
        self._expected = f"Bearer {token}".encode()

    async def ReloadBundle(self, request: pb.ReloadBundleRequest, context: grpc.aio.ServicerContext):
        bundle_id, previous = await self._swap(context, self.swapper.swap, "bundle_path", request.bundle_path, "bundle")
        return pb.ReloadBundleResponse(bundle_id=bundle_id, previous_bundle_id=previous)

    async def ReloadIndex(self, request: pb.ReloadIndexRequest, context: grpc.aio.ServicerContext):
        version, previous = await self._swap(context, self.swapper.swap_index, "index_path", request.index_path, "index")
        return pb.ReloadIndexResponse(index_version=version, previous_index_version=previous)

    async def _swap(self, context: grpc.aio.ServicerContext, swap, field: str, path: str, what: str):
        await self._authorize(context)
        try:
            return await swap(Path(path) if path else None)
        except Exception as exc:  # noqa: BLE001
            await context.abort(grpc.StatusCode.FAILED_PRECONDITION,
                                f"{field}: not loaded ({exc}); the previous {what} is still serving")

    async def _authorize(self, context: grpc.aio.ServicerContext) -> None:
        supplied = dict(context.invocation_metadata()).get("authorization", "")
        if not hmac.compare_digest(supplied.encode(), self._expected):
            await context.abort(grpc.StatusCode.UNAUTHENTICATED, "authorization: a valid 'Bearer <token>' is required")
