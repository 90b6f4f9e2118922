"""Idle cores held ready while serving (service/wakeup.py): what is written, when it is let go, and
what a server without the privilege does."""
from __future__ import annotations

import os
import struct
from pathlib import Path

import grpc
import pytest

from brandsafe.service import wakeup
from brandsafe.v1 import brandsafe_pb2 as pb
from brandsafe.v1 import brandsafe_pb2_grpc


def _device_writable() -> bool:
    return wakeup.DEVICE.exists() and os.access(wakeup.DEVICE, os.W_OK)


def test_hold_writes_the_limit_as_a_32_bit_integer_and_keeps_the_file_open(tmp_path):
    device = tmp_path / "cpu_dma_latency"
    device.write_bytes(b"")
    request = wakeup.CpuWakeup(device)
    outcome = request.hold(25)
    assert outcome.held and outcome.limit_us == 25 and request.holding
    assert "held at 25 us" in outcome.describe()
    assert struct.unpack("=i", device.read_bytes()) == (25,)
    assert request.hold(25).held  # a second hold keeps the one request
    assert device.stat().st_size == 4
    request.release()
    assert not request.holding
    request.release()  # releasing twice is harmless


def test_a_missing_device_is_reported_not_raised(tmp_path):
    outcome = wakeup.CpuWakeup(tmp_path / "absent").hold()
    assert not outcome.held
    assert "does not exist" in outcome.reason and str(tmp_path / "absent") in outcome.reason
    assert outcome.describe().startswith("CPU wake-up as the OS sets it")


def test_a_negative_limit_is_refused(tmp_path):
    with pytest.raises(ValueError, match="limit_us"):
        wakeup.CpuWakeup(tmp_path / "x").hold(-1)


@pytest.mark.skipif(not _device_writable(), reason="needs root and /dev/cpu_dma_latency")
def test_the_kernel_sees_the_request_until_it_is_released():
    before = wakeup.current_limit_us()
    assert before is not None
    with wakeup.CpuWakeup() as request:
        assert request.hold(0).held
        assert wakeup.current_limit_us() == 0
    assert wakeup.current_limit_us() == before


def test_serve_has_no_cpu_wakeup_flag(capsys):
    """The server holds no machine-wide request any more (a host sets its own; README, Operations)."""
    from brandsafe.cli import _parser

    with pytest.raises(SystemExit) as exited:
        _parser().parse_args(["serve", "--cpu-wakeup", "fast"])
    assert exited.value.code == 2 and "unrecognized arguments: --cpu-wakeup" in capsys.readouterr().err


def test_a_default_server_changes_nothing_machine_wide(minilm_server):
    """`./dev up` serves with the defaults: no CPU-latency request open, every thread at normal
    scheduling, RLIMIT_RTTIME untouched."""
    with grpc.insecure_channel(minilm_server.target) as channel:  # a scored request, so the workers exist
        answer = brandsafe_pb2_grpc.BrandSafetyStub(channel).Classify(
            pb.ClassifyRequest(id="w", imp_id="1", site=pb.Site(page="https://wakeup.example/page")), timeout=10)
    assert answer.bundle_id
    pid = minilm_server.proc.pid
    open_files = {os.readlink(fd) for fd in Path(f"/proc/{pid}/fd").iterdir() if fd.is_symlink()}
    assert str(wakeup.DEVICE) not in open_files and open_files  # it does list the server's files
    policies = {os.sched_getscheduler(int(task.name)) for task in Path(f"/proc/{pid}/task").iterdir()}
    assert policies == {os.SCHED_OTHER}
    # As this process has it (unlimited unless the shell set one), not the real-time guard's 500 ms.
    assert _rttime(pid) == _rttime(os.getpid())


def _rttime(pid: int) -> str:
    return next(line for line in Path(f"/proc/{pid}/limits").read_text().splitlines()
                if line.startswith("Max realtime timeout"))
