"""The physical limit for one decoder classifier on one GPU: what batch 1 and full batches cannot beat.

Batch 1 is memory-bound: every weight that multiplies is read once per forward, so latency is at
least (weight bytes) / (memory bandwidth). Embedding rows are gathered, not read in full, so they
do not count. Large batches are compute-bound: a request costs 2 FLOPs per multiplying weight per
token (attention's score and value products add 4 * layers * tokens * heads * head_dim, small at
64 tokens but counted), so requests/s is at most (FLOP/s) / (FLOPs per request).

Defaults are an H100 SXM's, as the issue states them: ~3.3 TB/s HBM3, ~800 TFLOP/s dense bf16
sustained. For Qwen3-4B at 64 tokens: ~7.3 GB of bf16 weights → ≈ 2.2 ms; ≈ 1,700 requests/s.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

# Qwen3-4B's architecture (its config.json): what the benchmark builds with random weights.
QWEN3_4B = dict(vocab_size=151_936, hidden_size=2560, intermediate_size=9728, num_hidden_layers=36,
                num_attention_heads=32, num_key_value_heads=8, head_dim=128, max_position_embeddings=40_960,
                rms_norm_eps=1e-6, rope_theta=1_000_000.0, tie_word_embeddings=True)
# Test-sized Qwen3 with the same shape of config.
QWEN3_TINY = dict(vocab_size=1024, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                  num_attention_heads=4, num_key_value_heads=2, head_dim=16, max_position_embeddings=512,
                  tie_word_embeddings=False)
H100_HBM_TBPS = 3.3
H100_DENSE_TFLOPS = 800.0


@dataclass(frozen=True)
class Roofline:
    matmul_params: int         # weights that multiply (per token): everything but the embedding table
    weight_bytes: float
    flops_per_request: float
    batch1_floor_ms: float
    compute_ceiling_rps: float

    def as_dict(self) -> dict:
        return asdict(self)


def matmul_params(config: dict, num_labels: int) -> int:
    h, f, layers = config["hidden_size"], config["intermediate_size"], config["num_hidden_layers"]
    q = config["num_attention_heads"] * config["head_dim"]
    kv = config["num_key_value_heads"] * config["head_dim"]
    per_layer = h * q + 2 * h * kv + q * h + 3 * h * f  # q, k, v, o projections; gate, up, down
    return layers * per_layer + h * num_labels


def roofline(config: dict, num_labels: int, tokens: int = 64, bytes_per_weight: int = 2,
             hbm_tbps: float = H100_HBM_TBPS, tflops: float = H100_DENSE_TFLOPS) -> Roofline:
    params = matmul_params(config, num_labels)
    attention = 4 * config["num_hidden_layers"] * tokens * tokens * config["num_attention_heads"] * config["head_dim"]
    flops = 2.0 * params * tokens + attention
    weight_bytes = float(params * bytes_per_weight)
    return Roofline(params, weight_bytes, flops, weight_bytes / (hbm_tbps * 1e12) * 1e3, tflops * 1e12 / flops)
