"""A small client for the BrandSafety service (used by `brandsafe classify`, tests and load tests)."""
from __future__ import annotations

import grpc

from brandsafe.v1 import brandsafe_pb2 as pb
from brandsafe.v1 import brandsafe_pb2_grpc as pb_grpc


def site_request(page: str, title: str = "", keywords: str = "", policy_id: str = "", request_id: str = "",
                 imp_id: str = "1", language: str = "") -> pb.ClassifyRequest:
    return pb.ClassifyRequest(
        id=request_id, imp_id=imp_id, policy_id=policy_id,
        site=pb.Site(page=page, keywords=keywords, content=pb.Content(title=title, language=language)),
    )


def classify(target: str, request: pb.ClassifyRequest, timeout: float = 5.0) -> pb.ClassifyResponse:
    with grpc.insecure_channel(target) as channel:
        return pb_grpc.BrandSafetyStub(channel).Classify(request, timeout=timeout)
