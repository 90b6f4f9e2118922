"""Serving threads at real-time priority, where the OS allows it: no time slicing between them.

On two cores the event loop, gRPC's threads, grpc.aio's poller and two inference workers are often
all runnable at once. The fair scheduler then cuts a 3-ms ONNX Runtime batch into ~1.4-ms slices
and makes every hop of a request (socket → poller → loop → worker → loop → socket) wait for one.
In SCHED_FIFO at one priority no serving thread preempts another: a batch runs to its end, a
woken request-path thread takes the next free core, and everything at normal priority comes after.
Measured, that cut the service's p99 at 100/s from 15.3 to 10.1 ms and doubled its max rate within
20 ms, 150 to 300/s, at the same CPU per request (loadtest/TUNING.md §17). Every serving thread blocks between requests or batches, so none
can hold a core for longer than its longest batch; and the kernel keeps 5% of each second for
normal threads whatever real-time threads do (sched_rt_runtime_us).

Threads raised: the event loop (the calling thread), gRPC core's threads by the names it gives
them, grpc.aio's completion-queue poller (a Python thread), and the inference workers; new ones
take the class when they start (`as_serving_work`, the workers' initializer). Bundle loading and
other background work runs at normal priority (`as_normal_work`), so a reload never competes with
requests. Needs CAP_SYS_NICE or an RLIMIT_RTPRIO of at least 1; without either, nothing changes
and `raise_serving_threads` says why.

Opt-in (`brandsafe serve --scheduling realtime`), for hosts that run nothing else that matters: a
real-time thread that stops blocking takes its core from every normal process (sshd, the kubelet)
but for the 5% the kernel keeps. `serve_realtime` raises the threads under a guard: RLIMIT_RTTIME
makes the kernel signal the process (SIGXCPU) once any of its real-time threads has run RUN_LIMIT_US
without blocking, and the handler puts every thread of the process back to normal scheduling, logged.
The handler runs on the event loop's thread (Python runs signal handlers on the main thread; the
loop's wake-up fd wakes it). Should every core be held by spinning serving threads, that thread
could not run either; then the hard limit, KILL_AFTER_US, ends the process (SIGKILL), for its
supervisor to restart, rather than leave the host starved.
"""
from __future__ import annotations

import logging
import os
import resource
import signal
import sys
import threading
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

SERVING_PRIORITY = 1  # the lowest SCHED_FIFO priority: above every normal thread, below any other RT work
# Thread names gRPC core (1.6x-1.8x, EventEngine) gives the threads that poll sockets and run timers,
# and the OS names our inference workers take (batcher.start_inference_thread).
SERVING_THREAD_PREFIXES = ("event_engine", "grpc_", "lifeguard", "inference-")
# grpc.aio's poller is a Python thread; Python names it after its target.
GRPC_PYTHON_THREAD_TARGETS = ("_poll_wrapper",)

# The guard's limit: a serving thread blocks between batches, and a batch here takes milliseconds
# (tens at batch 32 on CPU), so half a second of real-time CPU without blocking means a thread that
# no longer yields, or a saturation that never lets the loop idle; either way the host's other
# processes now need the core more.
RUN_LIMIT_US = 500_000
KILL_AFTER_US = 5_000_000  # the last resort, when the demotion itself cannot run (module docstring)

_serving_realtime = False  # whether this process's serving threads were raised
_guard: tuple[tuple[int, int], object] | None = None  # RLIMIT_RTTIME and SIGXCPU handler before the guard
demoted = ""  # why the guard put every thread back to normal scheduling, once it has


@dataclass(frozen=True)
class Outcome:
    realtime: bool
    threads: tuple[str, ...] = ()  # names of the threads raised, the event loop first
    reason: str = ""               # why not, when not

    def describe(self) -> str:
        if self.realtime:
            return (f"serving threads at SCHED_FIFO {SERVING_PRIORITY} ({len(self.threads)} now: event loop, "
                    f"{', '.join(sorted(set(self.threads[1:])))}); bundle loading at normal priority")
        return f"normal scheduling for every thread ({self.reason})"


def supported() -> bool:
    return sys.platform.startswith("linux") and hasattr(os, "sched_setscheduler")


def raise_serving_threads(thread_names: dict[int, str] | None = None,
                          python_threads: list[threading.Thread] | None = None) -> Outcome:
    """Put the calling thread (the event loop), gRPC's threads and the inference workers of this
    process in SCHED_FIFO at SERVING_PRIORITY. Call it from the event loop's thread once the gRPC
    server has started (so its threads exist). For tests: `thread_names` (tid → OS name; by
    default /proc/self/task) and `python_threads` (by default threading.enumerate())."""
    global _serving_realtime
    if not supported():
        return Outcome(False, reason="not Linux")
    param = os.sched_param(SERVING_PRIORITY)
    try:
        os.sched_setscheduler(0, os.SCHED_FIFO, param)  # 0: the calling thread
    except OSError as exc:
        return Outcome(False, reason=f"real-time scheduling not permitted: {exc.strerror}; "
                                     "grant CAP_SYS_NICE or an RLIMIT_RTPRIO of 1 to enable it")
    _serving_realtime = True
    names = thread_names if thread_names is not None else _threads_of_this_process()
    candidates = {tid: name for tid, name in names.items() if name.startswith(SERVING_THREAD_PREFIXES)}
    pollers = tuple(f"({target})" for target in GRPC_PYTHON_THREAD_TARGETS)
    for thread in python_threads if python_threads is not None else threading.enumerate():
        if thread.native_id and thread.name.endswith(pollers):
            candidates[thread.native_id] = "grpc.aio poller"
    raised = ["event loop"]
    for tid, name in sorted(candidates.items()):
        if tid == _own_tid():
            continue
        try:
            os.sched_setscheduler(tid, os.SCHED_FIFO, param)
        except (ProcessLookupError, PermissionError):  # the thread ended meanwhile; or a sandbox refuses it
            continue
        raised.append(name.rstrip("0123456789"))
    return Outcome(True, tuple(raised))


