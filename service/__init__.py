"""The gRPC service: request validation → rendering → micro-batching → ONNX Runtime → policy."""
