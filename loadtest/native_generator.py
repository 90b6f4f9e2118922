"""The C++ open-loop generator (loadtest/native/openloop.cc) as a drop-in for openloop.py's sender.

Python's own generator costs 0.3-0.5 ms of CPU per request and lags 1-1.5 ms at p99 on two cores,
on the same cores as the server it measures; the C++ one sends the identical schedules (same
Poisson seeds, latency from the intended send time) for ~0.1 ms of CPU per request. It is built on
first use with g++ and Debian's libgrpc++-dev; where it cannot be built, `pick_generator` says why
and the harnesses fall back to openloop.py.
"""
from __future__ import annotations

import json
import math
import os
import shutil
import struct
import subprocess
import sys
from pathlib import Path

from . import openloop

NATIVE_DIR = Path(__file__).resolve().parent / "native"
NATIVE_SOURCE = NATIVE_DIR / "openloop.cc"
NATIVE_BINARY = NATIVE_DIR / "build" / "openloop"
# The generator stands for bidders on other machines: nothing on this one should delay its sends,
# so it runs one real-time priority above a server's serving threads (service/scheduling.py), where
# the OS permits it. Every peer meets the same generator.
GENERATOR_PRIORITY = 2


class NativeUnavailable(RuntimeError):
    """The C++ generator cannot be built here (no g++, or no libgrpc++-dev); the message says why."""


def build_native(force: bool = False) -> Path:
    """Build loadtest/native/openloop.cc on first use (or when the source is newer) and return the
    binary. Needs g++, pkg-config and gRPC C++ (Debian: apt-get install g++ pkg-config libgrpc++-dev)."""
    if not force and NATIVE_BINARY.exists() and NATIVE_BINARY.stat().st_mtime >= NATIVE_SOURCE.stat().st_mtime:
        return NATIVE_BINARY
    compiler = os.environ.get("CXX") or shutil.which("g++") or shutil.which("c++")
    if not compiler:
        raise NativeUnavailable("no C++ compiler (g++) on PATH")
    if not shutil.which("pkg-config"):
        raise NativeUnavailable("no pkg-config on PATH (Debian: apt-get install pkg-config libgrpc++-dev)")
    flags = subprocess.run(["pkg-config", "--cflags", "--libs", "grpc++"], capture_output=True, text=True)
    if flags.returncode != 0:
        raise NativeUnavailable("gRPC C++ not found by pkg-config (Debian: apt-get install libgrpc++-dev)")
    NATIVE_BINARY.parent.mkdir(exist_ok=True)
    partial = NATIVE_BINARY.with_suffix(f".{os.getpid()}.tmp")
    command = [compiler, "-O2", "-std=c++17", str(NATIVE_SOURCE), *flags.stdout.split(), "-o", str(partial)]
    built = subprocess.run(command, capture_output=True, text=True)
    if built.returncode != 0:
        partial.unlink(missing_ok=True)
        raise NativeUnavailable(f"building {NATIVE_SOURCE.name} failed:\n{built.stderr[-2000:]}")
    partial.replace(NATIVE_BINARY)  # atomic: a concurrent run never executes a half-written binary
    return NATIVE_BINARY


def write_requests(payloads: list[bytes], path: Path) -> Path:
    """The native generator's input: [uint32 little-endian length][serialized request] records."""
    with open(path, "wb") as out:
        for payload in payloads:
            out.write(struct.pack("<I", len(payload)))
            out.write(payload)
    return path


def fallback_field_number() -> int:
    from brandsafe.v1 import brandsafe_pb2 as pb

    return pb.ClassifyResponse.DESCRIPTOR.fields_by_name["fallback"].number


