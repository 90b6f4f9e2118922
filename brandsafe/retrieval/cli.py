"""`brandsafe index build`: knowledge-base JSONL → a versioned vector index folder."""
from __future__ import annotations

from pathlib import Path


def add_index_commands(sub) -> None:
    index = sub.add_parser("index", help="build the retrieval index from a knowledge-base file",
                           description="Retrieval index commands.")
    actions = index.add_subparsers(dest="index_command", required=True, metavar="ACTION")
    build = actions.add_parser(
        "build", help="embed a knowledge-base JSONL into a new index folder (replaced atomically)",
        description="Embed every passage of a knowledge-base JSONL ({id, title, text, keys?} per line) with the "
                    "packaged MiniLM into a usearch index. The folder is replaced whole, so a server started with "
                    "--index on it (and --watch-seconds, SIGHUP or the Admin RPC) swaps to it without a restart.")
    build.add_argument("--kb", type=Path, required=True, help="knowledge-base JSONL")
    build.add_argument("--out", type=Path, required=True, help="index folder to write")
    build.set_defaults(func=_cmd_build)


def _cmd_build(args) -> None:
    from .index import build_index

    version = build_index(args.kb, args.out)
    print(f"index {version} written to {args.out}")
