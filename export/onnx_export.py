"""ONNX export through Hugging Face Optimum, then precision conversion."""
from __future__ import annotations

import contextlib
import logging
from pathlib import Path

log = logging.getLogger(__name__)

PRECISIONS = ("int8", "fp16", "fp32")


def export_fp32(merged_dir: Path, out_dir: Path) -> Path:
    from optimum.exporters.onnx import onnx_export_from_model
    from transformers import AutoModelForSequenceClassification

    from .decoder_head import score_last_token_only

    out_dir.mkdir(parents=True, exist_ok=True)
    # text-classification keeps only the classification head (never a vocabulary-wide LM head);
    # for a decoder the score layer runs on the gathered last non-pad token (decoder_head.py).
    model = AutoModelForSequenceClassification.from_pretrained(merged_dir, dtype="float32").eval()
    onnx_export_from_model(score_last_token_only(model), out_dir, task="text-classification",
                           do_validation=False, device="cpu")
    return out_dir / "model.onnx"


def quantize_int8(fp32_model: Path, out_dir: Path, keep_fp32: list[str] = ()) -> Path:
    """Dynamic int8, per-channel weights, for CPUs with AVX-512 VNNI: the MatMuls that multiply by a
    weight, minus `keep_fp32`. Activation x activation MatMuls (attention scores, probabilities x
    values) stay fp32: quantizing softmax outputs per tensor costs accuracy for no weight saving."""
    from optimum.onnxruntime import ORTQuantizer
    from optimum.onnxruntime.configuration import AutoQuantizationConfig

    graph = _graph(fp32_model)  # the search calls this dozens of times: read the graph once per call
    weight_nodes = set(_matmuls(graph, weights_only=True))
    activation_matmuls = [n for n in _matmuls(graph) if n not in weight_nodes]
    excluded = [*keep_fp32, *activation_matmuls]
    # The quantizer first rewrites each Gemm (a BERT pooler or classifier) as a MatMul named
    # "<gemm>_MatMul"; only that name keeps it in fp32.
    gemms = {n.name for n in graph.node if n.op_type == "Gemm"}
    excluded += [f"{name}_MatMul" for name in excluded if name in gemms]
    quantizer = ORTQuantizer.from_pretrained(fp32_model.parent, file_name=fp32_model.name)
    config = AutoQuantizationConfig.avx512_vnni(is_static=False, per_channel=True, operators_to_quantize=["MatMul"],
                                                nodes_to_exclude=excluded)
    with _quiet_root_logger():  # ONNX Runtime's quantizer logs one INFO line per tensor on the root logger
        quantizer.quantize(save_dir=out_dir, quantization_config=config, file_suffix="int8")
    return out_dir / f"{fp32_model.stem}_int8.onnx"


# protobuf cannot hold a message over 2 GB: a larger graph keeps its weights in one file beside it.
EXTERNAL_DATA_THRESHOLD = 1_900_000_000


def convert_fp16(fp32_model: Path, out_dir: Path, external_data_threshold: int = EXTERNAL_DATA_THRESHOLD) -> Path:
    """fp16 weights and activations for the CUDA EP; inputs and logits stay int64 / float32.
    Weights go to `model_fp16.onnx.data` when the graph is over `external_data_threshold` bytes
    (a 4B model always is; tests lower the threshold to exercise the path with a tiny one)."""
    import onnx
    from onnxruntime.transformers.float16 import convert_float_to_float16

    model = onnx.load(str(fp32_model), load_external_data=True)
    model_fp16 = convert_float_to_float16(model, keep_io_types=True, disable_shape_infer=True)
    out = out_dir / "model_fp16.onnx"
    out_dir.mkdir(parents=True, exist_ok=True)
    # Summed per tensor: ByteSize() of a whole graph over 2 GB overflows protobuf.
    too_big = sum(t.ByteSize() for t in model_fp16.graph.initializer) > external_data_threshold
    onnx.save_model(model_fp16, str(out), save_as_external_data=too_big, all_tensors_to_one_file=True,
                    location=out.name + ".data" if too_big else None)
    return out


@contextlib.contextmanager
def _quiet_root_logger():
    root = logging.getLogger()
    level = root.level
    root.setLevel(max(level, logging.WARNING))
    try:
        yield
    finally:
        root.setLevel(level)


def _graph(fp32_model: Path):
    import onnx

    return onnx.load(str(fp32_model), load_external_data=False).graph


def _matmuls(graph, weights_only: bool = False) -> list[str]:
    weights = {init.name for init in graph.initializer}
    return [n.name for n in graph.node if n.op_type in ("MatMul", "Gemm")
            and (not weights_only or any(i in weights for i in n.input))]


def weight_matmuls(fp32_model: Path) -> list[str]:
    """Names of the MatMul/Gemm nodes that multiply by a weight: what int8 quantizes."""
    return _matmuls(_graph(fp32_model), weights_only=True)
