"""The load-test harness measures what it claims: Zipf repetition, arrival schedules, and latency
from the intended send time. No bundle, no timing thresholds that a busy machine could break:
every latency assertion is a lower bound that a sleep guarantees."""
import asyncio
import collections
import os
import threading
import time

import grpc
import numpy as np
import pytest

from brandsafe.loadtest import ceiling, openloop, paired, replay


def _rows(n_hosts: int) -> list[dict]:
    rows = [{"url": f"site{i}.example/", "title": f"Site {i}" if i % 3 == 0 else None} for i in range(n_hosts)]
    rows += [{"url": f"site0.example/page{k}", "title": None} for k in range(20)]  # one host, many pages
    return rows


def test_replay_repeats_a_few_hosts_zipf_like_and_is_deterministic():
    records = replay.build(_rows(2000), impressions=20_000, zipf_s=1.0, seed=3)
    hosts = collections.Counter(r["domain"] for r in records)
    top_1pct = sum(count for _, count in hosts.most_common(20)) / len(records)
    # Zipf(1) over 2000 ranks gives the top 20 about H(20)/H(2000) ≈ 44% of impressions.
    assert 0.3 < top_1pct < 0.6
    assert np.median(list(hosts.values())) <= 5  # the long tail: a typical host is seen a few times
    assert hosts.most_common(1)[0][1] > 50 * (len(records) / 2000)  # the head host ≫ the uniform share
    assert records == replay.build(_rows(2000), impressions=20_000, zipf_s=1.0, seed=3)
    assert len({r["id"] for r in records}) == len(records)


def test_replay_record_becomes_a_site_request_with_the_bidder_fields():
    record = replay.build(_rows(50), impressions=5, seed=1)[0]
    request = replay.to_request(record)
    assert request.site.page == record["page"] and request.site.domain == record["domain"]
    assert request.site.content.title == record["title"] and request.id == record["id"]


def test_constant_arrivals_are_evenly_spaced_at_the_rate():
    offsets = openloop.arrival_offsets(200, 3.0, "constant")
    assert len(offsets) == 600
    assert np.allclose(np.diff(offsets), 1 / 200)


def test_poisson_arrivals_have_the_mean_rate_and_exponential_gaps():
    offsets = openloop.arrival_offsets(500, 40.0, "poisson", seed=11)
    assert len(offsets) == pytest.approx(500 * 40, rel=0.03)
    gaps = np.diff(offsets)
    assert gaps.std() / gaps.mean() == pytest.approx(1.0, abs=0.05)  # exponential: CV = 1
    assert offsets.max() < 40.0 and np.all(gaps >= 0)
    assert np.array_equal(offsets, openloop.arrival_offsets(500, 40.0, "poisson", seed=11))


def test_failures_count_as_infinitely_late_and_best_rate_ignores_lucky_passes():
    lat = np.array([0.001] * 98 + [np.nan, np.nan])
    assert openloop.latency_summary(lat)["p99"] == float("inf")

    def step(rate, p99):
        return openloop.StepResult(rate, 100, 100, rate, {"p50": 1, "p95": 1, "p99": p99, "p99.9": p99})

    steps = [step(10, 5), step(20, 9), step(30, 25), step(40, 15)]
    assert openloop.best_rate(steps, budget_ms=20) == 20  # 40 passed, but 30 did not


def test_latency_includes_the_time_a_stalled_sender_was_late():
    """The generator's own event loop is blocked for 200 ms right after the first send: requests
    due meanwhile go out late, and their latency must include that lateness."""
    stall = 0.2
    stalled = []

    async def send(payload: bytes, timeout: float) -> str:
        if not stalled:
            stalled.append(True)
            time.sleep(stall)  # blocks the whole loop, like a GC pause or a starved process
        return "OK"

    offsets = openloop.arrival_offsets(100, 0.3, "constant")
    latency, lag, codes, _ = asyncio.run(openloop.run_schedule(send, [b"x"], offsets, 1.0))
    assert codes["OK"] == len(offsets)
    due_in_stall = offsets < stall * 0.9
    assert due_in_stall.sum() > 5
    # Intended at offsets[i], could not leave before the stall ended: latency >= stall - offsets[i].
    assert np.all(latency[due_in_stall] >= stall - offsets[due_in_stall] - 1e-3)
    assert np.all(lag[1:][due_in_stall[1:]] >= stall - offsets[1:][due_in_stall[1:]] - 1e-3)


