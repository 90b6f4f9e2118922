"""The BrandSafety gRPC service: Classify (unary) and ClassifyStream (bidirectional)."""
from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

import grpc
import numpy as np

from brandsafe.rendering import render
from brandsafe.taxonomy import CATTAX_CONTENT_3_1
from brandsafe.v1 import brandsafe_pb2 as pb
from brandsafe.v1 import brandsafe_pb2_grpc as pb_grpc

from .batcher import MicroBatcher
from .model import LoadedBundle
from .policy import DEFAULT_POLICY_ID, Policy
from .requests import RequestError, parse

log = logging.getLogger(__name__)


class ClassifyError(Exception):
    def __init__(self, code: grpc.StatusCode, message: str):
        super().__init__(message)
        self.code, self.message = code, message


@dataclass(frozen=True)
class Serving:
    """What answers requests; replaced as a whole, so a request sees one consistent set."""

    model: LoadedBundle
    policies: dict[str, Policy]
    batcher: MicroBatcher


class BrandSafetyService(pb_grpc.BrandSafetyServicer):
    def __init__(self, report_floor: float = 0.05):
        self.serving: Serving | None = None  # None until the bundle is loaded and warmed
        self.report_floor = report_floor

    async def Classify(self, request: pb.ClassifyRequest, context: grpc.aio.ServicerContext) -> pb.ClassifyResponse:
        try:
            return await self._classify(request)
        except ClassifyError as exc:
            await context.abort(exc.code, exc.message)

    async def ClassifyStream(self, request_iterator, context: grpc.aio.ServicerContext):
        """Requests are scored concurrently; each response is written as soon as it is ready."""
        ready: asyncio.Queue = asyncio.Queue()
        in_flight: set[asyncio.Task] = set()

        async def answer(request: pb.ClassifyRequest) -> None:
            try:
                response = await self._classify(request)
            except ClassifyError as exc:
                response = pb.ClassifyResponse(id=request.id, imp_id=request.imp_id,
                                               error=pb.ErrorInfo(code=exc.code.name, message=exc.message))
            ready.put_nowait(response)

        async def read_all() -> None:
            async for request in request_iterator:
                task = asyncio.create_task(answer(request))
                in_flight.add(task)
                task.add_done_callback(in_flight.discard)
            while in_flight:
                await asyncio.gather(*list(in_flight))
            ready.put_nowait(None)

        reader = asyncio.create_task(read_all())
        try:
            while (response := await ready.get()) is not None:
                yield response
        finally:
            reader.cancel()
            for task in list(in_flight):
                task.cancel()

    async def _classify(self, request: pb.ClassifyRequest) -> pb.ClassifyResponse:
        serving = self.serving
        if serving is None:
            raise ClassifyError(grpc.StatusCode.UNAVAILABLE, "model bundle is still loading; retry shortly")
        try:
            parsed = parse(request, DEFAULT_POLICY_ID)
        except RequestError as exc:
            raise ClassifyError(grpc.StatusCode.INVALID_ARGUMENT, str(exc)) from None
        policy = serving.policies.get(parsed.policy_id)
        if policy is None:
            raise ClassifyError(grpc.StatusCode.INVALID_ARGUMENT,
                                f"policy_id: unknown brand profile {parsed.policy_id!r} "
                                f"(known: {', '.join(sorted(serving.policies))})")
        scores = await serving.batcher.submit(render(parsed.page))
        return self._response(request, scores, policy, serving.model)

    def _response(self, request: pb.ClassifyRequest, scores: np.ndarray, policy: Policy,
                  model: LoadedBundle) -> pb.ClassifyResponse:
        labels = model.labels.labels
        reasons = policy.decide(scores)
        order = np.argsort(-scores)
        return pb.ClassifyResponse(
            id=request.id,
            imp_id=request.imp_id,
            decision=pb.BLOCK if reasons else pb.ALLOW,
            categories=[pb.CategoryScore(id=labels[j].id, name=labels[j].name, score=float(scores[j]),
                                         custom=labels[j].custom)
                        for j in order if scores[j] >= self.report_floor],
            cattax=CATTAX_CONTENT_3_1,
            reasons=[pb.BlockReason(category_id=labels[r.label_index].id, category_name=labels[r.label_index].name,
                                    score=r.score, threshold=r.threshold) for r in reasons],
            bundle_id=model.bundle_id,
            policy_id=policy.id,
        )