def serve_realtime(run_limit_us: int = RUN_LIMIT_US) -> Outcome:
    """`raise_serving_threads` under the guard (the module's docstring). The signal handler runs on
    the main thread, so this must be called there: the event loop of `brandsafe serve`."""
    if not supported():
        return Outcome(False, reason="not Linux")
    if threading.current_thread() is not threading.main_thread():
        return Outcome(False, reason="its guard's SIGXCPU handler needs the main thread")
    _install_guard(run_limit_us)
    outcome = raise_serving_threads()
    if not outcome.realtime:
        _remove_guard()
    return outcome


def demote(reason: str) -> int:
    """Every thread of this process back to normal scheduling, and new inference threads normal
    too; the number of threads demoted."""
    global _serving_realtime, demoted
    _serving_realtime = False
    demoted = reason
    count = 0
    for tid in _threads_of_this_process():
        try:
            if os.sched_getscheduler(tid) != os.SCHED_OTHER:
                os.sched_setscheduler(tid, os.SCHED_OTHER, os.sched_param(0))
                count += 1
        except (ProcessLookupError, PermissionError):  # the thread ended meanwhile
            continue
    log.warning("scheduling: %s; %d thread(s) back to normal scheduling", reason, count)
    return count


def _install_guard(run_limit_us: int) -> None:
    global _guard
    if _guard is not None:
        return
    previous_limit = resource.getrlimit(resource.RLIMIT_RTTIME)
    hard = KILL_AFTER_US if previous_limit[1] == resource.RLIM_INFINITY else min(KILL_AFTER_US, previous_limit[1])
    soft = min(run_limit_us, hard)

    def on_sigxcpu(signum, frame) -> None:
        demote(f"a real-time thread ran {soft / 1000:g} ms without blocking (RLIMIT_RTTIME)")

    # The handler first: SIGXCPU's default action ends the process.
    previous_handler = signal.signal(signal.SIGXCPU, on_sigxcpu)
    resource.setrlimit(resource.RLIMIT_RTTIME, (soft, hard))
    _guard = (previous_limit, previous_handler)


def _remove_guard() -> None:
    global _guard
    if _guard is None:
        return
    previous_limit, previous_handler = _guard
    # The limit first, then the handler: the kernel raises the soft limit by a second each time it
    # signals, so the previous one is set back, not left raised. Raising the hard limit back needs
    # CAP_SYS_RESOURCE; without it the process keeps KILL_AFTER_US, which only real-time threads meet.
    try:
        resource.setrlimit(resource.RLIMIT_RTTIME, previous_limit)
    except (ValueError, PermissionError):
        hard = resource.getrlimit(resource.RLIMIT_RTTIME)[1]
        resource.setrlimit(resource.RLIMIT_RTTIME, (hard, hard))
    signal.signal(signal.SIGXCPU, previous_handler)
    _guard = None


def lower_calling_thread() -> None:
    """Undo `serve_realtime` (or `raise_serving_threads`) for the calling thread: a server stopped
    inside a process that goes on (tests, notebooks) leaves that process's thread, its
    RLIMIT_RTTIME and its SIGXCPU handler as it found them."""
    global _serving_realtime
    _serving_realtime = False
    as_normal_work()
    _remove_guard()


def as_serving_work() -> None:
    """Initializer of the threads that score requests: the serving class (real-time once
    `raise_serving_threads` succeeded), whatever the thread inherited from the one that started it."""
    if _serving_realtime:
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(SERVING_PRIORITY))
    else:
        as_normal_work()


def as_normal_work() -> None:
    """Initializer of background work threads: normal scheduling, whatever they inherited (a
    thread started from a real-time event loop inherits its class)."""
    if supported() and os.sched_getscheduler(0) != os.SCHED_OTHER:
        os.sched_setscheduler(0, os.SCHED_OTHER, os.sched_param(0))


def _own_tid() -> int:
    return threading.get_native_id()


def _threads_of_this_process() -> dict[int, str]:
    names = {}
    for entry in Path("/proc/self/task").iterdir():
        try:
            names[int(entry.name)] = (entry / "comm").read_text().strip()
        except (FileNotFoundError, ProcessLookupError):
            continue
    return names
