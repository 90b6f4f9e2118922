"""brandsafe: a gRPC brand-safety classifier for real-time bidding."""

__version__ = "0.1.0"
