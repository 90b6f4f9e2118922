# CPU image: serves a bundle mounted at /bundle (build one with `./dev up` or `brandsafe export`).
#   docker build -t brandsafe .
#   docker run -p 50051:50051 -v $PWD/bundles/minilm-cpu:/bundle:ro brandsafe
FROM python:3.11-slim AS build
# A C compiler for the cache-hit path's extension (service/_hitpath.c); the runtime stage needs none.
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends gcc libc6-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
RUN python -m venv /opt/brandsafe \
 && /opt/brandsafe/bin/pip install --no-cache-dir --upgrade pip==26.3 setuptools==80.9.0 wheel==0.45.1
ENV PATH=/opt/brandsafe/bin:$PATH
# The serving install only (pyproject's base dependencies): no torch, transformers, peft or mlflow.
# Serving from a registry alias (--follow) needs MLflow: install ".[release]" instead.
COPY pyproject.toml setup.py constraints.txt README.md ./
COPY proto proto
COPY brandsafe brandsafe
COPY service service
COPY training training
COPY export export
COPY loadtest loadtest
RUN pip install --no-cache-dir -c constraints.txt grpcio-tools==1.85.1 \
 && pip install --no-cache-dir -c constraints.txt --no-build-isolation . \
 && pip uninstall -y grpcio-tools

FROM python:3.11-slim
COPY --from=build /opt/brandsafe /opt/brandsafe
ENV PATH=/opt/brandsafe/bin:$PATH HF_HUB_OFFLINE=1 PYTHONUNBUFFERED=1
RUN useradd --system --uid 10001 --home /nonexistent brandsafe
USER 10001
EXPOSE 50051
# With TLS on, pass the same certificates to both through the environment:
#   -e BRANDSAFE_TLS_CERT=/certs/server.pem -e BRANDSAFE_TLS_KEY=/certs/server.key -e BRANDSAFE_TLS_CA=/certs/ca.pem
# (plus BRANDSAFE_TLS_SERVER_NAME when the certificate does not name 127.0.0.1, and
# BRANDSAFE_TLS_CLIENT_CA / BRANDSAFE_TLS_CLIENT_CERT / BRANDSAFE_TLS_CLIENT_KEY for mutual TLS):
# `serve` reads the first, the health check the others.
HEALTHCHECK --interval=10s --timeout=3s --start-period=60s \
  CMD ["brandsafe", "-q", "health", "--target", "127.0.0.1:50051"]
ENTRYPOINT ["brandsafe", "serve", "--bundle", "/bundle", "--host", "0.0.0.0", "--port", "50051"]
