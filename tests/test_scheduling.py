"""The request path runs ahead of inference (service/scheduling.py): which threads are raised, which
are put back, and what a server without the privilege does."""
from __future__ import annotations

import os
import re
import resource
import signal
import sys
import threading
from pathlib import Path

import grpc
import pytest
from conftest import ServerProcess

from brandsafe.service import scheduling
from brandsafe.service.batcher import start_inference_thread
from brandsafe.v1 import brandsafe_pb2 as pb
from brandsafe.v1 import brandsafe_pb2_grpc

pytestmark = pytest.mark.skipif(not scheduling.supported(), reason="Linux scheduling classes")


def _realtime_permitted() -> bool:
    """Whether this process may use SCHED_FIFO (root or CAP_SYS_NICE), probed on a throwaway thread."""
    permitted = []

    def probe():
        try:
            os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(1))
            permitted.append(True)
        except PermissionError:
            permitted.append(False)

    thread = threading.Thread(target=probe)
    thread.start()
    thread.join()
    return permitted[0]


class _NamedThread:
    """A parked thread with an OS-level name, so it looks like one of gRPC's or ours to /proc."""

    def __init__(self, name: str):
        self.ready, self.release = threading.Event(), threading.Event()
        self.tid = 0
        self.thread = threading.Thread(target=self._run, args=(name,))
        self.thread.start()
        assert self.ready.wait(10)

    def _run(self, name: str) -> None:
        import ctypes

        ctypes.CDLL(None).prctl(15, name.encode(), 0, 0, 0)  # PR_SET_NAME
        self.tid = threading.get_native_id()
        self.ready.set()
        self.release.wait(30)

    def policy(self) -> int:
        return os.sched_getscheduler(self.tid)

    def stop(self) -> None:
        self.release.set()
        self.thread.join()


def _run_in_thread(function):
    """`function()` on a fresh thread (so pytest's own thread never changes class), its result and
    that thread's scheduling policy right after; then the thread and the module go back to normal."""
    out = {}

    def body():
        try:
            out["result"] = function()
            out["policy"] = os.sched_getscheduler(0)
        finally:
            scheduling.lower_calling_thread()

    thread = threading.Thread(target=body)
    thread.start()
    thread.join()
    return out["result"], out["policy"]


def test_raises_the_loop_grpc_and_inference_threads_only():
    names_ = ("event_engine", "grpc_global_tim", "inference-0", "retrieval_0", "python", "python")
    threads = [_NamedThread(name) for name in names_]
    event_engine, timer, inference, other, poller, loader = threads
    try:
        names = {t.tid: name for name, t in zip(names_, threads)}
        poller.thread.name = "Thread-7 (_poll_wrapper)"  # grpc.aio's poller, as Python names it
        loader.thread.name = "ThreadPoolExecutor-0_0"
        outcome, caller_policy = _run_in_thread(
            lambda: scheduling.raise_serving_threads(names, [t.thread for t in threads]))
        if not _realtime_permitted():
            assert not outcome.realtime and "CAP_SYS_NICE" in outcome.reason
            assert caller_policy == os.SCHED_OTHER
            assert all(t.policy() == os.SCHED_OTHER for t in threads)
            return
        assert outcome.realtime
        assert sorted(outcome.threads) == sorted(["event loop", "event_engine", "grpc_global_tim", "inference-",
                                                  "grpc.aio poller"])
        assert caller_policy == os.SCHED_FIFO
        for raised in (event_engine, timer, inference, poller):
            assert raised.policy() == os.SCHED_FIFO
            assert os.sched_getparam(raised.tid).sched_priority == scheduling.SERVING_PRIORITY
        # Background work (bundle loading, anything else) keeps normal scheduling.
        assert other.policy() == os.SCHED_OTHER and loader.policy() == os.SCHED_OTHER
        assert "SCHED_FIFO 1" in outcome.describe() and "bundle loading at normal priority" in outcome.describe()
    finally:
        for thread in threads:
            thread.stop()


def test_new_threads_take_their_class_whatever_they_inherit():
    if not _realtime_permitted():
        pytest.skip("SCHED_FIFO not permitted here: every thread is normal")
    seen = {}

    def started(initializer, key):
        def child():  # inherits its parent's class, as a thread started from the event loop does
            seen[key + " inherited"] = os.sched_getscheduler(0)
            initializer()
            seen[key] = os.sched_getscheduler(0)

        worker = threading.Thread(target=child)
        worker.start()
        worker.join()

    def realtime_loop():
        outcome = scheduling.raise_serving_threads({}, [])
        assert outcome.realtime
        started(lambda: start_inference_thread("probe"), "inference")
        started(scheduling.as_normal_work, "loader")

    _run_in_thread(realtime_loop)
    assert seen == {"inference inherited": os.SCHED_FIFO, "inference": os.SCHED_FIFO,
                    "loader inherited": os.SCHED_FIFO, "loader": os.SCHED_OTHER}
    # Once the server stops, new inference threads are normal again.
    started(lambda: start_inference_thread("probe"), "after stop")
    assert seen["after stop"] == os.SCHED_OTHER


def _classes(pid: int) -> dict[str, list[int]]:
    classes: dict[str, list[int]] = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        name = (task / "comm").read_text().strip()
        classes.setdefault(re.sub(r"-\d+$", "", name), []).append(os.sched_getscheduler(int(task.name)))
    return classes


@pytest.fixture
def realtime_server(minilm_bundle):
    server = ServerProcess(minilm_bundle, "--scheduling", "realtime")
    yield server
    server.stop()


