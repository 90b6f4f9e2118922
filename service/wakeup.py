"""Idle cores kept ready for a benchmark run: a PM QoS CPU-latency request, where the OS allows it.

An idle core here halts, and waking it goes through the hypervisor: a process woken on an idle
core ran ~90 us later at the median and ~280 us at p99 (a ping-pong between two processes with
idle gaps, loadtest/TUNING.md §19). A request crosses several threads (gRPC's, grpc.aio's poller,
the event loop, an inference worker), and between requests the cores are idle, so every hop can
pay that. While a CPU-latency request of 0 us is held, idle cores poll instead of halting, and
the same ping-pong took ~11 us (p99 ~53 us).

It is machine-wide, so it is the host's to set, not the server's: `brandsafe serve` holds none
(a host that wants it uses its own tuning, e.g. tuned's latency-performance profile; README,
Operations). The benchmarks hold it for a whole run, every peer alike (loadtest/paired.py,
wakeup_bench). The kernel keeps the request while /dev/cpu_dma_latency stays open, and drops it
when the file is closed (or the process dies), so nothing is left behind. The cost is power: idle
cores spin, and on a VM the host sees its vCPUs busy. Needs root (the device is 0600 root);
without it nothing changes and `hold` says why.
"""
from __future__ import annotations

import os
import struct
from dataclasses import dataclass
from pathlib import Path

DEVICE = Path("/dev/cpu_dma_latency")
NO_LIMIT_US = 2_000_000_000  # what the device reads while no process holds a request


@dataclass(frozen=True)
class Outcome:
    held: bool
    limit_us: int | None = None
    reason: str = ""  # why not, when not

    def describe(self) -> str:
        if self.held:
            return f"CPU wake-up latency held at {self.limit_us} us (idle cores poll instead of halting)"
        return f"CPU wake-up as the OS sets it ({self.reason})"


class CpuWakeup:
    """One PM QoS CPU-latency request: held from `hold` until `release` (or the process ends)."""

    def __init__(self, device: Path = DEVICE):
        self.device = device
        self._fd: int | None = None

    def hold(self, limit_us: int = 0) -> Outcome:
        if limit_us < 0:
            raise ValueError(f"limit_us: {limit_us} is negative")
        if self._fd is not None:
            return Outcome(True, limit_us)
        try:
            fd = os.open(self.device, os.O_WRONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            return Outcome(False, reason=f"{self.device} does not exist (not Linux, or a container without it)")
        except PermissionError:
            return Outcome(False, reason=f"{self.device} needs root; run as root to hold idle cores ready")
        try:
            os.write(fd, struct.pack("=i", limit_us))
        except OSError as exc:
            os.close(fd)
            return Outcome(False, reason=f"writing {self.device} failed: {exc.strerror}")
        self._fd = fd
        return Outcome(True, limit_us)

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    @property
    def holding(self) -> bool:
        return self._fd is not None

    def __enter__(self) -> "CpuWakeup":
        return self

    def __exit__(self, *exc) -> None:
        self.release()


def current_limit_us(device: Path = DEVICE) -> int | None:
    """The machine's effective CPU-latency limit (the strictest request held), or None where it
    cannot be read."""
    try:
        with open(device, "rb") as file:
            raw = file.read(4)
    except OSError:
        return None
    return struct.unpack("=i", raw)[0] if len(raw) == 4 else None
