"""The ~4B GPU path, exercised on CPU with the tiny Qwen3: last-token head in the exported graph,
fp16 with external data in a bundle, IO binding and shape buckets, the PyTorch backend, the
TensorRT/CUDA options, the FSDP config, the GPU benchmark script and the recipe. What needs CUDA
itself is skipped, with the reason, only where no CUDA device is present."""
import json
import threading

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from transformers import AutoModelForSequenceClassification

from brandsafe.bundle import BundleError, verify
from brandsafe.export.decoder_head import score_last_token_only
from brandsafe.service.backend import OnnxRuntimeBackend
from brandsafe.service.model import LoadedBundle
from conftest import REPO

TEXTS = ["casino bonus slots com | title: free spins", "a example", "news example org | path: world politics today",
         "glock 19 review best 9mm handgun", "recipes example com | title: easy pasta", "x"]
CUDA = torch.cuda.is_available() and "CUDAExecutionProvider" in ort.get_available_providers()


def _merged(bundle):
    return bundle.parent / "run" / "merged"


def test_exported_decoder_scores_the_gathered_last_token_and_has_no_vocab_head(qwen3_bundle):
    model = onnx.load(str(qwen3_bundle / "model.onnx"))
    vocab = json.loads((_merged(qwen3_bundle) / "config.json").read_text())["vocab_size"]
    vocab_sized = [t.name for t in model.graph.initializer if vocab in t.dims]
    assert vocab_sized == ["model.embed_tokens.weight"]  # the embedding table only: no LM head
    consumers = [n.op_type for n in model.graph.node if vocab_sized[0] in n.input]
    assert consumers == ["Gather"]
    inferred = onnx.shape_inference.infer_shapes(model).graph
    shapes = {v.name: len(v.type.tensor_type.shape.dim) for v in inferred.value_info}
    score = next(n for n in inferred.node if n.op_type == "MatMul" and n.name.startswith("/score/"))
    assert shapes[score.input[0]] == 2  # [batch, hidden]: gathered before the head, not [batch, seq, hidden]


def test_last_token_head_gives_transformers_scores_under_right_padding(qwen3_bundle):
    reference = AutoModelForSequenceClassification.from_pretrained(_merged(qwen3_bundle)).eval()
    patched = score_last_token_only(AutoModelForSequenceClassification.from_pretrained(_merged(qwen3_bundle)).eval())
    pad = reference.config.pad_token_id
    ids = torch.randint(3, reference.config.vocab_size, (3, 12))
    ids[0, 7:], ids[1, 2:] = pad, pad
    with torch.no_grad():
        expected = reference(input_ids=ids, attention_mask=(ids != pad).long()).logits
        got = patched(input_ids=ids, attention_mask=(ids != pad).long()).logits
    assert got.shape == expected.shape and torch.allclose(got, expected, atol=1e-5)


def test_fp16_bundle_with_external_data_verifies_loads_and_refuses_tampered_weights(qwen3_bundle, tmp_path):
    from brandsafe.export.bundler import build_bundle

    bundle = build_bundle(qwen3_bundle.parent / "run", tmp_path / "fp16", precision="fp16", parity_rows=48,
                          external_data_threshold=0)  # force the >2 GB layout on a tiny model
    data = [p.name for p in bundle.iterdir() if p.name.endswith(".data")]
    assert data == ["model_fp16.onnx.data"]
    assert data[0] in json.loads((bundle / "manifest.json").read_text())["files"]
    assert (bundle / "model.onnx").stat().st_size < (bundle / data[0]).stat().st_size  # weights live beside it
    assert json.loads((bundle / "parity.json").read_text())["passed"]
    verify(bundle)
    fp16 = LoadedBundle(bundle).score(TEXTS)
    fp32 = LoadedBundle(qwen3_bundle).score(TEXTS)
    assert np.abs(fp16 - fp32).max() < 0.02
    with (bundle / data[0]).open("r+b") as fh:
        fh.seek(64)
        fh.write(b"\x00\x7f" * 8)
    with pytest.raises(BundleError, match="model_fp16.onnx.data"):
        verify(bundle)


def test_io_binding_gives_session_run_results_and_reuses_its_buffers(qwen3_bundle):
    plain = LoadedBundle(qwen3_bundle)
    bound = OnnxRuntimeBackend(qwen3_bundle / "model.onnx", 1, "cpu", io_binding=True,
                               batch_buckets=[1, 2, 4, 8]).initialize()
    batch = plain.tokenizer(TEXTS[:3])
    expected = plain.backend.execute(batch)
    got = bound.execute(batch)  # 3 rows padded to the 4-row bucket, answer cut back to 3
    assert got.shape == expected.shape and np.allclose(got, expected, atol=1e-5)
    shape_key = ((4, batch["input_ids"].shape[1]), ("attention_mask", "input_ids"))
    assert list(bound._buffers) == [(threading.get_ident(), *shape_key)]
    other = plain.tokenizer(TEXTS[3:6])  # same shape, new content: written into the same buffers
    other_expected = plain.backend.execute(other)
    if other["input_ids"].shape == batch["input_ids"].shape:
        assert np.allclose(bound.execute(other), other_expected, atol=1e-5)
        assert len(bound._buffers) == 1


