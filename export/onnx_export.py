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


def quantize_int8(fp32_model: Path, out_dir: Path) -> Path:
    """Dynamic int8, per-channel weights, for CPUs with AVX-512 VNNI."""
    from optimum.onnxruntime import ORTQuantizer
    from optimum.onnxruntime.configuration import AutoQuantizationConfig

    quantizer = ORTQuantizer.from_pretrained(fp32_model.parent, file_name=fp32_model.name)
    config = AutoQuantizationConfig.avx512_vnni(is_static=False, per_channel=True)
    quantizer.quantize(save_dir=out_dir, quantization_config=config, file_suffix="int8")
    return out_dir / f"{fp32_model.stem}_int8.onnx"


def convert_fp16(fp32_model: Path, out_dir: Path) -> Path:
    """fp16 weights and activations for the CUDA EP; inputs and logits stay int64 / float32."""
    import onnx
    from onnxruntime.transformers.float16 import convert_float_to_float16

    model = onnx.load(str(fp32_model), load_external_data=True)
    model_fp16 = convert_float_to_float16(model, keep_io_types=True, disable_shape_infer=True)
    out = out_dir / "model_fp16.onnx"
    out_dir.mkdir(parents=True, exist_ok=True)
    too_big = model_fp16.ByteSize() > 1_900_000_000  # protobuf's 2 GB limit: weights go beside it
    onnx.save_model(model_fp16, str(out), save_as_external_data=too_big, all_tensors_to_one_file=True,
                    location=out.name + ".data" if too_big else None)
    return out


def export(merged_dir: Path, work_dir: Path, precision: str) -> Path:
    """The ONNX model file at `precision`, with any external data beside it in its folder."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    fp32 = export_fp32(merged_dir, work_dir / "fp32")
    if precision == "fp32":
        return fp32
    if precision == "int8":
        return quantize_int8(fp32, work_dir / "int8")
    return convert_fp16(fp32, work_dir / "fp16")
