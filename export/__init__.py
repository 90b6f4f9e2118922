"""Export: merged model → ONNX (int8 CPU / fp16 GPU) → parity check → signed bundle folder."""
