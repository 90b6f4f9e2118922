"""The ~4B GPU path, exercised on CPU with the tiny Qwen3: last-token head in the exported graph,
fp16 with external data in a bundle, IO binding and shape buckets, the PyTorch backend, the
TensorRT/CUDA options, the FSDP config, the GPU benchmark script and the recipe. What needs CUDA
itself is skipped, with the reason, only where no CUDA device is present."""
import json
import shutil
import subprocess
import sys
import tomllib

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
    assert list(bound._buffers) == [(((4, batch["input_ids"].shape[1])), ("attention_mask", "input_ids"))]
    other = plain.tokenizer(TEXTS[3:6])  # same shape, new content: written into the same buffers
    other_expected = plain.backend.execute(other)
    if other["input_ids"].shape == batch["input_ids"].shape:
        assert np.allclose(bound.execute(other), other_expected, atol=1e-5)
        assert len(bound._buffers) == 1


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
