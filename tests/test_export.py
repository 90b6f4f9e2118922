"""Export: int8 and fp16 graphs, and the parity gate refusing a model that does not match."""
import json
import shutil

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from transformers import AutoModelForSequenceClassification

from brandsafe.export import onnx_export, parity
from brandsafe.labels import LabelSet
from brandsafe.tokenization import BatchTokenizer


def _run_dir(bundle):
    return bundle.parent / "run"


def _texts(run_dir, n=120):
    return [json.loads(l)["text"] for l in (run_dir / "validation.jsonl").read_text().splitlines()][:n]


def _tokenizer(run_dir):
    run = json.loads((run_dir / "run.json").read_text())
    return BatchTokenizer(run_dir / "merged" / "tokenizer.json", run["max_length"], run["pad_token_id"], run["pad_token"])


def _thresholds(run_dir):
    by_id = json.loads((run_dir / "thresholds.json").read_text())["thresholds"]
    return np.array([by_id[l.id] for l in LabelSet.load(run_dir / "labels.json")])


def test_int8_export_is_integer_and_within_the_drift_bound(minilm_bundle, tmp_path):
    run_dir = _run_dir(minilm_bundle)
    int8 = onnx_export.quantize_int8(minilm_bundle / "model.onnx", tmp_path)
    ops = {node.op_type for node in onnx.load(str(int8)).graph.node}
    assert {"DynamicQuantizeLinear", "MatMulInteger"} & ops
    # Weight MatMuls shrink 4x; the 47 MB word-embedding table stays fp32.
    assert int8.stat().st_size < 0.75 * (minilm_bundle / "model.onnx").stat().st_size
    model = AutoModelForSequenceClassification.from_pretrained(run_dir / "merged")
    result = parity.check(model, int8, _tokenizer(run_dir), _texts(run_dir), 1.0, _thresholds(run_dir), "int8")
    assert result.p99_score_drift <= parity.MAX_P99_SCORE_DRIFT["int8"]


def test_int8_keeps_what_it_is_told_to_in_fp32_gemm_heads_included(minilm_bundle, tmp_path):
    """The quantizer rewrites a Gemm (BERT's pooler and classifier) as a MatMul under a new name
    before quantizing; keeping a Gemm in fp32 must still keep it."""
    model = minilm_bundle / "model.onnx"
    gemms = [n.name for n in onnx.load(str(model)).graph.node if n.op_type == "Gemm"]
    assert gemms  # pooler and classifier
    heads_kept = onnx.load(str(onnx_export.quantize_int8(model, tmp_path / "heads", gemms))).graph
    int8_nodes = [n.name for n in heads_kept.node if n.op_type == "MatMulInteger"]
    assert not [name for name in int8_nodes if name.startswith(tuple(gemms))]
    assert "MatMulInteger" in {n.op_type for n in heads_kept.node}  # the encoder is still int8
    everything = onnx_export.quantize_int8(model, tmp_path / "none", onnx_export.weight_matmuls(model))
    assert "MatMulInteger" not in {n.op_type for n in onnx.load(str(everything)).graph.node}


def test_fp16_export_for_gpu_keeps_int64_inputs_and_float32_logits(qwen3_bundle, tmp_path):
    fp16 = onnx_export.convert_fp16(qwen3_bundle / "model.onnx", tmp_path)
    graph = onnx.load(str(fp16)).graph
    assert {i.name: i.type.tensor_type.elem_type for i in graph.input}["input_ids"] == onnx.TensorProto.INT64
    assert graph.output[0].type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    assert any(t.data_type == onnx.TensorProto.FLOAT16 for t in graph.initializer)


def test_parity_gate_refuses_an_onnx_model_that_is_not_the_trained_one(qwen3_bundle, tmp_path):
    run_dir = _run_dir(qwen3_bundle)
    tampered_dir = tmp_path / "tampered"
    shutil.copytree(run_dir / "merged", tampered_dir)
    model = AutoModelForSequenceClassification.from_pretrained(tampered_dir)
    with torch.no_grad():
        model.score.weight.mul_(-3.0)
    model.save_pretrained(tampered_dir)
    wrong_onnx = onnx_export.export_fp32(tampered_dir, tmp_path / "onnx")
    original = AutoModelForSequenceClassification.from_pretrained(run_dir / "merged")
    result = parity.check(original, wrong_onnx, _tokenizer(run_dir), _texts(run_dir), 1.0, _thresholds(run_dir), "fp32")
    assert not result.passed
    same = parity.check(original, qwen3_bundle / "model.onnx", _tokenizer(run_dir), _texts(run_dir), 1.0,
                        _thresholds(run_dir), "fp32")
    assert same.passed and same.top_label_agreement == 1.0


