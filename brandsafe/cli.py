"""`brandsafe`: train → export → serve, and a client to try it.

    brandsafe up         first run: train + export the default bundle if missing, then serve
    brandsafe train      fine-tune a recipe on labelled URLs (LoRA), calibrate, evaluate
    brandsafe export     ONNX export + int8/fp16 + parity check → a bundle folder
    brandsafe serve      serve a bundle over gRPC
    brandsafe classify   ask a running server about one page
    brandsafe explain    ask a running server why: model text, thresholds, the words that drove each category
    brandsafe score      score a JSONL/CSV list of pages in-process (optionally pre-warm the shared Redis cache)
    brandsafe evaluate   what each brand profile blocks and misses on labelled data, with an HTML report
    brandsafe index      build the retrieval index from a knowledge-base file
    brandsafe release    register / evaluate / promote releases (bundle + index) in the MLflow registry
"""
from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

DEFAULT_DATA_DIR = Path(os.environ.get("BRANDSAFE_DATA", "../shared/data"))
DEFAULT_TRAIN_DATA = DEFAULT_DATA_DIR / "brand-safety-urls.train.jsonl"
# Labelled title-only text (headlines, posts): measured in every quality report, trained on by the
# minilm-cpu-content recipe when passed to --data.
DEFAULT_CONTENT_DATA = DEFAULT_DATA_DIR / "content" / "content-labelled.train.jsonl"
DEFAULT_TAXONOMY = DEFAULT_DATA_DIR / "iab" / "content-taxonomy-3.1.tsv"
DEFAULT_BUNDLE = Path("bundles/minilm-cpu")
DEFAULT_RUN = Path("runs/minilm-cpu")
# Modules of pyproject's extras, which the slim serving install (the base dependencies) leaves out.
OPTIONAL_MODULES = {"torch": "train", "transformers": "train", "optimum": "train", "peft": "train",
                    "accelerate": "train", "onnx": "train", "sklearn": "report", "matplotlib": "report",
                    "mlflow": "release", "sqlalchemy": "release", "alembic": "release"}


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    from brandsafe.logs import configure

    configure(logging.WARNING if args.quiet else logging.INFO, args.log_format)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # weights come from local paths only
    try:
        return args.func(args) or 0
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # noqa: BLE001 - one readable line for known failures
        import grpc

        if isinstance(exc, ModuleNotFoundError) and exc.name and exc.name.split(".")[0] in OPTIONAL_MODULES:
            extra = OPTIONAL_MODULES[exc.name.split(".")[0]]
            print(f"brandsafe {args.command}: error: needs {exc.name}, which the serving install leaves out: "
                  f"pip install 'brandsafe[{extra}]' (or brandsafe[full])", file=sys.stderr)
            return 2
        if isinstance(exc, grpc.RpcError):
            print(rpc_error_line(exc, getattr(args, "target", "")), file=sys.stderr)
            return 1
        from brandsafe.bundle import BundleError
        from brandsafe.retrieval.knowledge import KnowledgeError
        from brandsafe.scoring import ScoreInputError
        from brandsafe.training.data import DataError
        from brandsafe.training.recipe import RecipeError
        if isinstance(exc, (DataError, RecipeError, BundleError, KnowledgeError, ScoreInputError)) or type(exc).__name__ in ("ParityError", "PolicyError"):
            print(f"brandsafe {args.command}: error: {exc}", file=sys.stderr)
            return 2
        raise


def rpc_error_line(exc, target: str) -> str:
    """A failed call as one line: the status code and what to do about it, never a traceback."""
    code = exc.code() if callable(getattr(exc, "code", None)) else None
    details = exc.details() if callable(getattr(exc, "details", None)) else str(exc)
    name = code.name if code is not None else "RPC"
    if name == "UNAVAILABLE":
        return f"error: UNAVAILABLE: cannot reach {target or 'the server'} \u2014 is the server running?"
    if name == "DEADLINE_EXCEEDED":
        return f"error: DEADLINE_EXCEEDED: {target or 'the server'} did not answer in time (raise --deadline-ms)"
    if name == "UNIMPLEMENTED":
        return f"error: UNIMPLEMENTED: {target or 'the server'} does not serve this call (an older server?)"
    return f"error: {name}: {details}"


