"""ONNX export through Hugging Face Optimum, then precision conversion."""
from __future__ import annotations

import logging
from pathlib import Path

log = logging.getLogger(__name__)

PRECISIONS = ("int8", "fp16", "fp32")


def export_fp32(merged_dir: Path, out_dir: Path) -> Path:
    from optimum.exporters.onnx import main_export

    out_dir.mkdir(parents=True, exist_ok=True)
    # text-classification keeps only the classification head: for a decoder that is the score
    # layer on the last non-pad token, never a vocabulary-wide LM head.
    main_export(str(merged_dir), output=out_dir, task="text-classification", library_name="transformers",
                do_validation=False, device="cpu")
    return out_dir / "model.onnx"


def quantize_int8(fp32_model: Path, out_dir: Path, keep_fp32: list[str] = ()) -> Path:
    """Dynamic int8, per-channel weights, for CPUs with AVX-512 VNNI; `keep_fp32` names graph
    nodes left unquantized."""
    from optimum.onnxruntime import ORTQuantizer
    from optimum.onnxruntime.configuration import AutoQuantizationConfig

    quantizer = ORTQuantizer.from_pretrained(fp32_model.parent, file_name=fp32_model.name)
    config = AutoQuantizationConfig.avx512_vnni(is_static=False, per_channel=True, nodes_to_exclude=list(keep_fp32))
    quantizer.quantize(save_dir=out_dir, quantization_config=config, file_suffix="int8")
    return out_dir / f"{fp32_model.stem}_int8.onnx"


def weight_matmuls(fp32_model: Path) -> list[str]:
    """Names of the MatMul/Gemm nodes that multiply by a weight: what dynamic int8 quantizes."""
    import onnx

    graph = onnx.load(str(fp32_model), load_external_data=False).graph
    weights = {init.name for init in graph.initializer}
    return [n.name for n in graph.node if n.op_type in ("MatMul", "Gemm") and any(i in weights for i in n.input)]
