"""What the most expensive valid-looking requests cost, in-process and against a real server.

    python -m brandsafe.loadtest.hostile_cost                      # in-process CPU per request
    python -m brandsafe.loadtest.hostile_cost --target 127.0.0.1:50051   # also a real server's stall

In-process: the work one request costs on the event loop before inference (validate, normalise,
render, cache key), each input timed as the best of three runs, beside a control of the same
field sizes in plain ASCII. Against a server: each input sent once (Classify) while a second
thread calls the health check every 10 ms; the longest health-check wait is how long the event
loop stalled. Inputs are the shapes issue 25 named: long IDN host labels, many host labels,
deep paths, huge query strings, long keyword lists.
"""
from __future__ import annotations

import argparse
import random
import threading
import time

from brandsafe.v1 import brandsafe_pb2 as pb

CJK = [chr(0x4E00 + i) for i in range(20000)]


def _cjk(n: int, rng: random.Random) -> str:
    return "".join(rng.choice(CJK) for _ in range(n))


def hostile_requests(seed: int = 25) -> list[tuple[str, pb.ClassifyRequest, pb.ClassifyRequest]]:
    """(name, hostile request, same-size ASCII control)."""
    rng = random.Random(seed)
    shapes = {
        "idn-label-2000": f"https://{_cjk(2000, rng)}.example/",
        "idn-url-8016": f"http://{_cjk(8000, rng)}.com/",
        "many-idn-labels": "https://" + ".".join(_cjk(60, rng) for _ in range(120)) + ".example/",
        "many-ascii-labels": "https://" + ".".join("ab" for _ in range(2700)) + ".example/",
        # The costliest hosts DNS allows: 126 one-character IDN labels, or 63-character ones.
        "idn-126-labels": "https://" + ".".join(_cjk(1, rng) for _ in range(126)) + "/",
        "idn-63-char-labels": "https://" + ".".join(_cjk(63, rng) for _ in range(3)) + ".com/",
        "deep-path": "https://deep.example/" + "/".join("a%2F.." for _ in range(1100)),
        "huge-query": "https://q.example/?" + "&".join(f"k{i}=v{i}" for i in range(700)),
    }
    out = []
    for name, url in shapes.items():
        control = "https://control.example/" + "a" * max(0, len(url) - 24)
        out.append((name, pb.ClassifyRequest(id=name, site=pb.Site(page=url)),
                    pb.ClassifyRequest(id=name, site=pb.Site(page=control))))
    keywords = ",".join(_cjk(80, rng) for _ in range(100))
    out.append(("keywords-100x80", pb.ClassifyRequest(id="kw", site=pb.Site(page="kw.example", keywords=keywords)),
                pb.ClassifyRequest(id="kw", site=pb.Site(page="kw.example", keywords="a" * len(keywords)))))
    return out


def request_cost(request: pb.ClassifyRequest, repeats: int = 3) -> tuple[float, str]:
    """Seconds of CPU the request path spends on `request` before inference (best of `repeats`),
    and how it ended: "ok" or the INVALID_ARGUMENT message."""
    raw = request.SerializeToString()
    best, outcome = float("inf"), "ok"
    for _ in range(repeats):
        _clear_memos()
        started = time.thread_time()
        try:
            request_path(raw)
            outcome = "ok"
        except ValueError as exc:
            outcome = str(exc)[:60]
        best = min(best, time.thread_time() - started)
    return best, outcome


def request_path(raw: bytes) -> str:
    """What the server does with a request's bytes on a cache miss, before inference: decode,
    validate (which normalises the URL once), cache key, model text. Raises ValueError
    (RequestError) where the server answers INVALID_ARGUMENT."""
    import inspect

    from brandsafe.rendering import render
    from brandsafe.service.cache import cache_key
    from brandsafe.service.requests import parse

    page = parse(pb.ClassifyRequest.FromString(raw), "default").page
    if "normalized" in inspect.signature(render).parameters:
        cache_key("bundle", page, normalized=True)
        return render(page, normalized=True)
    cache_key("bundle", page)  # before issue 25: each of the two normalised the URL again
    return render(page)


def _clear_memos() -> None:
    """Every run pays in full, as a first sight of the page does."""
    from brandsafe import domains, urltext
    from brandsafe.service import cache

    urltext.segment.cache_clear()
    domains._registrable_host.cache_clear()
    from brandsafe.service import requests

    memo = getattr(cache, "_memo_key", None)  # before issue 25: the cache-key memo
    if memo is not None:
        memo.cache_clear()
    if hasattr(requests, "_normalized_memo"):
        requests._normalized_memo._entries.clear()


def server_stall(target: str, request: pb.ClassifyRequest) -> tuple[float, float, str]:
    """(seconds the Classify call took, longest health-check wait meanwhile, its status)."""
    import grpc
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    from brandsafe.v1 import brandsafe_pb2_grpc as pb_grpc

    worst, done = 0.0, threading.Event()

    def probe() -> None:
        nonlocal worst
        with grpc.insecure_channel(target) as channel:
            stub = health_pb2_grpc.HealthStub(channel)
            while not done.is_set():
                started = time.perf_counter()
                stub.Check(health_pb2.HealthCheckRequest(), timeout=120)
                worst = max(worst, time.perf_counter() - started)
                time.sleep(0.01)

    prober = threading.Thread(target=probe)
    prober.start()
    time.sleep(0.2)
    with grpc.insecure_channel(target) as channel:
        started = time.perf_counter()
        try:
            pb_grpc.BrandSafetyStub(channel).Classify(request, timeout=120)
            status = "OK"
        except grpc.RpcError as exc:
            status = exc.code().name
        took = time.perf_counter() - started
    time.sleep(0.05)
    done.set()
    prober.join()
    return took, worst, status


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--target", help="also send each input to this server and measure its stall")
    args = parser.parse_args()
    from brandsafe.urltext import load_segmenter

    load_segmenter()
    print(f"{'input':<20} {'bytes':>6} {'cost ms':>9} {'control ms':>10} {'ratio':>7}  outcome")
    for name, hostile, control in hostile_requests():
        cost, outcome = request_cost(hostile)
        base, _ = request_cost(control)
        print(f"{name:<20} {hostile.ByteSize():>6} {cost * 1000:>9.2f} {base * 1000:>10.2f} "
              f"{cost / max(base, 1e-9):>6.1f}x  {outcome}")
    if args.target:
        print(f"\n{'input':<20} {'call s':>8} {'health max s':>12}  status")
        for name, hostile, _ in hostile_requests():
            took, worst, status = server_stall(args.target, hostile)
            print(f"{name:<20} {took:>8.3f} {worst:>12.3f}  {status}")


if __name__ == "__main__":
    main()