def test_latency_includes_a_stalled_servers_queue_and_counts_status_codes():
    """A real grpc.aio server handling one call at a time stalls 300 ms on its first call. Open
    loop keeps sending on schedule, so every queued call's latency carries the wait."""
    stall = 0.3

    async def main():
        lock = asyncio.Lock()
        calls = []

        async def handle(request: bytes, context) -> bytes:
            async with lock:
                calls.append(request)
                if len(calls) == 1:
                    await asyncio.sleep(stall)
                if request == b"bad":
                    await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "bad")
                return request

        server = grpc.aio.server()
        server.add_generic_rpc_handlers([grpc.method_handlers_generic_handler(
            "test.Echo", {"Call": grpc.unary_unary_rpc_method_handler(handle)})])
        port = server.add_insecure_port("127.0.0.1:0")
        await server.start()
        sender = openloop.GrpcSender(f"127.0.0.1:{port}", "/test.Echo/Call")
        try:
            await sender.ready()
            offsets = openloop.arrival_offsets(50, 0.2, "constant")  # all due while the first stalls
            payloads = [b"ok"] * (len(offsets) - 1) + [b"bad"]
            return offsets, await openloop.run_schedule(sender, payloads, offsets, 5.0)
        finally:
            await sender.close()
            await server.stop(None)

    offsets, (latency, _, codes, _) = asyncio.run(main())
    assert codes == {"OK": len(offsets) - 1, "INVALID_ARGUMENT": 1}
    ok = ~np.isnan(latency)
    assert ok.sum() == len(offsets) - 1 and np.isnan(latency[-1])
    assert np.all(latency[ok] >= stall - offsets[ok] - 1e-3)


def test_ceiling_batches_whatever_arrived_while_the_model_was_busy():
    batches = []

    def score(texts):
        batches.append(len(texts))
        time.sleep(0.01)
        return np.zeros((len(texts), 1))

    offsets = openloop.arrival_offsets(1000, 0.05, "constant")  # one arrival per ms
    latency, _ = ceiling.play(score, ["t"], offsets, max_batch=8)
    assert sum(batches) == len(offsets) and batches[0] == 1
    assert max(batches) == 8 and all(1 <= b <= 8 for b in batches)  # ≥ 10 arrive per 10 ms batch
    assert np.all(latency >= 0.01)  # nobody finishes faster than one model call


def test_rate_ladder_spec():
    assert openloop.parse_rates("20:100:40") == [20, 60, 100]
    assert openloop.parse_rates("5,10") == [5, 10]


def test_paired_ladder_interleaves_peers_and_takes_each_ones_median_run():
    """Peers take turns at every rate (the first mover rotating), a peer's step is its median-p99
    run, one unlucky run out of three does not sink a rate, and a peer stops climbing on its own
    misses while the other goes on."""
    calls = []
    unlucky = {("fast", 300.0, 1)}  # one bad run among fast's three at 300/s

    async def step(peer, rate, repeat):
        calls.append((peer, rate, repeat))
        limit = {"fast": 400, "slow": 200}[peer]
        p99 = 50.0 if (peer, rate, repeat) in unlucky else (1.0 if rate <= limit else 3.0 + repeat)
        return openloop.StepResult(offered_rps=rate, sent=100, ok=100, achieved_rps=rate,
                                   latency_ms={"p50": p99 / 2, "p99": p99})

    ladders = asyncio.run(openloop.paired_ladder(step, ["fast", "slow"], [100, 200, 300, 400, 500, 600, 700],
                                                 budget_ms=2.0, repeats=3, refine=0))
    assert ladders["fast"].max_rate_within_budget == 400
    assert ladders["slow"].max_rate_within_budget == 200
    assert len(ladders["fast"].repeats) == 3 * len(ladders["fast"].steps)
    assert calls[:6] == [("fast", 100, 0), ("slow", 100, 0), ("slow", 100, 1), ("fast", 100, 1),
                         ("fast", 100, 2), ("slow", 100, 2)]
    assert {rate for peer, rate, _ in calls if peer == "slow"} == {100, 200, 300, 400}  # two misses, then stop
    assert max(rate for peer, rate, _ in calls if peer == "fast") == 600
    over = next(s for s in ladders["slow"].steps if s.offered_rps == 300)
    assert over.latency_ms["p99"] == 4.0  # the median of 3, 4, 5