def test_parity_excuses_flips_between_scores_the_reference_ties_and_counts_real_ones():
    thresholds = np.array([0.5, 0.5, 0.5])
    assert parity.TIE_TOLERANCE == 0.002
    reference = np.array([[0.9000, 0.8990, 0.1],   # labels 0 and 1 tied within 0.002
                          [0.9000, 0.8950, 0.1],   # label 0 on top by more than a tie
                          [0.5010, 0.1, 0.1],      # label 0 only just clears its threshold
                          [0.5050, 0.1, 0.1],      # label 0 clears it by more than a tie
                          [0.4990, 0.1, 0.1],      # nothing passes, label 0 just under
                          [0.4950, 0.1, 0.1]])     # nothing passes, label 0 under by more
    candidate = np.array([[0.8985, 0.8995, 0.1],   # tie broken the other way: excused
                          [0.8940, 0.8960, 0.1],   # a real flip 0 -> 1: counted
                          [0.4995, 0.1, 0.1],      # drops under, within the tie: excused
                          [0.4995, 0.1, 0.1],      # drops under from further: counted
                          [0.5005, 0.1, 0.1],      # rises over, within the tie: excused
                          [0.5005, 0.1, 0.1]])     # rises over from further: counted
    tie_aware, strict = parity.top_label_agreement(reference, candidate, thresholds)
    assert strict == 0.0
    assert tie_aware == pytest.approx(3 / 6)
    assert parity.top_label_agreement(reference, reference, thresholds) == (1.0, 1.0)


def test_parity_sample_counts_each_distinct_text_once(qwen3_bundle, tmp_path):
    from brandsafe.export.bundler import _RunInputs

    run_dir = tmp_path / "run"
    shutil.copytree(_run_dir(qwen3_bundle), run_dir, ignore=shutil.ignore_patterns("*.safetensors", "*.bin"))
    texts = ["docs google com | path: presentation"] * 5 + ["a example", "b example", "a example", "c example"]
    (run_dir / "validation.jsonl").write_text("".join(json.dumps({"text": t}) + "\n" for t in texts))
    assert _RunInputs(run_dir, rows=10).texts == ["docs google com | path: presentation", "a example", "b example",
                                                  "c example"]


def test_decoder_export_pools_the_last_real_token_not_padding(qwen3_bundle):
    """Right padding must not change a sequence's score: the head reads the last non-pad token."""
    from brandsafe.service.model import LoadedBundle

    bundle = LoadedBundle(qwen3_bundle)
    short, long_ = "a example", "a much longer example com | path: with many words to force padding"
    alone = bundle.score([short])[0]
    padded = bundle.score([short, long_])[0]
    assert np.allclose(alone, padded, atol=1e-5)


def test_mixed_precision_search_keeps_fp32_only_where_int8_breaks_the_bound(minilm_bundle, tmp_path):
    from brandsafe.export import mixed_precision

    run_dir = _run_dir(minilm_bundle)
    nodes = onnx_export.weight_matmuls(minilm_bundle / "model.onnx")
    assert len(nodes) >= 38  # 6 layers × 6 weight MatMuls, pooler, classifier
    texts, tokenizer = _texts(run_dir, 64), _tokenizer(run_dir)
    loose, kept = mixed_precision.search(minilm_bundle / "model.onnx", tmp_path / "loose", tokenizer, texts, 1.0, 1.0)
    assert kept == [] and "MatMulInteger" in {n.op_type for n in onnx.load(str(loose)).graph.node}



def _logits(model, tokenizer, texts):
    session = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    names = {i.name for i in session.get_inputs()}
    return session.run(["logits"], {k: v for k, v in tokenizer(texts).items() if k in names})[0]


@pytest.mark.parametrize("bundle_fixture", ["minilm_bundle", "qwen3_bundle"])
def test_smoothing_is_exact_in_fp32(bundle_fixture, request, tmp_path):
    from brandsafe.export import smoothing

    bundle = request.getfixturevalue(bundle_fixture)
    run_dir, original = _run_dir(bundle), bundle / "model.onnx"
    texts, tokenizer = _texts(run_dir, 64), _tokenizer(run_dir)
    smoothed = smoothing.smooth(original, tmp_path / "smoothed", tokenizer, texts)
    multiplies = [n for n in onnx.load(str(smoothed)).graph.node if n.op_type == "Mul" and n.name.endswith("/smooth")]
    # one per activation that weights read: per layer the attention input (q, k, v share it), the
    # attention output, the FFN input, the FFN output; MiniLM has 6 layers, the tiny Qwen3 2 and its head
    assert len(multiplies) == {"minilm_bundle": 6 * 4, "qwen3_bundle": 2 * 4 + 1}[bundle_fixture]
    assert {p.name for p in bundle.glob("*.json")} <= {p.name for p in (tmp_path / "smoothed").iterdir()}
    expected, got = _logits(original, tokenizer, texts), _logits(smoothed, tokenizer, texts)
    assert np.abs(expected - got).max() < 1e-3 * max(1.0, np.abs(expected).max())


