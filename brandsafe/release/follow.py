"""Follow a registry alias (normally `champion`) from a running server and hand each new release to
the server's hot swap.

Every `interval` seconds the follower asks the registry which version the alias names; when it
moves, the release is downloaded into a local cache, verified (sha256 manifests of bundle and
index), and `on_change(bundle_dir, index_dir, version)` is awaited. Registry calls are blocking
(sqlite or HTTP), so they run in a worker thread and the event loop keeps serving. Whatever goes
wrong (registry down, bad artifacts, a swap that refuses the bundle) is logged and counted, and the
current release keeps serving; a version that failed is not retried until the alias moves again,
so a broken release costs one log line, not one every poll.
"""
from __future__ import annotations

import asyncio
import inspect
import logging
import shutil
from collections import Counter
from pathlib import Path
from typing import Awaitable, Callable

from .registry import Registry

log = logging.getLogger(__name__)

DEFAULT_INTERVAL = 5.0

OnChange = Callable[[Path, "Path | None", str], "Awaitable[object] | object"]


class AliasFollower:
    def __init__(self, registry_uri: str, model_name: str, alias: str, cache_dir: str | Path, on_change: OnChange,
                 interval: float = DEFAULT_INTERVAL, current_version: str | None = None,
                 on_error: Callable[[str], None] | None = None):
        self.registry_uri = registry_uri
        self.model_name = model_name
        self.alias = alias
        self.cache_dir = Path(cache_dir)
        self.on_change = on_change
        self.interval = interval
        self.version = current_version   # the version serving now
        self.previous_version: str | None = None
        self.failed_version: str | None = None
        self.errors: Counter[str] = Counter()  # by kind: registry, artifacts, swap
        self.on_error = on_error  # e.g. a Prometheus counter's labels(kind=…).inc
        self._registry: Registry | None = None
        self._task: asyncio.Task | None = None

    # -- start-up (blocking, before the server serves) ---------------------------------------------

    def fetch(self) -> tuple[Path, Path | None, str]:
        """Download what the alias names now: (bundle_dir, index_dir or None, version). For start-up;
        raises when there is nothing to serve, and the caller decides whether that is fatal."""
        version = self._registry_client().get(self.alias).version
        bundle_dir, index_dir = self._download(version)
        self.version = version
        return bundle_dir, index_dir, version

    # -- following ---------------------------------------------------------------------------------

    def start(self) -> asyncio.Task:
        self._task = asyncio.get_running_loop().create_task(self.run(), name=f"follow-{self.alias}")
        return self._task

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            await self.poll_once()

    async def poll_once(self) -> bool:
        """One look at the alias; True when a new release was handed to on_change and accepted."""
        try:
            version = await asyncio.to_thread(self._alias_version)
        except Exception as exc:  # noqa: BLE001 - a registry outage must never touch serving
            self._fail("registry", f"registry {self.registry_uri} unreachable or failing: {exc}")
            return False
        if version is None or version == self.version or version == self.failed_version:
            return False
        try:
            bundle_dir, index_dir = await asyncio.to_thread(self._download, version)
        except Exception as exc:  # noqa: BLE001
            self.failed_version = version
            self._fail("artifacts", f"{self.alias} → version {version}: not fetched ({exc}); "
                                    f"still serving version {self.version}")
            return False
        try:
            result = self.on_change(bundle_dir, index_dir, version)
            if inspect.isawaitable(result):
                await result
        except Exception as exc:  # noqa: BLE001
            self.failed_version = version
            shutil.rmtree(self.cache_dir / f"v{version}", ignore_errors=True)  # refused: nothing will read it
            self._fail("swap", f"{self.alias} → version {version}: refused by the server ({exc}); "
                               f"still serving version {self.version}")
            return False
        log.info("following %s: now serving release version %s (was %s)", self.alias, version, self.version,
                 extra={"release_version": version})
        self.previous_version, self.version, self.failed_version = self.version, version, None
        await asyncio.to_thread(self._prune)
        return True

    # -- internals ---------------------------------------------------------------------------------

    def _registry_client(self) -> Registry:
        if self._registry is None:
            self._registry = Registry(self.registry_uri, self.model_name)
        return self._registry

    def _alias_version(self) -> str | None:
        return self._registry_client().alias_version(self.alias)

    def _download(self, version: str) -> tuple[Path, Path | None]:
        # Registry.download verifies every manifest and renames into place only when all is well.
        return self._registry_client().download(version, self.cache_dir / f"v{version}")

    def _fail(self, kind: str, message: str) -> None:
        self.errors[kind] += 1
        log.error(message, extra={"follow_error": kind})
        if self.on_error is not None:
            self.on_error(kind)

    def _prune(self) -> None:
        # Keep the release serving and the one before it (its requests may still be finishing).
        keep = {f"v{self.version}", f"v{self.previous_version}"}
        for path in self.cache_dir.glob("v*"):
            if path.is_dir() and path.name not in keep:
                shutil.rmtree(path, ignore_errors=True)