def _run(rate, p99, late, sent=1000, late_ms=2.0):
    return openloop.StepResult(offered_rps=rate, sent=sent, ok=sent, achieved_rps=rate,
                               latency_ms={"p50": 0.5, "p99": p99}, late_ms=late_ms, late=late)


def test_pooled_rule_allows_one_percent_of_all_the_rates_requests_late_and_needs_their_counts():
    """Two of three runs just over the budget (12 and 11 late of 1000 each) fail the median rule,
    but 26 of 3000 pooled is under 1 %; a stalled run's 40 late requests push the pool over."""
    near = [_run(500, 2.1, 12), _run(500, 2.05, 11), _run(500, 1.2, 3)]
    assert not openloop.median_rule(near, 2.0) and openloop.pooled_rule(near, 2.0)
    stalled = [_run(500, 1.5, 5), _run(500, 80.0, 40), _run(500, 1.4, 4)]
    assert openloop.median_rule(stalled, 2.0) and not openloop.pooled_rule(stalled, 2.0)
    assert openloop.pooled_rule([_run(500, 2.0, 30, sent=3000)], 2.0)   # exactly 1 %
    assert not openloop.pooled_rule([_run(500, 2.0, 31, sent=3000)], 2.0)
    assert not openloop.pooled_rule([_run(500, 1.0, 0, sent=0)], 2.0)   # nothing sent proves nothing
    with pytest.raises(ValueError, match="counted no late requests"):
        openloop.pooled_rule([_run(500, 1.0, None, late_ms=None)], 2.0)
    with pytest.raises(ValueError, match="against 1 ms, not against the 2 ms budget"):
        openloop.pooled_rule([_run(500, 1.0, 0, late_ms=1.0)], 2.0)


def test_python_generator_counts_late_requests_with_failures_as_late():
    latencies = np.array([0.0005, 0.0019, 0.002, 0.0021, np.nan, 0.5])
    assert openloop.late_count(latencies, 2.0) == 3  # 2.1 ms, the failure, 500 ms; 2.0 ms is on time


def test_paired_ladder_climbs_by_the_rule_it_is_given_and_the_other_rule_reads_the_same_runs():
    """A peer whose runs sit just over the budget two times in three below 400/s, with under 1 %
    of requests late: the median rule stops it at 0, the pooled rule lets it climb to its knee;
    max_rate_by reads either ladder's runs by the other rule."""
    def runs_at(rate, repeat):
        if rate <= 400:
            return _run(rate, 2.1 if repeat < 2 else 1.0, 6 if repeat < 2 else 0)
        return _run(rate, 9.0, 200)

    async def step(peer, rate, repeat):
        return runs_at(rate, repeat)

    rates = [100, 200, 300, 400, 500, 600]
    by_median = asyncio.run(openloop.paired_ladder(step, ["p"], rates, 2.0, repeats=3, refine=0))["p"]
    by_pool = asyncio.run(openloop.paired_ladder(step, ["p"], rates, 2.0, repeats=3, refine=0,
                                                 rule=openloop.pooled_rule))["p"]
    assert by_median.max_rate_within_budget == 0 and by_pool.max_rate_within_budget == 400
    assert openloop.max_rate_by(by_pool, openloop.median_rule) == 0
    # the median ladder stopped after missing 100 and 200: the pooled rule passes both, and knows no more
    assert openloop.max_rate_by(by_median, openloop.pooled_rule) == 200
    assert {s.offered_rps for s in by_pool.steps} == {100, 200, 300, 400, 500, 600}


