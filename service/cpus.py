"""How many CPUs this process may use: its affinity mask, capped by the container's CPU quota.

os.cpu_count() reports the host's cores: in a pod limited to 2 CPUs on a 64-core node it says 64,
and 64 inference workers with 64 ONNX Runtime threads would be throttled by the CFS quota every
period (the p99 spikes a quota produces). The quota is read from cgroup v2 (`cpu.max`) or v1
(`cpu.cfs_quota_us` / `cpu.cfs_period_us`), rounded down (1.5 CPUs run one worker without
throttling, two would be throttled), never below one.
"""
from __future__ import annotations

import math
import os
from pathlib import Path

CGROUP_ROOT = Path("/sys/fs/cgroup")


def cgroup_cpu_quota(root: Path | None = None) -> float | None:
    """The CPU quota in CPUs (e.g. 1.5), or None when unlimited or unreadable."""
    root = root or CGROUP_ROOT
    try:
        quota, period = (root / "cpu.max").read_text().split()[:2]  # cgroup v2: "max 100000" or "150000 100000"
        return None if quota == "max" else int(quota) / int(period)
    except (OSError, ValueError):
        pass
    for folder in ("cpu", "cpu,cpuacct"):  # cgroup v1
        try:
            quota = int((root / folder / "cpu.cfs_quota_us").read_text())
            period = int((root / folder / "cpu.cfs_period_us").read_text())
        except (OSError, ValueError):
            continue
        return None if quota <= 0 or period <= 0 else quota / period
    return None


def available_cpus(root: Path | None = None) -> int:
    """CPUs to size worker and thread counts by: min(affinity, floor(quota)), at least 1."""
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    quota = cgroup_cpu_quota(root)
    if quota is not None:
        cpus = min(cpus, max(1, math.floor(quota)))
    return max(1, cpus)