def test_served_threads_are_realtime_and_loading_is_not(realtime_server):
    with grpc.insecure_channel(realtime_server.target) as channel:  # a scored request, so the workers exist
        answer = brandsafe_pb2_grpc.BrandSafetyStub(channel).Classify(
            pb.ClassifyRequest(id="s", imp_id="1", site=pb.Site(page="https://scheduling.example/first-look")),
            timeout=10)
    assert answer.bundle_id
    classes = _classes(realtime_server.proc.pid)
    log = realtime_server.output()
    assert "scheduling: " in log
    if "serving threads at SCHED_FIFO 1" not in log:
        assert "real-time scheduling not permitted" in log
        assert all(set(policies) == {os.SCHED_OTHER} for policies in classes.values())
        return
    assert os.sched_getscheduler(realtime_server.proc.pid) == os.SCHED_FIFO  # the event loop
    assert set(classes["event_engine"]) == {os.SCHED_FIFO}
    assert set(classes["inference"]) == {os.SCHED_FIFO}
    # Python-named threads: the event loop and grpc.aio's poller raised; the bundle loaders not.
    assert classes["python"].count(os.SCHED_FIFO) == 2
    assert os.SCHED_OTHER in classes["python"]


def test_serve_realtime_needs_the_main_thread_and_changes_nothing_elsewhere():
    before = Path("/proc/self/limits").read_text()
    outcome, policy = _run_in_thread(scheduling.serve_realtime)
    assert not outcome.realtime and "main thread" in outcome.reason
    assert policy == os.SCHED_OTHER and Path("/proc/self/limits").read_text() == before


# A process raised under a 50-ms guard, as `brandsafe serve` is (on uvloop's loop, which sleeps in
# epoll until woken), one of its serving threads then spinning: the kernel's SIGXCPU must put it
# back to normal scheduling, and the guard must go when the server stops.
_SPINNER = r"""
import asyncio, os, resource, threading, time
import uvloop
from brandsafe.service import scheduling

async def main():
    outcome = scheduling.serve_realtime(run_limit_us=50_000)
    print("raised", outcome.realtime, *resource.getrlimit(resource.RLIMIT_RTTIME), flush=True)
    loop = asyncio.get_running_loop()
    done = loop.create_future()
    seen = {}

    def spin():
        scheduling.as_serving_work()
        seen["start"] = os.sched_getscheduler(0)
        started = time.monotonic()
        while os.sched_getscheduler(0) != os.SCHED_OTHER and time.monotonic() - started < 10:
            pass  # never blocks
        seen["spun_ms"] = (time.monotonic() - started) * 1000
        seen["end"] = os.sched_getscheduler(0)
        loop.call_soon_threadsafe(done.set_result, None)

    threading.Thread(target=spin, name="inference-0").start()
    await done  # the loop sleeps until the spinner ends
    print("spinner", seen["start"] == os.SCHED_FIFO, seen["end"] == os.SCHED_OTHER, round(seen["spun_ms"]), flush=True)
    print("demoted", scheduling.demoted, "| loop", os.sched_getscheduler(0) == os.SCHED_OTHER, flush=True)
    scheduling.lower_calling_thread()
    print("after stop", *resource.getrlimit(resource.RLIMIT_RTTIME), flush=True)

uvloop.run(main())
"""


def test_a_spinning_realtime_thread_is_demoted_by_the_guard():
    if not _realtime_permitted():
        pytest.skip("SCHED_FIFO not permitted here: nothing to guard")
    import subprocess

    done = subprocess.run([sys.executable, "-c", _SPINNER], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    lines = dict(line.split(" ", 1) for line in done.stdout.splitlines())
    assert lines["raised"] == f"True 50000 {scheduling.KILL_AFTER_US}"
    started_fifo, ended_normal, spun_ms = lines["spinner"].split()
    assert started_fifo == ended_normal == "True"
    assert 50 <= int(spun_ms) < 10_000  # the kernel's signal ended it, not the spinner's own 10-s cap
    assert "ran 50 ms without blocking" in lines["demoted"] and lines["demoted"].endswith("| loop True")
    # As before, or, where raising a hard limit back is not permitted (no CAP_SYS_RESOURCE), the kill
    # limit alone: the 50-ms demotion limit is gone either way.
    unlimited = resource.RLIM_INFINITY
    kill = scheduling.KILL_AFTER_US
    assert lines["after"] in (f"stop {unlimited} {unlimited}", f"stop {kill} {kill}")


def test_a_served_realtime_server_is_guarded_and_demotes_on_sigxcpu(realtime_server):
    pid = realtime_server.proc.pid
    if "serving threads at SCHED_FIFO 1" not in realtime_server.output():
        pytest.skip("SCHED_FIFO not permitted here: nothing to guard")
    rttime = next(line for line in Path(f"/proc/{pid}/limits").read_text().splitlines()
                  if line.startswith("Max realtime timeout"))
    assert rttime.split()[3:5] == [str(scheduling.RUN_LIMIT_US), str(scheduling.KILL_AFTER_US)]
    os.kill(pid, signal.SIGXCPU)  # what the kernel sends once a real-time thread exceeds the limit
    with grpc.insecure_channel(realtime_server.target) as channel:  # still serving, now at normal priority
        answer = brandsafe_pb2_grpc.BrandSafetyStub(channel).Classify(
            pb.ClassifyRequest(id="g", imp_id="1", site=pb.Site(page="https://scheduling.example/guard")),
            timeout=10)
    assert answer.bundle_id
    assert all(set(policies) == {os.SCHED_OTHER} for policies in _classes(pid).values())
    assert "back to normal scheduling" in realtime_server.output()