def test_cache_bench_prints_both_rules_readings_of_the_same_runs_and_each_rates_late_share():
    from brandsafe.loadtest.cache_bench import late_shares, summary

    def ladder(late_per_run: dict[float, list[int]], rule) -> openloop.Ladder:
        runs = [_run(rate, 2.5 if late > 10 else 1.0, late) for rate, lates in late_per_run.items() for late in lates]
        return openloop.Ladder(runs, 2.0, openloop.max_rate_by(openloop.Ladder(runs, 2.0, 0, runs), rule), runs)

    service = ladder({500: [11, 12, 0], 1000: [50, 60, 70]}, openloop.pooled_rule)
    echo = ladder({500: [0, 0, 1], 1000: [2, 3, 4]}, openloop.pooled_rule)
    text, ratio, _ = summary(service, echo, 2.0, 3, rule="pooled")
    assert ratio == pytest.approx(0.5)
    assert "p99 of all 3 interleaved runs' requests pooled per rate): service cache hits 500/s, echo 1000/s" in text
    assert "by the median rule" in text and "service cache hits 0/s, echo 1000/s, ratio 0.00x" in text
    assert late_shares(service) == pytest.approx({500: 23 / 3000, 1000: 180 / 3000})
    without_counts = openloop.Ladder([_run(500, 1.0, None, late_ms=None)], 2.0, 500, [])
    assert "by the" not in summary(without_counts, without_counts, 2.0, 1)[0]  # nothing to read it by


def test_paired_measure_gives_every_peer_the_same_schedules_and_its_own_replay_position():
    """Two in-process ceilings, one whose model takes 30 ms a batch: same arrival offsets for both
    at each (rate, repeat), each walking on through its own replay, and only the slow one over a
    20 ms budget (its latency is at least the 30 ms sleep)."""
    seen = collections.defaultdict(list)

    def recorded(peer, runner):
        def run(offsets, rate, first):
            seen[peer].append((rate, tuple(offsets), first))
            return runner(offsets, rate, first)
        return run

    def model(seconds):
        return lambda texts: (time.sleep(seconds), np.zeros((len(texts), 2)))[1]

    runners = {"quick": recorded("quick", paired.ceiling_runner(model(0.0005), ["t"] * 10, max_batch=8)),
               "slow": recorded("slow", paired.ceiling_runner(model(0.030), ["t"] * 10, max_batch=8))}
    ladders = asyncio.run(paired.measure(runners, [20.0, 40.0], step_seconds=0.25, budget_ms=20.0, repeats=2,
                                         refine=0, warmup_seconds=0.0, pause_seconds=0.0))
    assert ladders["slow"].max_rate_within_budget == 0
    assert all(s.latency_ms["p50"] >= 30.0 for s in ladders["slow"].repeats)
    assert len(ladders["quick"].repeats) == 4 and len(ladders["slow"].repeats) == 4  # 2 rates x 2 repeats
    assert [offsets for _, offsets, _ in seen["quick"]] == [offsets for _, offsets, _ in seen["slow"]]
    assert len({offsets for _, offsets, _ in seen["quick"]}) == 4  # a new schedule per repeat
    firsts = [first for _, _, first in seen["quick"]]
    assert firsts == sorted(firsts) and firsts[0] == 0 and len(set(firsts)) == 4


