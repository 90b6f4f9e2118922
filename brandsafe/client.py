"""A small client for the BrandSafety service (used by `brandsafe classify`/`explain`/`health`, tests and load tests)."""
from __future__ import annotations

from pathlib import Path

import grpc

from brandsafe.v1 import brandsafe_pb2 as pb
from brandsafe.v1 import brandsafe_pb2_grpc as pb_grpc


def site_request(page: str, title: str = "", keywords: str = "", policy_id: str = "", request_id: str = "",
                 imp_id: str = "1", language: str = "", tmax: int = 0) -> pb.ClassifyRequest:
    return pb.ClassifyRequest(
        id=request_id, imp_id=imp_id, policy_id=policy_id, tmax=tmax,
        site=pb.Site(page=page, keywords=keywords, content=pb.Content(title=title, language=language)),
    )


def app_request(bundle: str, domain: str = "", title: str = "", keywords: str = "", policy_id: str = "",
                request_id: str = "", imp_id: str = "1", tmax: int = 0) -> pb.ClassifyRequest:
    return pb.ClassifyRequest(
        id=request_id, imp_id=imp_id, policy_id=policy_id, tmax=tmax,
        app=pb.App(bundle=bundle, domain=domain, keywords=keywords, content=pb.Content(title=title)),
    )


def channel(target: str, tls_ca: Path | None = None, tls_server_name: str = "", client_cert: Path | None = None,
            client_key: Path | None = None) -> grpc.Channel:
    """Plaintext, or TLS verified against `tls_ca` (a server whose certificate names another host,
    e.g. a container checking itself on 127.0.0.1, passes that name as `tls_server_name`), with a
    client certificate for a server that requires one."""
    if tls_ca is None:
        return grpc.insecure_channel(target)
    credentials = grpc.ssl_channel_credentials(
        root_certificates=Path(tls_ca).read_bytes(),
        private_key=Path(client_key).read_bytes() if client_key else None,
        certificate_chain=Path(client_cert).read_bytes() if client_cert else None)
    options = [("grpc.ssl_target_name_override", tls_server_name)] if tls_server_name else []
    return grpc.secure_channel(target, credentials, options=options)


def classify(target: str, request: pb.ClassifyRequest, timeout: float = 5.0, **tls) -> pb.ClassifyResponse:
    """`tls`: channel()'s TLS arguments."""
    with channel(target, **tls) as ch:
        return pb_grpc.BrandSafetyStub(ch).Classify(request, timeout=timeout)


def explain(target: str, request: pb.ClassifyRequest, timeout: float = 30.0, **tls) -> pb.ExplainResponse:
    with channel(target, **tls) as ch:
        return pb_grpc.BrandSafetyStub(ch).Explain(request, timeout=timeout)


def brief(response: pb.ClassifyResponse) -> str:
    """One line: the decision, what decided it (or the top category when allowed), the profile."""
    decision = pb.Decision.Name(response.decision)
    profile = f"(profile {response.policy_id}, {response.score_source or 'fallback'})"
    if response.fallback:
        why = f"fallback: {response.fallback_reason}"
    elif response.HasField("domain_list"):
        why = f"{response.domain_list.list}: {response.domain_list.domain}"
    elif response.reasons:
        top = response.reasons[0]
        why = f"{top.category_name} {top.score:.2f} >= {top.threshold:.2f}"
        if len(response.reasons) > 1:
            why += f" (+{len(response.reasons) - 1} more)"
    elif response.categories:
        top = response.categories[0]
        why = f"top: {top.name} {top.score:.2f}, under the profile's thresholds"
    else:
        why = "no category scored"
    return f"{decision:5s} {why} {profile}"
