"""Move activation outliers into the weights before dynamic int8 (SmoothQuant-style smoothing).

Dynamic int8 gives each activation tensor one scale, set by its largest value. A fine-tuned
encoder carries a few channels far larger than the rest, so the rest round to a handful of levels.
Dividing channel j of an activation by s_j, and multiplying row j of every weight that reads it by
s_j, leaves the fp32 product unchanged and evens the channel ranges out; per-channel weight
quantization absorbs the larger rows. s_j = amax_j^alpha / wmax_j^(1 - alpha).
"""
from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import numpy as np
import onnxruntime as ort

from brandsafe.tokenization import BatchTokenizer

# On the MiniLM run, all-int8 p99 drift by alpha: 0.5 → 0.205, 0.75 → 0.093, 0.85 → 0.110,
# 1.0 → 0.131, none → 0.164 (loadtest/TUNING.md §15).
ALPHA = 0.75
SCALE_RANGE = (1e-3, 1e3)  # a dead channel (max 0) must not become a division by zero


def smooth(fp32_model: Path, out_dir: Path, tokenizer: BatchTokenizer, texts: list[str],
           alpha: float = ALPHA) -> Path:
    """Write `out_dir/<name>.onnx`, equal to `fp32_model` in fp32, with smoothed activations and
    weights. Calibrates per-channel activation maxima on `texts`. Sibling files (config,
    tokenizer) are copied so the quantizer can load the folder."""
    import onnx
    from onnx import helper, numpy_helper

    model = onnx.load(str(fp32_model))
    graph = model.graph
    readers = _smoothable_readers(graph)
    channel_max = activation_channel_max(fp32_model, list(readers), tokenizer, texts)
    weights = {init.name: init for init in graph.initializer}
    multiply_after: dict[str, object] = {}
    for activation, nodes in readers.items():
        rows = [numpy_helper.to_array(weights[node.input[1]]) for node in nodes]
        weight_max = np.max([np.abs(w).max(axis=1) for w in rows], axis=0)
        scale = (np.maximum(channel_max[activation], 1e-5) ** alpha
                 / np.maximum(weight_max, 1e-5) ** (1 - alpha))
        scale = np.clip(scale, *SCALE_RANGE).astype(np.float32)
        inverse, smoothed = f"{activation}/smooth_inverse", f"{activation}/smoothed"
        graph.initializer.append(numpy_helper.from_array((1 / scale).astype(np.float32), inverse))
        multiply_after[activation] = helper.make_node("Mul", [activation, inverse], [smoothed],
                                                      name=f"{activation}/smooth")
        for node, w in zip(nodes, rows):
            node.input[0] = smoothed
            weights[node.input[1]].CopyFrom(numpy_helper.from_array((w * scale[:, None]).astype(np.float32),
                                                                    node.input[1]))
    # Each Mul goes right after the node producing its activation: the graph stays topologically sorted.
    ordered = []
    for node in graph.node:
        ordered.append(node)
        ordered += [multiply_after[o] for o in node.output if o in multiply_after]
    del graph.node[:]
    graph.node.extend(ordered)

    out_dir.mkdir(parents=True, exist_ok=True)
    for sibling in fp32_model.parent.iterdir():
        if sibling.is_file() and sibling.suffix != ".onnx" and not sibling.name.endswith(".onnx.data"):
            shutil.copy2(sibling, out_dir / sibling.name)
    out = out_dir / fp32_model.name
    onnx.save(model, str(out))
    return out


def _smoothable_readers(graph) -> dict[str, list]:
    """Activation → the MatMuls that multiply it by a 2-D weight. Only weights read by nothing else:
    a weight shared with another activation cannot carry two different scales."""
    weights = {init.name: init for init in graph.initializer}
    uses: dict[str, int] = {}
    for node in graph.node:
        for name in node.input:
            uses[name] = uses.get(name, 0) + 1
    readers: dict[str, list] = {}
    for node in graph.node:
        if (node.op_type == "MatMul" and node.input[0] not in weights and node.input[1] in weights
                and len(weights[node.input[1]].dims) == 2 and uses[node.input[1]] == 1):
            readers.setdefault(node.input[0], []).append(node)
    return readers


def activation_channel_max(fp32_model: Path, activations: list[str], tokenizer: BatchTokenizer,
                            texts: list[str], batch_size: int = 64) -> dict[str, np.ndarray]:
    """Largest |value| of each last-axis channel of each activation, over `texts`."""
    import onnx
    from onnx import TensorProto, helper

    probe = onnx.load(str(fp32_model))
    probe.graph.output.extend(helper.make_tensor_value_info(a, TensorProto.FLOAT, None) for a in activations)
    with tempfile.TemporaryDirectory(prefix="brandsafe-smooth-") as tmp:
        onnx.save(probe, f"{tmp}/probe.onnx")
        session = ort.InferenceSession(f"{tmp}/probe.onnx", providers=["CPUExecutionProvider"])
    names = {i.name for i in session.get_inputs()}
    maxima: dict[str, np.ndarray] = {}
    for start in range(0, len(texts), batch_size):
        batch = tokenizer(texts[start:start + batch_size])
        values = session.run(activations, {k: v for k, v in batch.items() if k in names})
        for activation, value in zip(activations, values):
            channel = np.abs(value.reshape(-1, value.shape[-1])).max(axis=0)
            maxima[activation] = np.maximum(maxima[activation], channel) if activation in maxima else channel
    return maxima