def test_step_ladder_stops_after_two_misses_then_bisects():
    tried = []

    async def step(rate):
        tried.append(rate)
        p99 = 1.0 if rate <= 250 else 5.0
        return openloop.StepResult(offered_rps=rate, sent=10, ok=10, achieved_rps=rate,
                                   latency_ms={"p50": p99 / 2, "p99": p99})

    ladder = asyncio.run(openloop.step_ladder(step, [100, 200, 300, 400, 500, 600], budget_ms=2.0, refine=2))
    assert tried == [100, 200, 300, 400, 250, 275]  # 300 and 400 miss: stop; then 250 (passes), 275 (misses)
    assert ladder.max_rate_within_budget == 250
    assert ladder.repeats == []


def test_ceiling_with_two_workers_computes_two_batches_at_once_and_answers_every_arrival_once():
    lock, running, overlap, calls = threading.Lock(), [0], [0], []

    def score(texts):
        with lock:
            running[0] += 1
            overlap[0] = max(overlap[0], running[0])
            calls.append(len(texts))
        time.sleep(0.01)
        with lock:
            running[0] -= 1
        return np.zeros((len(texts), 1))

    offsets = openloop.arrival_offsets(400, 0.1, "constant")  # one arrival per 2.5 ms, a call takes 10
    latency, _ = ceiling.play(score, ["t"], offsets, max_batch=2, workers=2)
    assert sum(calls) == len(offsets) and max(calls) <= 2
    assert overlap[0] == 2
    assert np.all(latency >= 0.01)
    # Two loops of 2-row batches keep up with 400/s (capacity 400/s); one alone would fall behind.
    alone, _ = ceiling.play(score, ["t"], offsets, max_batch=2, workers=1)
    assert np.percentile(latency, 99) < np.percentile(alone, 99)


def test_ab_arms_are_named_flag_lists_and_a_nameless_one_is_refused():
    import argparse

    from brandsafe.loadtest.ab import parse_arm

    assert parse_arm("before=--workers 1 --threads 2") == ("before", ["--workers", "1", "--threads", "2"])
    assert parse_arm("after=") == ("after", [])
    for bad in ("--workers 1", "=--workers 1"):
        with pytest.raises(argparse.ArgumentTypeError, match="NAME=FLAGS"):
            parse_arm(bad)


def test_ceiling_ab_configs_are_workers_by_threads():
    import argparse

    from brandsafe.loadtest.ceiling_ab import parse_config

    assert parse_config("2x1") == (2, 1) and parse_config(" 1x2 ") == (1, 2)
    for bad in ("2", "0x1", "2x0", "axb", "2*1"):
        with pytest.raises(argparse.ArgumentTypeError, match="WORKERSxTHREADS"):
            parse_config(bad)


def test_where_time_goes_reads_named_threads_and_sums_them_per_request():
    from brandsafe.loadtest.where_time_goes import per_thread, thread_times
    from brandsafe.service.batcher import start_inference_thread

    named, release = threading.Event(), threading.Event()

    def probe():
        start_inference_thread("probe")
        named.set()
        release.wait(10)

    thread = threading.Thread(target=probe)
    thread.start()
    try:
        assert named.wait(10)
        names = [name for name, _, _ in thread_times(os.getpid()).values()]
        assert "event loop (main)" in names
        assert any(name.startswith("probe-") for name in names)
    finally:
        release.set()
        thread.join()

    before = {"1": ("event loop (main)", 1.0, 10), "2": ("event_engine", 0.5, 5), "3": ("event_engine", 0.2, 1),
              "4": ("gone", 0.1, 1)}
    after = {"1": ("event loop (main)", 1.1, 410), "2": ("event_engine", 0.55, 105), "3": ("event_engine", 0.25, 101),
             "5": ("new", 9.0, 9)}
    rows = per_thread(before, after, answered=100)
    assert [name for name, _, _ in rows] == ["event loop (main)", "event_engine"]  # threads born mid-step skipped
    assert rows[0][1] == pytest.approx(1.0) and rows[0][2] == pytest.approx(4.0)   # ms and wake-ups per request
    assert rows[1][1] == pytest.approx(1.0) and rows[1][2] == pytest.approx(2.0)   # one name's threads summed


