"""Servers to compare this service against, each serving the same bundle with the same ORT settings."""
