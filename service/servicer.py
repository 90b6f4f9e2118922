"""The BrandSafety gRPC service: Classify (unary) and ClassifyStream (bidirectional).

Per request: decode → validate → (cache) → retrieve passages when the bundle reads a <context>
block and the budget allows → render → admission against the deadline → micro-batch → policy.
A page and profile answered before, whose verdict is still cached, skip all of it: one lookup in
the Serving's remembered answers, on the request's bytes (answers.py). So both methods take and
return bytes: a request is parsed only when it goes down the full path.
A request that cannot be scored inside its budget gets the brand profile's fallback at once,
marked as such; a full queue answers RESOURCE_EXHAUSTED at once.
"""
from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import time
import uuid
from dataclasses import dataclass, field, replace

import grpc
import numpy as np
from google.protobuf.message import DecodeError

from brandsafe.rendering import render
from brandsafe.taxonomy import CATTAX_CONTENT_3_1
from brandsafe.v1 import brandsafe_pb2 as pb

from .answers import RememberedAnswers, hit_path, split_request
from .batcher import Expired, MicroBatcher, QueueFull
from .cache import VerdictCache, cache_key
from .explain import explain
from .model import LoadedBundle
from .policy import BLOCK_LIST, DEFAULT_POLICY_ID, Policy
from .requests import RequestError, check_impression_ids, parse
from .scheduling import as_serving_work

log = logging.getLogger(__name__)
SERVICE_NAME = pb.DESCRIPTOR.services_by_name["BrandSafety"].full_name
# Scoring aims to finish this much before the deadline, leaving time to build, send and receive
# the answer: max(floor, share of the budget).
RESPONSE_MARGIN_FLOOR_SECONDS = 0.002
RESPONSE_MARGIN_SHARE = 0.1
# Per ClassifyStream: requests scored at once, and answers waiting for the client to read them.
# Beyond either the stream waits, so a client that sends without reading holds at most
# 128 requests and 128 answers (~100 KB) of the server's memory, plus HTTP/2's flow-control windows.
STREAM_IN_FLIGHT = 128
STREAM_READY = 128


class ClassifyError(Exception):
    def __init__(self, code: grpc.StatusCode, message: str):
        super().__init__(message)
        self.code, self.message = code, message