def _global_options(parser: argparse.ArgumentParser, defaults: bool) -> None:
    """-q and --log-format, on the top-level parser (with defaults) and on every subcommand (without,
    so `brandsafe classify URL -q` works and an option before the command is not reset after it)."""
    keep = {} if defaults else {"default": argparse.SUPPRESS}
    parser.add_argument("-q", "--quiet", action="store_true", help="only warnings and errors",
                        **({"default": False} if defaults else keep))
    parser.add_argument("--log-format", choices=("text", "json"),
                        help="json: one structured object per line, for log pipelines (default: text)",
                        **({"default": "text"} if defaults else keep))


def _each_subcommand(parser: argparse.ArgumentParser):
    for action in parser._actions:  # argparse has no public walk over subparsers
        if isinstance(action, argparse._SubParsersAction):
            for sub in dict.fromkeys(action.choices.values()):
                yield sub
                yield from _each_subcommand(sub)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="brandsafe", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    _global_options(parser, defaults=True)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    up = sub.add_parser("up", help="train + export the default bundle if missing, then serve it",
                        description="Bring the service up on the embedded CPU default. If BUNDLE has no valid "
                                    "bundle, train the recipe on --data, export it, then serve. A second run "
                                    "reuses the bundle and starts in seconds.")
    _train_args(up)
    up.add_argument("--run-dir", type=Path, default=DEFAULT_RUN, help="where training writes (default: %(default)s)")
    _serve_args(up)
    up.set_defaults(func=_cmd_up)

    train = sub.add_parser("train", help="fine-tune a recipe with LoRA; writes a run folder with the report",
                           description="Fine-tune a pretrained base as a multi-label sequence classifier with "
                                       "PEFT LoRA on labelled URLs (JSONL or CSV url,label), split by registrable "
                                       "domain, merge the adapter, calibrate (temperature scaling) and write an "
                                       "evaluation report. Runs unchanged under `accelerate launch`.")
    _train_args(train)
    train.add_argument("--out", type=Path, default=DEFAULT_RUN, help="run folder to write (default: %(default)s)")
    train.set_defaults(func=_cmd_train)

    export = sub.add_parser("export", help="ONNX export + quantization + parity check → bundle",
                            description="Export a training run's merged model to ONNX with Optimum, quantize "
                                        "(int8 for CPU, fp16 for GPU), check parity against PyTorch on validation "
                                        "rows, and write a bundle folder with a sha256 manifest.")
    export.add_argument("--run", type=Path, default=DEFAULT_RUN, help="training run folder (default: %(default)s)")
    export.add_argument("--out", type=Path, default=DEFAULT_BUNDLE, help="bundle folder (default: %(default)s)")
    export.add_argument("--precision", choices=("int8", "fp16", "fp32"), help="default: the recipe's")
    export.add_argument("--parity-rows", type=int, default=2000, help="validation rows for the parity check")
    export.set_defaults(func=_cmd_export)

    serve = sub.add_parser("serve", help="serve a bundle over gRPC (health + reflection included)",
                           description="Serve a bundle: grpc.aio on uvloop, dynamic micro-batching into ONNX "
                                       "Runtime (CUDA EP when available, CPU otherwise).")
    _serve_args(serve)
    serve.set_defaults(func=_cmd_serve)

    classify = sub.add_parser("classify", help="classify one page against a running server",
                              description="Send one Classify call and print the response (JSON), or one line "
                                          "with --brief. Exit 1 with one line on stderr when the call fails.")
    _page_args(classify)
    classify.add_argument("--brief", action="store_true",
                          help="one line: decision, what decided it (or the top category and score), the profile")
    classify.set_defaults(func=_cmd_classify)

    explain = sub.add_parser("explain", help="why a page gets its verdict: model text, thresholds, driving words",
                             description="Send one Explain call: the exact text the model read, the calibrated "
                                         "scores, the profile's decision and thresholds, and for each top category "
                                         "the words whose removal lowers its score most (occlusion, one batch).")
    _page_args(explain, deadline_ms=30000)
    explain.add_argument("--json", action="store_true", help="print the ExplainResponse as JSON")
    explain.add_argument("--words", type=int, default=6, help="driving words shown per category (default: %(default)s)")
    explain.set_defaults(func=_cmd_explain)

    health = sub.add_parser("health", help="exit 0 if a server reports SERVING (container health checks)",
                            description="Ask a server's grpc.health.v1 service; exit 0 when SERVING, 1 otherwise.")
    _target_args(health)
    health.add_argument("--timeout", type=float, default=2.0, help="seconds (default: %(default)s)")
    health.set_defaults(func=_cmd_health)

    from brandsafe.evaluate import add_evaluate_command
    from brandsafe.release.cli import add_release_commands
    from brandsafe.retrieval.cli import add_index_commands
    from brandsafe.scoring import add_score_command

    add_score_command(sub)
    add_evaluate_command(sub)
    add_index_commands(sub)

    add_release_commands(sub)
    for subcommand in _each_subcommand(parser):
        _global_options(subcommand, defaults=False)
    return parser


