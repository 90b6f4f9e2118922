"""Releases: one model bundle + one index version, registered in MLflow's model registry and promoted
through one gate (candidate → evaluated → promoted | rejected)."""