class _NoTime(Exception):
    """Scoring cannot finish inside the request's budget; answer with the profile's fallback."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


class _Undecodable:
    """Bytes that are not a ClassifyRequest (e.g. invalid UTF-8 in a string field)."""

    def __init__(self, error: str):
        self.error = error
        self.id = self.imp_id = ""


def _decode(raw: bytes):
    try:
        return pb.ClassifyRequest.FromString(raw)
    except DecodeError as exc:
        return _Undecodable(str(exc))


@dataclass(frozen=True)
class Serving:
    """What answers requests; replaced as a whole, so a request sees one consistent set."""

    model: LoadedBundle
    policies: dict[str, Policy]
    batcher: MicroBatcher
    retriever: object | None = None  # brandsafe.retrieval.Retriever; swapped on its own (ReloadIndex)
    # Answers given from the verdict cache, valid for this Serving only (replace() starts it afresh).
    answers: RememberedAnswers = field(default_factory=RememberedAnswers, init=False, repr=False, compare=False)

    def reads_context(self) -> bool:
        return self.retriever is not None and bool(self.model.info.context_schema)


class _RetrievalTimeout(Exception):
    """Retrieval overran its budget; the page is scored without passages (and cached as such)."""


class BrandSafetyService:
    def __init__(self, report_floor: float = 0.05, cache: VerdictCache | None = None, metrics=None,
                 retrieval_top_k: int = 3, retrieval_budget_seconds: float = 0.010):
        self._serving: Serving | None = None
        self._hit_path = None  # answers.hit_path over the current Serving's answers, when it remembers any
        self.report_floor = report_floor
        self.cache = cache
        self.metrics = metrics
        self.retrieval_top_k = retrieval_top_k
        self.retrieval_budget = retrieval_budget_seconds
        self._retrieval_seconds = 0.0  # EWMA of one retrieval, for admission against the deadline
        # One thread: the embedding model runs in ONNX Runtime (GIL released) beside the batcher's thread.
        self._retrieval_pool = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="retrieval",
                                                                     initializer=as_serving_work)
        self._observers: dict[tuple[str, grpc.StatusCode], tuple] = {}
        self._hit_observers: dict[str, tuple] = {}
        self._decision_counters: dict[tuple, object] = {}
        self._score_histograms: list | None = None  # per label index, bound once per label set
        self._score_labels = None

    @property
    def serving(self) -> Serving | None:
        """What answers requests; None until the bundle is loaded and warmed."""
        return self._serving

    @serving.setter
    def serving(self, serving: Serving | None) -> None:
        self._hit_path = (hit_path(serving.answers, self.cache.local)
                          if serving is not None and self._remembers(serving) else None)
        self._serving = serving

    def close(self) -> None:
        self._retrieval_pool.shutdown(wait=False)

    def add_to_server(self, server: grpc.aio.Server) -> None:
        """Like the generated add_BrandSafetyServicer_to_server, but bytes in and out: a remembered
        answer needs neither a parsed request nor a response message, and decoding requests here
        makes undecodable bytes INVALID_ARGUMENT instead of an INTERNAL error. A generic handler
        only, not registered methods: see server.GenericHandlersOnly."""
        handlers = {
            "Classify": grpc.unary_unary_rpc_method_handler(self.Classify),
            "ClassifyStream": grpc.stream_stream_rpc_method_handler(self.ClassifyStream),
            "Explain": grpc.unary_unary_rpc_method_handler(self.Explain,
                                                           request_deserializer=pb.ClassifyRequest.FromString,
                                                           response_serializer=pb.ExplainResponse.SerializeToString),
        }
        server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE_NAME, handlers),))

    async def Classify(self, raw: bytes, context: grpc.aio.ServicerContext) -> bytes:
        received = time.monotonic()
        # Most requests repeat a page answered moments ago: answer those before anything else
        # (no parsing, no deadline arithmetic, no inner coroutine), since every call and object on
        # this path is paid again cold on each request (loadtest/TUNING.md §12, §20).
        hits = self._hit_path
        if hits is not None:
            response = hits(raw, received)
            if response is not None:
                self._observe_hit("Classify", received)
                return response
        code = grpc.StatusCode.OK
        try:
            answer = await self._classify(_decode(raw), context.time_remaining(), received, raw)
            return answer.SerializeToString()
        except ClassifyError as exc:
            code = exc.code
            await context.abort(exc.code, exc.message)
        except asyncio.CancelledError:
            code = grpc.StatusCode.CANCELLED
            raise
        except Exception:  # noqa: BLE001 - a bug's text is for the log, not the caller
            code = grpc.StatusCode.INTERNAL
            await context.abort(code, _internal_error())
        finally:
            self._observe("Classify", code, received)

    async def ClassifyStream(self, request_iterator, context: grpc.aio.ServicerContext):
        """Requests are scored concurrently; each response is written as soon as it is ready.

        Bounded per stream: at most STREAM_IN_FLIGHT requests are scored at once (the stream is not
        read further meanwhile, so HTTP/2 flow control holds the client back), and at most
        STREAM_READY answers wait for a client that does not read (scoring waits meanwhile). Every
        request read is answered (an in-band INTERNAL error if something unexpected fails), and the
        stream ends once the client's side has ended and every answer is written."""
        ready: asyncio.Queue = asyncio.Queue(STREAM_READY)
        slots = asyncio.Semaphore(STREAM_IN_FLIGHT)
        in_flight: set[asyncio.Task] = set()

        async def answer(raw: bytes) -> None:
            try:
                await ready.put(await self._stream_answer(raw, context))
            finally:
                slots.release()

        async def read_all() -> None:
            try:
                async for raw in request_iterator:
                    await slots.acquire()
                    task = asyncio.create_task(answer(raw))
                    in_flight.add(task)
                    task.add_done_callback(in_flight.discard)
            except Exception as exc:  # noqa: BLE001 - the client's side broke: answer what was read
                log.debug("ClassifyStream: reading requests failed (%s); answering those read", exc)
            while in_flight:
                await asyncio.wait(set(in_flight))
            await ready.put(None)

        reader = asyncio.create_task(read_all())
        try:
            while (response := await ready.get()) is not None:
                yield response
        finally:
            reader.cancel()
            for task in list(in_flight):
                task.cancel()

    async def _stream_answer(self, raw: bytes, context: grpc.aio.ServicerContext) -> bytes:
        """One stream request's answer, never an exception: errors are answered in band."""
        received = time.monotonic()
        hits = self._hit_path
        response = hits(raw, received) if hits is not None else None
        if response is not None:
            self._observe_hit("ClassifyStream", received)
            return response
        code = grpc.StatusCode.OK
        request = _decode(raw)
        try:
            response = (await self._classify(request, context.time_remaining(), received, raw)).SerializeToString()
        except ClassifyError as exc:
            code = exc.code
            response = _error_answer(request, exc.code, exc.message)
        except Exception:  # noqa: BLE001 - a bug's text is for the log, not the caller
            code = grpc.StatusCode.INTERNAL
            response = _error_answer(request, code, _internal_error())
        self._observe("ClassifyStream", code, received)
        return response

    async def _classify(self, request, time_remaining: float | None, received: float,
                        raw: bytes | None = None) -> pb.ClassifyResponse:
        """The full path. `raw` (the request's bytes) is what its answer is remembered under, when
        answers are remembered; without it the answer is not remembered."""
        serving = self.serving
        if serving is None:
            raise ClassifyError(grpc.StatusCode.UNAVAILABLE, "model bundle is still loading; retry shortly")
        if isinstance(request, _Undecodable):
            raise ClassifyError(grpc.StatusCode.INVALID_ARGUMENT,
                                f"request: not a valid brandsafe.v1.ClassifyRequest ({request.error})")
        split = split_request(raw) if raw is not None and self._remembers(serving) else None
        remembered_key = split.key if split is not None else None
        parsed, policy = _parse(serving, request)
        deadline = _deadline(time_remaining, request.tmax, received)
        retrieval = None
        if serving.reads_context():
            retrieval = pb.Retrieval(index_version=serving.retriever.version)
            if not self._time_to_retrieve(serving, deadline):
                retrieval.status = "skipped_deadline"
        try:
            try:
                # A set status means retrieval was already ruled out: score the page alone.
                scores, source, key = await self._scores(serving, parsed.page, deadline,
                                                         retrieval if retrieval is not None and not retrieval.status
                                                         else None)
            except _RetrievalTimeout:
                retrieval.status = "skipped_timeout"
                scores, source, key = await self._scores(serving, parsed.page, deadline, None)
            if retrieval is not None:
                retrieval.status = retrieval.status or "cached"  # no compute ran: the cache answered
                if self.metrics:
                    self.metrics.retrievals.labels(status=retrieval.status).inc()
        except _NoTime as no_time:
            if self.metrics:
                self.metrics.fallbacks.labels(reason=no_time.reason).inc()
            log.debug("fallback %s: %s", policy.fallback, no_time.reason, extra={"request_id": request.id})
            response = pb.ClassifyResponse(id=request.id, imp_id=request.imp_id, cattax=CATTAX_CONTENT_3_1,
                                           decision=pb.ALLOW if policy.fallback == "allow" else pb.BLOCK,
                                           bundle_id=serving.model.bundle_id, policy_id=policy.id, fallback=True,
                                           fallback_reason=no_time.reason, retrieval=retrieval)
            _apply_domain_list(response, policy, parsed.page)  # a listed site needs no model
            self._count_decision(policy.id, response, "fallback")
            return response
        body = self.body(scores, policy, serving.model, parsed.page)
        self._count_decision(policy.id, body, source)
        if remembered_key is not None:
            serving.answers.remember(remembered_key, key, scores, body.SerializeToString())
        return for_request(body, request, source, retrieval)

    async def Explain(self, request: pb.ClassifyRequest, context: grpc.aio.ServicerContext) -> pb.ExplainResponse:
        """Classify's validation, profile and rendering, then the model on the text and on each
        one-word-removed variant of it (service/explain.py). Off the hot path: no cache, no
        batcher; the variants run in the default executor, chunked at the batcher's size."""
        received, code = time.monotonic(), grpc.StatusCode.OK
        try:
            serving = self.serving
            if serving is None:
                raise ClassifyError(grpc.StatusCode.UNAVAILABLE, "model bundle is still loading; retry shortly")
            parsed, policy = _parse(serving, request)
            loop = asyncio.get_running_loop()
            page, retrieval = parsed.page, None
            if serving.reads_context():
                passages = await loop.run_in_executor(self._retrieval_pool, serving.retriever.retrieve, page,
                                                      self.retrieval_top_k)
                retrieval = pb.Retrieval(index_version=serving.retriever.version,
                                         status="used" if passages else "no_passages",
                                         passage_ids=[p.source_id for p in passages])
                page = replace(page, passages=passages)
            text = render(page)
            scores, explanations = await loop.run_in_executor(
                None, explain, serving.model.score, text, serving.model.labels.labels, self.report_floor,
                serving.batcher.max_batch)
            verdict = for_request(self.body(scores, policy, serving.model, page), request, "model", retrieval)
            blocked = np.flatnonzero(np.isfinite(policy.thresholds))
            labels = serving.model.labels.labels
            return pb.ExplainResponse(
                verdict=verdict, model_text=text, text_schema=serving.model.info.schema_version,
                thresholds=[pb.ThresholdCheck(category_id=labels[j].id, category_name=labels[j].name,
                                              score=float(scores[j]), threshold=float(policy.thresholds[j]),
                                              reached=bool(scores[j] >= policy.thresholds[j]))
                            for j in sorted(blocked, key=lambda j: -scores[j])],
                explanations=explanations)
        except ClassifyError as exc:
            code = exc.code
            await context.abort(exc.code, exc.message)
        finally:
            self._observe("Explain", code, received)

    def _remembers(self, serving: Serving) -> bool:
        """Answers are not remembered without a verdict cache, nor when passages make every answer
        depend on the index too."""
        return self.cache is not None and not serving.reads_context()

    async def _scores(self, serving: Serving, page, deadline: float | None,
                      retrieval: pb.Retrieval | None) -> tuple[np.ndarray, str, str | None]:
        """Scores for the page, from the cache or the model, where they came from and their cache
        key (None without a cache). With `retrieval`, passages are fetched on a cache miss and the
        entry is keyed by the index version too, so a swapped index never answers from scores
        computed with old passages (nor a page scored without passages from scores computed with
        them)."""
        model_id = serving.model.bundle_id + (f"+{serving.retriever.version}" if retrieval is not None else "")

        async def compute() -> np.ndarray:
            scored = page
            if retrieval is not None:
                passages = await self._retrieve(serving.retriever, page)
                retrieval.status = "used" if passages else "no_passages"
                retrieval.passage_ids.extend(p.source_id for p in passages)
                scored = replace(page, passages=passages)
            scores = await self._infer(serving, render(scored, normalized=True), deadline)
            self._observe_scores(serving, scores)
            return scores

        if self.cache is None:
            return await compute(), "model", None
        key = cache_key(model_id, page, normalized=True)
        scores, source = await self.cache.get_or_compute(key, compute, len(serving.model.labels.labels))
        return scores, "model" if source == "coalesced" else source, key

    def _time_to_retrieve(self, serving: Serving, deadline: float | None) -> bool:
        """Retrieve only if, after it, the model can still answer inside the budget."""
        if deadline is None:
            return True
        # Retrieval, then the queue and the model; retrieval's estimate counted twice, as the margin
        # for its own variance.
        return deadline - time.monotonic() > 2 * self._retrieval_seconds + serving.batcher.expected_wait()

    async def _retrieve(self, retriever, page) -> tuple:
        started = time.monotonic()
        future = asyncio.get_running_loop().run_in_executor(self._retrieval_pool, retriever.retrieve, page,
                                                            self.retrieval_top_k)
        try:
            passages = await asyncio.wait_for(asyncio.shield(future), self.retrieval_budget)
        except asyncio.TimeoutError:
            raise _RetrievalTimeout() from None
        finally:
            elapsed = time.monotonic() - started
            self._retrieval_seconds = elapsed if not self._retrieval_seconds else (
                0.9 * self._retrieval_seconds + 0.1 * elapsed)
            if self.metrics:
                self.metrics.retrieval_latency.observe(elapsed)
        return passages

    async def _infer(self, serving: Serving, text: str, deadline: float | None) -> np.ndarray:
        if deadline is not None and serving.batcher.expected_wait() > deadline - time.monotonic():
            raise _NoTime("expected_wait_exceeds_deadline")
        try:
            return await serving.batcher.submit(text, deadline)
        except QueueFull as exc:
            raise ClassifyError(grpc.StatusCode.RESOURCE_EXHAUSTED,
                                f"server overloaded ({exc}); retry with backoff or bid without a verdict") from None
        except Expired:
            raise _NoTime("deadline_passed_in_queue") from None

    def body(self, scores: np.ndarray, policy: Policy, model: LoadedBundle, page=None) -> pb.ClassifyResponse:
        return verdict_body(scores, policy, model, page, self.report_floor)

    def _count_decision(self, policy_id: str, response: pb.ClassifyResponse, source: str) -> None:
        """Decisions by profile, decision, deciding category and where the answer came from; the
        hit path's repeats of a remembered answer are not counted here (they are local cache hits)."""
        if not self.metrics:
            return
        if response.HasField("domain_list"):
            category = f"list:{response.domain_list.list}"
        elif response.reasons:
            category = response.reasons[0].category_name
        else:
            category = "none"
        key = (policy_id, response.decision, category, source)
        counter = self._decision_counters.get(key)
        if counter is None:  # labels() validates and locks on every call: bind each child once
            counter = self._decision_counters[key] = self.metrics.decisions.labels(
                policy=policy_id, decision=pb.Decision.Name(response.decision), category=category, source=source)
        counter.inc()

    def _observe_scores(self, serving: Serving, scores: np.ndarray) -> None:
        """Each category's calibrated score of a page the model just scored: its distribution
        drifting is the first sign the traffic, or the model, changed."""
        if not self.metrics:
            return
        labels = serving.model.labels
        if self._score_labels is not labels:
            self._score_histograms = [self.metrics.category_scores.labels(category=l.name) for l in labels.labels]
            self._score_labels = labels
        for histogram, score in zip(self._score_histograms, scores.tolist()):
            histogram.observe(score)

    def _observe_hit(self, method: str, received: float) -> None:
        """A request the hit path answered: a local hit of the verdict cache, and an OK request.
        Its metrics are bound once per method: a (method, StatusCode) key would run the enum's
        Python-level __hash__ on every hit."""
        self.cache.count("local")
        if self.metrics:
            observers = self._hit_observers.get(method)
            if observers is None:
                observers = self._hit_observers[method] = self._observers_for(method, grpc.StatusCode.OK)
            observers[0].inc()
            observers[1].observe(time.monotonic() - received)

    def _observers_for(self, method: str, code: grpc.StatusCode) -> tuple:
        observers = self._observers.get((method, code))
        if observers is None:  # labels() validates and locks on every call: bind each child once
            observers = (self.metrics.requests.labels(grpc_service=SERVICE_NAME, grpc_method=method,
                                                      grpc_code=code.name),
                         self.metrics.latency.labels(grpc_service=SERVICE_NAME, grpc_method=method))
            self._observers[(method, code)] = observers
        return observers

    def _observe(self, method: str, code: grpc.StatusCode, received: float) -> None:
        if self.metrics:
            observers = self._observers_for(method, code)
            observers[0].inc()
            observers[1].observe(time.monotonic() - received)