def test_heap_census_counts_what_the_collector_tracks_by_type():
    from brandsafe.loadtest.heap_census import census

    class Linked:
        def __init__(self):
            self.me = self

    before = census()
    kept = [Linked() for _ in range(50)]
    grown = census() - before
    assert grown["Linked"] == 50 and grown["list"] >= 1
    del kept


def test_cache_bench_compares_cpu_per_request_only_at_rates_both_servers_ran():
    """The echo climbs to rates the service never reaches, where one wake-up serves several requests
    and CPU per request is lower: those rates must not enter the comparison."""
    from brandsafe.loadtest.cache_bench import cpu_comparison

    def ladder(costs_us: dict[float, list[float]]) -> openloop.Ladder:
        runs = [openloop.StepResult(offered_rps=rate, sent=100, ok=100, achieved_rps=rate,
                                    latency_ms={"p99": 1.0}, server_cpu_pct=us * rate / 1e4)
                for rate, per_run in costs_us.items() for us in per_run]
        return openloop.Ladder(runs, 2.0, max(costs_us), runs)

    service = ladder({250: [600, 9000, 620], 500: [500, 520, 510]})  # one stalled run at 250/s
    echo = ladder({250: [480, 500, 490], 500: [400, 410, 420], 2000: [100, 100, 100]})
    rows, echo_over_service = cpu_comparison(service, echo)
    assert [rate for rate, _, _ in rows] == [250, 500]
    assert rows[0][1:] == pytest.approx((620, 490))  # the median run, not the stalled one
    assert echo_over_service == pytest.approx(np.median([490 / 620, 410 / 510]))


def test_cache_bench_reports_the_services_gc_pauses_between_two_scrapes():
    """Read from a real metrics endpoint: only the collections after the first scrape count, and
    the longest is bounded by the first bucket that holds them all."""
    from prometheus_client import CollectorRegistry

    from brandsafe.loadtest.cache_bench import _gc_pauses, gc_pause_line
    from brandsafe.service.metrics import Metrics

    metrics = Metrics(CollectorRegistry())
    url = f"http://127.0.0.1:{metrics.serve(0)}/metrics"
    metrics.gc_pauses.labels(generation="0").observe(0.0003)  # before: not counted
    before = _gc_pauses(url)
    for seconds in (0.0002, 0.0004, 0.0009):
        metrics.gc_pauses.labels(generation="0").observe(seconds)
    metrics.gc_pauses.labels(generation="2").observe(0.03)
    line = gc_pause_line(before, _gc_pauses(url))
    assert line == ("generation 0: 3 (1.5 ms in all, longest <= 1 ms); generation 1: none; "
                    "generation 2: 1 (30.0 ms in all, longest <= 50 ms)")


def test_a_benchmark_sets_the_machines_wake_up_once_for_every_peer(tmp_path):
    """The run holds idle cores ready (or not) for all peers alike (the services it starts hold none
    of their own), and serves with real-time threads, the setting its recorded numbers had."""
    import argparse

    from brandsafe.loadtest import compare, paired

    parser = argparse.ArgumentParser()
    paired.add_ladder_arguments(parser, rates="10")
    assert parser.parse_args([]).cpu_wakeup == "fast"
    args = parser.parse_args(["--cpu-wakeup", "normal"])
    request, line = paired.machine_wakeup(args.cpu_wakeup)
    assert not request.holding and "as the OS sets it" in line
    args.bundle, args.threads, args.workers, args.max_batch, args.max_wait_us = tmp_path, 1, 1, 8, 100
    for peer in ("service", "service+cache"):
        argv = compare.server_argv(peer, args, tmp_path)
        assert "--cpu-wakeup" not in argv
        assert argv[argv.index("--scheduling") + 1] == "realtime"