def _target_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--target", default="127.0.0.1:50051", help="server address (default: %(default)s)")
    # From the environment too, so a container's health check speaks TLS when its server does.
    p.add_argument("--tls-ca", type=Path, default=_env_path("BRANDSAFE_TLS_CA"),
                   help="PEM CA that signed the server's certificate: connect with TLS "
                        "(default: $BRANDSAFE_TLS_CA; unset = plaintext)")
    p.add_argument("--tls-server-name", default=os.environ.get("BRANDSAFE_TLS_SERVER_NAME", ""),
                   help="the name in the server's certificate, when it differs from --target's host "
                        "(default: $BRANDSAFE_TLS_SERVER_NAME)")
    p.add_argument("--tls-client-cert", type=Path, default=_env_path("BRANDSAFE_TLS_CLIENT_CERT"),
                   help="PEM client certificate, for a server that requires one (default: $BRANDSAFE_TLS_CLIENT_CERT)")
    p.add_argument("--tls-client-key", type=Path, default=_env_path("BRANDSAFE_TLS_CLIENT_KEY"),
                   help="PEM key of --tls-client-cert (default: $BRANDSAFE_TLS_CLIENT_KEY)")


def _env_path(name: str) -> Path | None:
    return Path(os.environ[name]) if os.environ.get(name) else None


def _tls(args) -> dict:
    return {"tls_ca": args.tls_ca, "tls_server_name": args.tls_server_name,
            "client_cert": args.tls_client_cert, "client_key": args.tls_client_key}


def _page_args(p: argparse.ArgumentParser, deadline_ms: int = 5000) -> None:
    p.add_argument("url", nargs="?", default="", help="the page URL (site.page); with --app, the app's domain (optional)")
    p.add_argument("--app", default="", metavar="BUNDLE",
                   help="an app impression: its store id (app.bundle, e.g. com.example.game) instead of a site")
    p.add_argument("--title", default="", help="page or content title")
    p.add_argument("--keywords", default="", help="comma-separated keywords")
    p.add_argument("--policy", default="", help="brand profile id (default: the server's default)")
    p.add_argument("--tmax", type=int, default=0, metavar="MS",
                   help="OpenRTB tmax: the request's time budget in ms, counted on the server (default: none)")
    p.add_argument("--deadline-ms", type=int, default=deadline_ms,
                   help="gRPC deadline for the call (default: %(default)s)")
    _target_args(p)


def _page_request(args):
    from brandsafe.client import app_request, site_request

    if args.tmax < 0 or args.deadline_ms <= 0:
        raise SystemExit(f"brandsafe {args.command}: error: --tmax must be >= 0 and --deadline-ms > 0")
    if args.app:
        return app_request(args.app, args.url, args.title, args.keywords, args.policy, tmax=args.tmax)
    if not args.url:
        raise SystemExit(f"brandsafe {args.command}: error: give a page URL, or --app BUNDLE for an app")
    return site_request(args.url, args.title, args.keywords, args.policy, tmax=args.tmax)