def verdict_body(scores: np.ndarray, policy: Policy, model: LoadedBundle, page=None,
                 report_floor: float = 0.05) -> pb.ClassifyResponse:
    """The part of the response that depends on the scores, the profile, the bundle and (for the
    profile's domain lists) the page alone; categories below `report_floor` are left out."""
    labels = model.labels.labels
    reasons = policy.decide(scores)
    order = np.argsort(-scores)
    body = pb.ClassifyResponse(
        decision=pb.BLOCK if reasons else pb.ALLOW,
        categories=[pb.CategoryScore(id=labels[j].id, name=labels[j].name, score=float(scores[j]),
                                     custom=labels[j].custom)
                    for j in order if scores[j] >= report_floor],
        cattax=CATTAX_CONTENT_3_1,
        reasons=[pb.BlockReason(category_id=labels[r.label_index].id, category_name=labels[r.label_index].name,
                                score=r.score, threshold=r.threshold) for r in reasons],
        bundle_id=model.bundle_id,
        policy_id=policy.id,
    )
    if page is not None:
        _apply_domain_list(body, policy, page)
    return body


def _parse(serving: Serving, request) -> tuple:
    """(the parsed request, its brand profile); ClassifyError(INVALID_ARGUMENT) naming the field."""
    try:
        parsed = parse(request, DEFAULT_POLICY_ID)
    except RequestError as exc:
        log.debug("invalid request: %s", exc, extra={"request_id": request.id})
        raise ClassifyError(grpc.StatusCode.INVALID_ARGUMENT, str(exc)) from None
    policy = serving.policies.get(parsed.policy_id)
    if policy is None:
        raise ClassifyError(grpc.StatusCode.INVALID_ARGUMENT,
                            f"policy_id: unknown brand profile {parsed.policy_id!r} "
                            f"(known: {', '.join(sorted(serving.policies))})")
    return parsed, policy