def test_wakeup_bench_times_every_ping_of_both_arms_from_its_send(tmp_path, monkeypatch):
    """Each arm gets its pings, and each latency is at least the replier's own deliberate delay:
    it is measured from the send, not from when the reply was read. The 'fast' arm holds its
    request through a stand-in device file (the real one needs root)."""
    import struct

    from brandsafe.loadtest import wakeup_bench

    device = tmp_path / "cpu_dma_latency"
    device.write_bytes(b"")
    replier = wakeup_bench.replier

    def slow_replier(ping_fd, pong_fd):
        real_read = os.read

        def read_then_wait(fd, n):
            data = real_read(fd, n)
            time.sleep(0.002)  # the stamp is taken after this: every latency is >= 2 ms
            return data

        monkeypatch.setattr(os, "read", read_then_wait)
        replier(ping_fd, pong_fd)

    monkeypatch.setattr(wakeup_bench, "replier", slow_replier)
    results = wakeup_bench.measure(pings=12, gap_s=0.0005, rounds=3, device=device)
    assert set(results) == {"normal", "fast"}
    assert all(len(lat) == 12 for lat in results.values())
    assert all((lat >= 2000).all() and (lat < 1_000_000).all() for lat in results.values())
    assert struct.unpack("=i", device.read_bytes()) == (0,)  # the fast arm wrote a 0 us request


def test_compare_counts_the_generators_cpu_with_each_network_peer_and_compares_only_shared_rates():
    """A network peer's cost per request is its server's CPU plus the generator's (both share the
    cores); the in-process ceiling has no generator. Only rates every peer ran enter the table."""
    from brandsafe.loadtest.compare import cpu_summary

    def ladder(server_ms: dict[float, list[float]], generator_ms: float) -> openloop.Ladder:
        runs = [openloop.StepResult(offered_rps=rate, sent=100, ok=100, achieved_rps=rate, latency_ms={"p99": 1.0},
                                    server_cpu_pct=ms * rate / 10, generator_cpu_pct=generator_ms * rate / 10)
                for rate, per_run in server_ms.items() for ms in per_run]
        return openloop.Ladder(runs, 20.0, max(server_ms), runs)

    ceiling_ = ladder({100: [3.0, 3.2, 3.1], 200: [2.8, 2.8, 2.8], 400: [2.5, 2.5, 2.5]}, 0.0)
    service = ladder({100: [4.0, 4.4, 40.0], 200: [3.8, 3.8, 3.8]}, 0.2)  # one stalled run at 100/s
    echo = ladder({100: [0.4, 0.4, 0.4], 200: [0.3, 0.3, 0.3], 400: [0.3, 0.3, 0.3]}, 0.2)
    assert paired.cpu_per_request(service, 1e-3, with_generator=True) == pytest.approx({100: 4.6, 200: 4.0})
    assert paired.cpu_per_request(service, 1e-3) == pytest.approx({100: 4.4, 200: 3.8})  # the server alone
    lines = cpu_summary({"ceiling": ceiling_, "service": service, "echo": echo})
    assert "400" not in lines[1] and "100/s" in lines[1] and "200/s" in lines[1]
    expected = np.median([3.1 / 4.6, 2.8 / 4.0])
    assert f"ceiling CPU / service CPU per request: {expected:.2f}x (median over those rates)" in lines
    floor = np.median([0.6 / 3.1, 0.5 / 2.8])
    assert f"echo (bare grpc.aio + generator) per request: {floor:.2f}x the ceiling's CPU" in lines
    assert cpu_summary({"ceiling": ceiling_, "only_high": ladder({800: [1.0]}, 0.1)}) == []


def test_echo_control_refuses_a_folder_without_a_bundle_naming_the_flag(tmp_path, capsys):
    from brandsafe.loadtest import echo_control

    with pytest.raises(SystemExit) as exited:
        echo_control.main(["--bundle", str(tmp_path)])
    assert exited.value.code == 2 and f"--bundle: {tmp_path} holds no bundle.json" in capsys.readouterr().err