def test_smoothing_evens_out_activation_channels_on_rows_it_never_saw(minilm_bundle, tmp_path):
    """Per-tensor int8 loses the small channels when a few are far larger: smoothing must shrink that
    spread (largest channel max / median channel max). MiniLM's reach 26x the median.
    Its end-to-end effect on the real run's int8 drift is a benchmark (loadtest/TUNING.md §15-16)."""
    from brandsafe.export import smoothing

    run_dir, original = _run_dir(minilm_bundle), minilm_bundle / "model.onnx"
    texts, tokenizer = _texts(run_dir), _tokenizer(run_dir)
    calibration, unseen = texts[:len(texts) // 2], texts[len(texts) // 2:]
    smoothed = smoothing.smooth(original, tmp_path / "smoothed", tokenizer, calibration)
    activations = [n.input[0] for n in onnx.load(str(smoothed)).graph.node if n.name.endswith("/smooth")]
    before = smoothing.activation_channel_max(original, activations, tokenizer, unseen)
    after = smoothing.activation_channel_max(smoothed, [f"{a}/smoothed" for a in activations], tokenizer, unseen)
    spread_before = np.array([before[a].max() / np.median(before[a]) for a in activations])
    spread_after = np.array([after[f"{a}/smoothed"].max() / np.median(after[f"{a}/smoothed"]) for a in activations])
    assert np.median(spread_after) < np.median(spread_before) / 2
    assert spread_after.max() < spread_before.max()


def test_int8_bundle_is_smoothed_searched_and_parity_checked(minilm_bundle, tmp_path, monkeypatch):
    """The default CPU path end to end: fp32 export, smoothing, the mixed-precision search, the gate.
    The 12-step test model has rows 0.007 from a threshold and int8 moves scores 0.03, so on 50 rows
    one flip (98%) depends on the CPU's int8 kernels: the agreement floor is lowered here (the gate
    itself is tested above); the drift bound, which the search holds by construction, is not. With
    the larger set of taxonomy examples the 12-step model's top two labels are often within 0.01 of
    each other: 0.86 agreement measured at a p99 drift of 0.010, so the floor here is 0.8."""
    from brandsafe.export.bundler import build_bundle
    from brandsafe.service.model import LoadedBundle

    monkeypatch.setattr(parity, "MIN_TOP_LABEL_AGREEMENT", 0.8)
    bundle = build_bundle(_run_dir(minilm_bundle), tmp_path / "int8", precision="int8", parity_rows=50)
    info = json.loads((bundle / "bundle.json").read_text())
    assert info["precision"] in ("int8", "int8-mixed") and info["int8_smoothing_alpha"] == 0.75
    parity_result = json.loads((bundle / "parity.json").read_text())
    assert parity_result["passed"] and parity_result["min_top_label_agreement"] == 0.8
    assert parity_result["p99_score_drift"] <= parity.MAX_P99_SCORE_DRIFT["int8"]
    nodes = onnx.load(str(bundle / "model.onnx")).graph.node
    assert sum(n.name.endswith("/smooth") for n in nodes) == 6 * 4
    assert sum(n.op_type == "MatMulInteger" for n in nodes) == 38 - len(info["int8_kept_fp32"])
    texts = _texts(_run_dir(minilm_bundle), 20)
    assert np.abs(LoadedBundle(bundle).score(texts) - LoadedBundle(minilm_bundle).score(texts)).max() < 0.15


def test_mixed_precision_search_keeps_everything_in_fp32_under_a_zero_bound(qwen3_bundle, tmp_path):
    from brandsafe.export import mixed_precision

    run_dir = _run_dir(qwen3_bundle)
    nodes = onnx_export.weight_matmuls(qwen3_bundle / "model.onnx")
    assert len(nodes) == 2 * 7 + 1  # q, k, v, o, gate, up, down per layer, and the score head
    strict, kept = mixed_precision.search(qwen3_bundle / "model.onnx", tmp_path / "strict", _tokenizer(run_dir),
                                          _texts(run_dir, 32), 1.0, 1e-12)
    assert sorted(kept) == sorted(nodes)
    assert "MatMulInteger" not in {n.op_type for n in onnx.load(str(strict)).graph.node}