def _apply_domain_list(response: pb.ClassifyResponse, policy: Policy, page) -> None:
    """The profile's allow / block list, when the page's site is on one, decides (changed in place)."""
    match = policy.listed(page.url)
    if match is None:
        return
    listed, domain = match
    response.decision = pb.BLOCK if listed == BLOCK_LIST else pb.ALLOW
    del response.reasons[:]
    response.domain_list.CopyFrom(pb.DomainListMatch(list=listed, domain=domain))


def _error_answer(request, code: grpc.StatusCode, message: str) -> bytes:
    """An in-band error, carrying the request's ids only when they are ones the service accepts
    (an over-long or invalid id is not echoed back)."""
    try:
        check_impression_ids(request.id, request.imp_id)
        ids = {"id": request.id, "imp_id": request.imp_id}
    except RequestError:
        ids = {}
    return pb.ClassifyResponse(**ids, error=pb.ErrorInfo(code=code.name, message=message)).SerializeToString()


def _internal_error() -> str:
    """Log the exception being handled under a fresh reference; the caller gets the reference only."""
    ref = uuid.uuid4().hex[:12]
    log.exception("unexpected error answering a request (ref %s)", ref, extra={"error_ref": ref})
    return f"internal error (ref {ref}); the request was not scored"


def for_request(body: pb.ClassifyResponse, request, source: str,
                retrieval: pb.Retrieval | None = None) -> pb.ClassifyResponse:
    """`body` (changed in place) made the answer to `request`: its ids, where the scores came from
    and what retrieval did."""
    body.id, body.imp_id, body.score_source = request.id, request.imp_id, source
    if retrieval is not None:
        body.retrieval.CopyFrom(retrieval)
    return body


def _deadline(time_remaining: float | None, tmax_ms: int, received: float) -> float | None:
    """When scoring must be done: the tighter of the gRPC deadline and the request's tmax, less the
    response margin, as a time.monotonic() instant."""
    candidates = []
    if time_remaining is not None:
        candidates.append(time.monotonic() + time_remaining)
    if tmax_ms:
        candidates.append(received + tmax_ms / 1000)
    if not candidates:
        return None
    deadline = min(candidates)
    return deadline - max(RESPONSE_MARGIN_FLOOR_SECONDS, RESPONSE_MARGIN_SHARE * (deadline - received))