def test_io_binding_buffers_are_per_worker_thread(qwen3_bundle):
    """Two inference workers running batches of one shape at once must not share input buffers."""
    plain = LoadedBundle(qwen3_bundle)
    bound = OnnxRuntimeBackend(qwen3_bundle / "model.onnx", 1, "cpu", io_binding=True,
                               batch_buckets=[1, 2, 4, 8]).initialize()
    both = plain.tokenizer(TEXTS[:2])  # one padded length, so both batches map to one shape
    batches = [{name: value[i:i + 1] for name, value in both.items()} for i in (0, 1)]
    assert not np.array_equal(batches[0]["input_ids"], batches[1]["input_ids"])
    expected = [plain.backend.execute(batch) for batch in batches]
    mismatches = []

    def worker(index: int) -> None:
        for _ in range(100):
            if not np.allclose(bound.execute(batches[index]), expected[index], atol=1e-5):
                mismatches.append(index)

    threads = [threading.Thread(target=worker, args=(i,)) for i in (0, 1)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not mismatches
    assert len({key[0] for key in bound._buffers}) == 2  # one set of buffers per thread


def test_bucketed_model_warms_every_shape_and_serves_only_warmed_shapes(qwen3_bundle):
    reference = LoadedBundle(qwen3_bundle).score(TEXTS)
    model = LoadedBundle(qwen3_bundle)
    model.backend.io_binding, model.bucketed = True, True  # what a CUDA session does on its own
    model.warm_up([1, 2, 4, 8])
    assert model.seq_buckets == [16, 32, 48]  # the tiny recipe's max_length is 48
    assert sorted(model.warmed_shapes) == sorted((b, s) for b in (1, 2, 4, 8) for s in (16, 32, 48))
    warmed = set(model.backend._buffers)
    for count in (1, 3, 5, 6):
        scores = model.score(TEXTS[:count])
        assert scores.shape == (count, len(model.labels.labels))
        assert np.allclose(scores, reference[:count], atol=1e-5)  # padding rows and tokens change nothing
    assert set(model.backend._buffers) == warmed  # no shape outside the warmed buckets ran


def test_torch_backend_matches_the_onnx_bundle(qwen3_bundle):
    onnx_scores = LoadedBundle(qwen3_bundle).score(TEXTS)
    torch_model = LoadedBundle(qwen3_bundle, backend="torch", torch_model=_merged(qwen3_bundle))
    assert torch_model.backend.name == "torch:cpu:float32"
    assert np.abs(torch_model.score(TEXTS) - onnx_scores).max() < 1e-4
    with pytest.raises(ValueError, match="--torch-model"):
        LoadedBundle(qwen3_bundle, backend="torch")


@pytest.mark.skipif(CUDA, reason="checks the refusal on a host without the CUDA/TensorRT builds")
def test_gpu_devices_are_refused_clearly_without_a_gpu_build(qwen3_bundle):
    for device, message in (("tensorrt", "TensorRT EP"), ("cuda", "no CUDA EP")):
        with pytest.raises(RuntimeError, match=message):
            OnnxRuntimeBackend(qwen3_bundle / "model.onnx", device=device).initialize()


@pytest.mark.skipif(not CUDA, reason="needs a CUDA device and the onnxruntime-gpu build (the [gpu] extra)")
def test_cuda_session_with_io_binding_matches_cpu(qwen3_bundle):
    cpu = LoadedBundle(qwen3_bundle, device="cpu").score(TEXTS)
    gpu = LoadedBundle(qwen3_bundle, device="cuda")
    assert gpu.bucketed and gpu.backend.io_binding
    gpu.warm_up([1, 2, 4, 8])
    assert np.abs(gpu.score(TEXTS) - cpu).max() < 1e-3


def test_fsdp_config_loads_with_accelerate_and_wraps_qwen3_layers_with_lora_params():
    from accelerate.commands.config.config_args import load_config_from_file
    from accelerate.utils import DistributedType
    from transformers import Qwen3ForSequenceClassification

    config = load_config_from_file(str(REPO / "training" / "accelerate" / "fsdp-multi-gpu.yaml"))
    assert config.distributed_type == DistributedType.FSDP and config.mixed_precision == "bf16"
    fsdp = config.fsdp_config
    assert fsdp["fsdp_use_orig_params"] is True  # frozen base + trainable LoRA in one flat parameter
    assert fsdp["fsdp_auto_wrap_policy"] == "TRANSFORMER_BASED_WRAP"
    assert fsdp["fsdp_transformer_layer_cls_to_wrap"] in Qwen3ForSequenceClassification._no_split_modules
    assert fsdp["fsdp_state_dict_type"] == "FULL_STATE_DICT"  # rank 0 merges the whole model
    assert fsdp["fsdp_activation_checkpointing"] is False  # the recipe's gradient checkpointing does it
    single = load_config_from_file(str(REPO / "training" / "accelerate" / "single-gpu.yaml"))
    assert single.distributed_type == DistributedType.NO and single.num_processes == 1


def test_fsdp_path_rebuilds_an_unsharded_model_from_the_gathered_state(tiny_qwen3_recipe, small_train_file,
                                                                       taxonomy_path):
    """Under FSDP the main process scores and merges a copy rebuilt from the full state dict (the
    names FULL_STATE_DICT gathers are the unwrapped model's). Accelerate turns FSDP on only for
    GPU-type devices (on CPU it falls back to DDP), so the sharded run itself needs a GPU box."""
    from brandsafe.taxonomy import Taxonomy
    from brandsafe.training.data import read_rows
    from brandsafe.training.labelmap import build_label_set
    from brandsafe.training.model import build_model, load_tokenizer
    from brandsafe.training.recipe import load_recipe
    from brandsafe.training.train import _unsharded

    recipe = load_recipe(str(tiny_qwen3_recipe))
    labels = build_label_set(list(read_rows(small_train_file)), Taxonomy.load(taxonomy_path))
    tokenizer = load_tokenizer(recipe)
    trained = build_model(recipe, labels, tokenizer, dtype="float32")
    with torch.no_grad():
        for name, param in trained.named_parameters():
            if param.requires_grad:
                param.add_(torch.randn_like(param))
    rebuilt = _unsharded(recipe, labels, tokenizer, trained.state_dict(), torch.device("cpu"))
    ids = torch.randint(3, 700, (2, 10))
    with torch.no_grad():
        assert torch.allclose(rebuilt.eval()(input_ids=ids).logits, trained.eval()(input_ids=ids).logits, atol=1e-5)
    with pytest.raises(RuntimeError, match="does not fit"):
        _unsharded(recipe, labels, tokenizer, {k: v for k, v in trained.state_dict().items() if "lora_" not in k},
                   torch.device("cpu"))


def test_qwen3_4b_recipe_is_bf16_lora_on_every_projection_with_the_head_trained():
    from brandsafe.training.recipe import load_recipe

    recipe = load_recipe("qwen3-4b-gpu")
    assert recipe.dtype == "bfloat16" and recipe.mixed_precision == "bf16" and recipe.gradient_checkpointing
    assert set(recipe.lora_targets) == {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"}
    assert recipe.trainable_modules == ("score",) and recipe.export_precision == "fp16"
    assert recipe.base == "env:QWEN3_4B_PATH"  # a local checkpoint, never a hub id


def test_roofline_reproduces_the_issue_numbers_for_qwen3_4b():
    from brandsafe.loadtest import roofline

    limit = roofline.roofline(roofline.QWEN3_4B, num_labels=40, tokens=64)
    assert 7.2e9 < limit.weight_bytes < 7.4e9  # ~7.3 GB of bf16 weights that multiply
    assert 2.1 < limit.batch1_floor_ms < 2.3
    assert 1600 < limit.compute_ceiling_rps < 1800


def test_gpu_bench_smoke_runs_export_and_the_open_loop_ladder_on_cpu(tmp_path):
    from brandsafe.loadtest import gpu_bench

    record = gpu_bench.main(["--tiny", "--backends", "onnxruntime", "--iters", "5", "--step-seconds", "0.3",
                             "--out", str(tmp_path), "--workdir", str(tmp_path / "work")])
    saved = json.loads((tmp_path / "gpu_bench.json").read_text())
    assert saved["layers"] == 2 and saved["export"][0]["peak_rss_gib"] > 0
    assert "model_fp16.onnx" in saved["export"][0]["fp16_files"]
    result = saved["backends"]["onnxruntime"]
    assert set(result["latency"]) == {"1", "8", "32"} and result["latency"]["1"]["p50_ms"] > 0
    assert result["ladder"]["budget_ms"] == 10.0 and result["ladder"]["steps"]
    assert result["ratio_to_compute_ceiling"] == result["max_rate_rps"] / saved["roofline"]["compute_ceiling_rps"]
    assert any("no CUDA device" in n for n in record["notes"]) != torch.cuda.is_available()
    assert "| 32 |" in (tmp_path / "gpu_bench.md").read_text()


def test_gpu_dockerfile_is_cuda_based_with_the_gpu_extra_a_mounted_bundle_and_grpc_health():
    text = (REPO / "Dockerfile.gpu").read_text()
    assert "nvidia/cuda:" in text and "cudnn-runtime" in text
    assert '".[full,gpu]"' in text and "onnxruntime-gpu==" in text and "torch==2.13.0" in text
    assert '"--bundle", "/bundle"' in text and '"--device", "cuda"' in text
    assert 'CMD ["brandsafe", "-q", "health"' in text  # the grpc.health.v1 API
    user = [line for line in text.splitlines() if line.startswith("USER ")]
    assert user and user[-1].split()[1] not in ("root", "0")