class NativeGenerator:
    """The C++ open-loop generator as a child process: one JSON command per step on its stdin (the
    intended send offsets, so it replays exactly the schedule the Python generator would), one JSON
    result per step on its stdout. Python only waits on the pipe meanwhile, and reads the server's
    CPU around each step as openloop.run_step does."""

    def __init__(self, target: str, requests_file: Path, method: str = openloop.CLASSIFY_METHOD,
                 check_fallback: bool = True,
                 binary: Path | None = None, late_ms: float | None = None):
        argv = [str(binary or build_native()), "--target", target, "--requests", str(requests_file),
                "--method", method, "--serve"]
        if late_ms is not None:  # each step also counts its requests over late_ms (StepResult.late)
            argv += ["--late-ms", repr(float(late_ms))]
        if check_fallback:  # a fallback answer is not a verdict: counted as FALLBACK, like classify_check
            argv += ["--fallback-field", str(fallback_field_number())]
        self.proc, self.realtime = _start_realtime(argv)
        hello = self.proc.stdout.readline()
        if not hello:
            self.proc.wait(timeout=10)
            raise RuntimeError(f"native generator exited ({self.proc.returncode}) before connecting to {target}")
        self.info = json.loads(hello)
        if not self.realtime:
            print("native generator: real-time priority not permitted here (needs CAP_SYS_NICE); its send lag "
                  "(lag99 column) weighs on every peer's latency", file=sys.stderr, flush=True)

    def raw_step(self, offsets, rate: float, first: int = 0, timeout_s: float = 1.0) -> dict:
        command = {"rate": rate, "first": first, "timeout_s": timeout_s,
                   "offsets": [round(float(x), 7) for x in offsets]}
        self.proc.stdin.write(json.dumps(command) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"native generator exited ({self.proc.wait(timeout=10)}) mid-step")
        return json.loads(line)

    def step(self, offsets, rate: float, first: int = 0, timeout_s: float = 1.0,
             server_pid: int | None = None) -> openloop.StepResult:
        srv0 = openloop.process_tree_cpu_s(server_pid) if server_pid else None
        raw = self.raw_step(offsets, rate, first, timeout_s)
        srv1 = openloop.process_tree_cpu_s(server_pid) if server_pid else None
        return step_result(raw, server_cpu_s=(srv1 - srv0) if server_pid else None)

    def close(self) -> None:
        if self.proc.poll() is None:
            try:
                self.proc.stdin.write(json.dumps({"quit": True}) + "\n")
                self.proc.stdin.close()
                self.proc.wait(timeout=10)
            except (OSError, subprocess.TimeoutExpired):
                self.proc.kill()
                self.proc.wait(timeout=10)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def step_result(raw: dict, server_cpu_s: float | None = None) -> openloop.StepResult:
    """The native generator's step JSON as an openloop.StepResult (null percentiles are +inf)."""
    wall = raw["wall_s"]
    return openloop.StepResult(
        offered_rps=raw["offered_rps"], sent=raw["sent"], ok=raw["ok"], achieved_rps=raw["achieved_rps"],
        latency_ms={k: math.inf if v is None else v for k, v in raw["latency_ms"].items()},
        errors=dict(raw["errors"]), send_lag_p99_ms=raw["send_lag_p99_ms"],
        generator_cpu_pct=raw["generator_cpu_pct"],
        server_cpu_pct=100.0 * server_cpu_s / wall if server_cpu_s is not None and wall > 0 else None, wall_s=wall,
        late_ms=raw.get("late_ms"), late=raw.get("late"))


def _start_realtime(argv: list[str]) -> tuple[subprocess.Popen, bool]:
    """The generator at SCHED_FIFO GENERATOR_PRIORITY (its threads inherit it), or at normal
    priority where that is not permitted; and which of the two."""
    def realtime() -> None:
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(GENERATOR_PRIORITY))

    pipes = dict(stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    if hasattr(os, "sched_setscheduler"):
        try:
            return subprocess.Popen(argv, preexec_fn=realtime, **pipes), True
        except (subprocess.SubprocessError, PermissionError):
            pass
    return subprocess.Popen(argv, **pipes), False


def pick_generator(choice: str) -> str:
    """"native" when the C++ generator builds here, else "python" (with the reason, on stderr)."""
    if choice == "python":
        return "python"
    try:
        build_native()
        return "native"
    except NativeUnavailable as exc:
        if choice == "native":
            sys.exit(f"--generator native: {exc}")
        print(f"native generator unavailable ({exc}); falling back to the Python generator, whose own send lag "
              "(~1-1.5 ms p99 on 2 cores) and CPU (~0.3-0.5 ms a request) weigh on the measured server",
              file=sys.stderr, flush=True)
        return "python"