def _train_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--recipe", default="minilm-cpu", help="recipe name or .toml path (default: %(default)s)")
    p.add_argument("--data", type=Path, nargs="+", default=[DEFAULT_TRAIN_DATA],
                   help=f"labelled data files, .jsonl or .csv (default: {DEFAULT_TRAIN_DATA})")
    p.add_argument("--taxonomy", type=Path, default=DEFAULT_TAXONOMY,
                   help="IAB Content Taxonomy 3.1 TSV (default: %(default)s)")
    p.add_argument("--max-steps", type=int, default=None, help="cap optimizer steps (smoke runs)")
    p.add_argument("--epochs", type=float, default=None, help="override the recipe's epochs")
    p.add_argument("--probes", type=Path, default=None,
                   help="title probe set (JSONL url,title,expected) scored in the report "
                        "(default: tests/probes/title-probes.jsonl when present)")


def _automatic_or_count(text: str) -> int:
    """A thread or worker count: 0 means automatic, anything negative is an error here, not later."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"{value} is negative (0 = automatic)")
    return value


def _serve_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--bundle", type=Path, default=DEFAULT_BUNDLE, help="bundle folder (default: %(default)s)")
    p.add_argument("--policies", type=Path, default=None,
                   help="brand profiles TOML (default: the packaged brandsafe/policies.toml)")
    p.add_argument("--host", default="127.0.0.1", help="bind address (default: %(default)s)")
    p.add_argument("--port", type=int, default=50051, help="gRPC port, 0 = any free one (default: %(default)s)")
    p.add_argument("--max-batch", type=int, default=32, help="largest micro-batch (default: %(default)s)")
    p.add_argument("--max-wait-us", type=int, default=2000,
                   help="longest a request waits for its batch to fill, in microseconds (default: %(default)s)")
    p.add_argument("--workers", type=_automatic_or_count, default=0,
                   help="inference threads, each computing its own batch; 0 = one per CPU the process may use "
                        "(affinity and cgroup CPU quota) on CPU, one on a GPU")
    p.add_argument("--threads", type=_automatic_or_count, default=0,
                   help="ONNX Runtime intra-op threads per worker, 0 = the cores shared among the workers")
    p.add_argument("--device", choices=("auto", "cpu", "cuda", "tensorrt"), default="auto",
                   help="execution provider; tensorrt: TensorRT EP (fp16, engines cached in $BRANDSAFE_TRT_CACHE) "
                        "in front of CUDA (default: %(default)s)")
    p.add_argument("--backend", choices=("onnxruntime", "torch"), default="onnxruntime",
                   help="torch: PyTorch on the merged checkpoint (--torch-model), for GPU hosts without the "
                        "CUDA build of onnxruntime (default: %(default)s)")
    p.add_argument("--torch-model", type=Path, default=None,
                   help="merged Hugging Face checkpoint for --backend torch (runs/<recipe>/merged)")
    p.add_argument("--grace-seconds", type=float, default=5.0, help="SIGTERM: drain in-flight calls this long")
    p.add_argument("--scheduling", choices=("realtime", "normal"), default="normal",
                   help="realtime, for dedicated hosts: the event loop, gRPC's threads and the inference workers "
                        "at the lowest real-time priority (no time slicing between them), when the OS permits it "
                        "(CAP_SYS_NICE or RLIMIT_RTPRIO >= 1), and back to normal, logged, if one runs 0.5 s "
                        "without blocking (default: %(default)s)")
    p.add_argument("--max-queue", type=int, default=1024,
                   help="requests allowed to wait for a batch; beyond it RESOURCE_EXHAUSTED at once (default: %(default)s)")
    p.add_argument("--max-concurrent-rpcs", type=int, default=4096,
                   help="calls open at once, server-wide; beyond it RESOURCE_EXHAUSTED (default: %(default)s)")
    p.add_argument("--max-concurrent-streams", type=int, default=1024,
                   help="calls open at once on one HTTP/2 connection (default: %(default)s)")
    p.add_argument("--max-connection-age-seconds", type=float, default=300.0,
                   help="close each client connection gracefully after this long, so clients reconnect and "
                        "spread over replicas (default: %(default)s)")
    p.add_argument("--max-connection-age-grace-seconds", type=float, default=30.0,
                   help="calls still open at that point get this long to finish (default: %(default)s)")
    p.add_argument("--cache-entries", type=int, default=200_000,
                   help="in-process verdict cache size, 0 = off (default: %(default)s)")
    p.add_argument("--cache-ttl", type=float, default=3600.0, help="verdict cache TTL in seconds (default: %(default)s)")
    p.add_argument("--redis-url", default=os.environ.get("BRANDSAFE_REDIS_URL", ""),
                   help="shared verdict cache tier for several replicas, e.g. redis://cache:6379/0 "
                        "(default: $BRANDSAFE_REDIS_URL; unset = local tier only)")
    p.add_argument("--redis-secret-file", type=Path, default=None,
                   help="file holding the HMAC key that signs shared-tier values (the same on every replica; "
                        "default: $BRANDSAFE_REDIS_SECRET; neither = unsigned, for a Redis only this service "
                        "can write)")
    p.add_argument("--redis-timeout-ms", type=float, default=5.0,
                   help="give up on a Redis lookup after this long and score with the model (default: %(default)s)")
    p.add_argument("--metrics-port", type=int, default=None,
                   help="serve Prometheus metrics on this HTTP port (0 = any free one; default: off)")
    p.add_argument("--index", type=Path, default=None,
                   help="retrieval index folder (brandsafe index build); used when the bundle reads a <context> block")
    p.add_argument("--retrieval-top-k", type=int, default=3, help="passages per request (default: %(default)s)")
    p.add_argument("--retrieval-budget-ms", type=float, default=10.0,
                   help="retrieval slower than this is skipped for that request (default: %(default)s)")
    p.add_argument("--registry", default=os.environ.get("BRANDSAFE_REGISTRY", ""),
                   help="MLflow registry URI to serve releases from, e.g. sqlite:///releases/registry.db or a "
                        "tracking server's http:// URL (env BRANDSAFE_REGISTRY)")
    p.add_argument("--follow", default="", metavar="ALIAS",
                   help="serve the release this registry alias names (e.g. champion) and hot-swap bundle and index "
                        "together when it moves; --bundle and --index are then ignored")
    p.add_argument("--follow-seconds", type=float, default=5.0, help="alias poll interval (default: %(default)s)")
    p.add_argument("--registry-model", default="brandsafe", help="registered model name (default: %(default)s)")
    p.add_argument("--registry-cache", type=Path, default=Path(".brandsafe-releases"),
                   help="where downloaded releases are kept (default: %(default)s)")
    p.add_argument("--tls-cert", type=Path, default=_env_path("BRANDSAFE_TLS_CERT"),
                   help="PEM certificate chain: serve TLS instead of plaintext (default: $BRANDSAFE_TLS_CERT)")
    p.add_argument("--tls-key", type=Path, default=_env_path("BRANDSAFE_TLS_KEY"),
                   help="PEM private key for --tls-cert (default: $BRANDSAFE_TLS_KEY)")
    p.add_argument("--tls-client-ca", type=Path, default=_env_path("BRANDSAFE_TLS_CLIENT_CA"),
                   help="PEM CA bundle: require client certificates (mutual TLS) (default: $BRANDSAFE_TLS_CLIENT_CA)")
    p.add_argument("--watch-seconds", type=float, default=0.0,
                   help="poll the bundle path this often and hot-swap when its manifest changes (0 = off)")
    p.add_argument("--admin-token", default=os.environ.get("BRANDSAFE_ADMIN_TOKEN", ""),
                   help="enable the Admin/ReloadBundle RPC behind this bearer token "
                        "(default: $BRANDSAFE_ADMIN_TOKEN; unset = no admin RPC). SIGHUP always reloads.")


def _cmd_train(args) -> None:
    from brandsafe.training.probes import DEFAULT_PROBES
    from brandsafe.training.recipe import load_recipe
    from brandsafe.training.train import train

    recipe = load_recipe(args.recipe, max_steps=args.max_steps, epochs=args.epochs)
    train(recipe, args.data, args.taxonomy, args.out, args.probes or DEFAULT_PROBES)
    print(f"run written to {args.out}; report: {args.out / 'report.md'}")


def _cmd_export(args) -> None:
    from brandsafe.export.bundler import build_bundle

    bundle = build_bundle(args.run, args.out, args.precision, args.parity_rows)
    print(f"bundle written to {bundle}")


def _server_config(args):
    from brandsafe.service.server import ServerConfig

    config = ServerConfig(bundle=args.bundle, host=args.host, port=args.port, max_batch=args.max_batch,
                          max_wait_us=args.max_wait_us, inference_workers=args.workers,
                          intra_op_threads=args.threads, device=args.device,
                          backend=args.backend, torch_model=args.torch_model,
                          grace_seconds=args.grace_seconds, metrics_port=args.metrics_port, tls_cert=args.tls_cert,
                          tls_key=args.tls_key, tls_client_ca=args.tls_client_ca, admin_token=args.admin_token,
                          watch_seconds=args.watch_seconds, max_queue=args.max_queue,
                          max_concurrent_rpcs=args.max_concurrent_rpcs,
                          max_concurrent_streams=args.max_concurrent_streams,
                          max_connection_age_seconds=args.max_connection_age_seconds,
                          max_connection_age_grace_seconds=args.max_connection_age_grace_seconds,
                          realtime_serving=args.scheduling == "realtime",
                          cache_entries=args.cache_entries, cache_ttl_seconds=args.cache_ttl, redis_url=args.redis_url,
                          redis_timeout_ms=args.redis_timeout_ms, redis_secret_file=args.redis_secret_file,
                          index=args.index,
                          retrieval_top_k=args.retrieval_top_k, retrieval_budget_ms=args.retrieval_budget_ms,
                          registry=args.registry, follow=args.follow, follow_seconds=args.follow_seconds,
                          registry_model=args.registry_model, registry_cache=args.registry_cache)
    if args.policies:
        config.policies = args.policies
    return config


def _cmd_serve(args) -> None:
    from brandsafe.service.server import run

    run(_server_config(args))


def _cmd_up(args) -> None:
    from brandsafe.bundle import BundleError, verify

    try:
        verify(args.bundle)
        print(f"using existing bundle {args.bundle}")
    except BundleError as why:
        print(f"no usable bundle at {args.bundle} ({why}); training recipe {args.recipe} first "
              f"(a few minutes on a laptop-class CPU)")
        _cmd_train(argparse.Namespace(**{**vars(args), "out": args.run_dir}))
        _cmd_export(argparse.Namespace(run=args.run_dir, out=args.bundle, precision=None, parity_rows=2000))
    _cmd_serve(args)


def _cmd_health(args) -> int:
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    from brandsafe.client import channel

    with channel(args.target, **_tls(args)) as ch:
        status = health_pb2_grpc.HealthStub(ch).Check(health_pb2.HealthCheckRequest(), timeout=args.timeout).status
    print(f"{args.target}: {health_pb2.HealthCheckResponse.ServingStatus.Name(status)}")
    return 0 if status == health_pb2.HealthCheckResponse.SERVING else 1


def _cmd_classify(args) -> None:
    from google.protobuf import json_format

    from brandsafe.client import brief, classify

    response = classify(args.target, _page_request(args), args.deadline_ms / 1000, **_tls(args))
    print(brief(response) if args.brief else json_format.MessageToJson(response, preserving_proto_field_name=True))


def _cmd_explain(args) -> None:
    from google.protobuf import json_format

    from brandsafe.client import explain
    from brandsafe.explain_text import format_explanation

    response = explain(args.target, _page_request(args), args.deadline_ms / 1000, **_tls(args))
    print(json_format.MessageToJson(response, preserving_proto_field_name=True) if args.json
          else format_explanation(response, args.words))


if __name__ == "__main__":
    raise SystemExit(main())
