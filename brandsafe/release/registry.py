"""The release registry: MLflow's model registry, holding a model bundle and an index version as one
model version.

A release is one MLflow run whose artifacts are `release/bundle/` and (optionally) `release/index/`,
registered as a version of one registered model (default `brandsafe`). The version carries tags
`bundle_id`, `index_version` and `state` (see gate.py); aliases `champion` and `challenger` name what
serves and what is under evaluation.

The embedded default is a sqlite store in a local folder (`registry/registry.db`, artifacts beside
it in `registry/artifacts/`); a team points the URI at a tracking server (`http://mlflow:5000`)
instead. MLflow's file store is in maintenance mode in MLflow 3, hence sqlite.
"""
from __future__ import annotations

import logging
import os
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from brandsafe import bundle as bundle_files

DEFAULT_MODEL_NAME = "brandsafe"
EXPERIMENT = "brandsafe-releases"
CHAMPION = "champion"
CHALLENGER = "challenger"
ARTIFACT_ROOT = "release"
DEFAULT_STORE_DIR = Path("registry")

log = logging.getLogger(__name__)


class RegistryError(RuntimeError):
    pass


def registry_uri(value: str | os.PathLike | None = None) -> str:
    """A registry URI from what a user typed: a URI is kept; a plain folder means the embedded sqlite
    store in that folder; nothing means $BRANDSAFE_REGISTRY or ./registry."""
    value = str(value or os.environ.get("BRANDSAFE_REGISTRY", "") or DEFAULT_STORE_DIR)
    if "://" in value:
        return value
    return f"sqlite:///{(Path(value).expanduser().resolve() / 'registry.db')}"


def _quiet_mlflow() -> None:
    # Registry calls run inside the CLI and the server: keep MLflow's INFO lines (schema migrations,
    # one per new store) and its tqdm bars out of their output.
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    for name in ("mlflow", "alembic"):
        logging.getLogger(name).setLevel(logging.WARNING)


@dataclass(frozen=True)
class Release:
    """One registered model version, as the gate and the follower need it."""

    version: str
    run_id: str
    bundle_id: str
    index_version: str  # "" when the release has no index
    state: str
    tags: dict = field(default_factory=dict)
    aliases: tuple[str, ...] = ()


class Registry:
    def __init__(self, uri: str | None = None, model_name: str = DEFAULT_MODEL_NAME):
        from mlflow import MlflowClient

        _quiet_mlflow()
        self.uri = registry_uri(uri)
        self.model_name = model_name
        self._local_dir: Path | None = None
        if self.uri.startswith("sqlite:///"):
            self._local_dir = Path(self.uri[len("sqlite:///"):]).parent
            self._local_dir.mkdir(parents=True, exist_ok=True)
        self.client = MlflowClient(tracking_uri=self.uri, registry_uri=self.uri)

    # -- writing -----------------------------------------------------------------------------------

    def register(self, bundle_dir: str | Path, index_dir: str | Path | None = None, description: str = "") -> Release:
        """Log the bundle (and index) as artifacts of a new run and register them as one new version
        in state `candidate`. Both are verified first: the registry never holds a broken release."""
        from brandsafe.bundle import BundleInfo

        bundle_files.verify(bundle_dir)
        bundle_id = BundleInfo.load(bundle_dir).bundle_id
        index_version = ""
        if index_dir is not None:
            from brandsafe.retrieval import index_id

            bundle_files.verify(index_dir)
            index_version = index_id(index_dir)
        tags = {"bundle_id": bundle_id, "index_version": index_version, "state": "candidate"}
        run = self.client.create_run(self._experiment_id(), tags=tags,
                                     run_name=f"{bundle_id}+{index_version or 'no-index'}")
        run_id = run.info.run_id
        try:
            self.client.log_artifacts(run_id, str(bundle_dir), f"{ARTIFACT_ROOT}/bundle")
            if index_dir is not None:
                self.client.log_artifacts(run_id, str(index_dir), f"{ARTIFACT_ROOT}/index")
        except Exception:
            self.client.set_terminated(run_id, "FAILED")
            raise
        self._ensure_model()
        version = self.client.create_model_version(
            self.model_name, f"{run.info.artifact_uri}/{ARTIFACT_ROOT}", run_id=run_id, tags=tags,
            description=description or None)
        self.client.set_terminated(run_id, "FINISHED")
        log.info("registered %s version %s: bundle %s, index %s", self.model_name, version.version, bundle_id,
                 index_version or "none")
        return self.get(version.version)

    def set_tags(self, version: str, tags: dict[str, str]) -> None:
        for key, value in tags.items():
            self.client.set_model_version_tag(self.model_name, str(version), key, str(value))

    def log_metrics(self, version: str, metrics: dict[str, float], prefix: str = "") -> None:
        """Numeric metrics onto the version's run (history, comparisons in the MLflow UI)."""
        from mlflow.entities import Metric

        run_id = self.get(version).run_id
        now = int(time.time() * 1000)
        batch = [Metric(prefix + k, float(v), now, 0) for k, v in metrics.items()
                 if isinstance(v, (int, float)) and not isinstance(v, bool)]
        if batch:
            self.client.log_batch(run_id, metrics=batch)

    def set_alias(self, alias: str, version: str) -> None:
        self.client.set_registered_model_alias(self.model_name, alias, str(version))

    def delete_alias(self, alias: str) -> None:
        if self.alias_version(alias) is not None:
            self.client.delete_registered_model_alias(self.model_name, alias)

    # -- reading -----------------------------------------------------------------------------------

    def get(self, version_or_alias: str) -> Release:
        """A version by number, or the version an alias points to."""
        from mlflow.exceptions import MlflowException

        ref = str(version_or_alias)
        version = ref if ref.isdigit() else self.alias_version(ref)
        if version is None:
            raise RegistryError(f"{self.model_name}: no alias {ref!r} in {self.uri}")
        try:
            mv = self.client.get_model_version(self.model_name, version)
        except MlflowException as exc:
            if getattr(exc, "error_code", "") == "RESOURCE_DOES_NOT_EXIST":
                raise RegistryError(f"{self.model_name}: no version {ref!r} in {self.uri}") from None
            raise
        tags = dict(mv.tags)
        return Release(version=str(mv.version), run_id=mv.run_id, bundle_id=tags.get("bundle_id", ""),
                       index_version=tags.get("index_version", ""), state=tags.get("state", ""), tags=tags,
                       aliases=tuple(mv.aliases))

    def alias_version(self, alias: str) -> str | None:
        """The version an alias points to; None when the alias (or the model) does not exist yet.
        Read from the registered model's alias map: a missing alias is not an error there."""
        from mlflow.exceptions import MlflowException

        try:
            aliases = self.client.get_registered_model(self.model_name).aliases
        except MlflowException as exc:
            if getattr(exc, "error_code", "") == "RESOURCE_DOES_NOT_EXIST":
                return None
            raise
        version = aliases.get(alias)
        return str(version) if version is not None else None

    def releases(self) -> list[Release]:
        """Every version of the model, newest first."""
        found = self.client.search_model_versions(f"name = '{self.model_name}'")
        return sorted((self.get(mv.version) for mv in found), key=lambda r: -int(r.version))

    def download(self, version_or_alias: str, dst: str | Path) -> tuple[Path, Path | None]:
        """Fetch a release into `dst` (replaced whole) and verify it: (bundle_dir, index_dir or None).

        Through the version's run rather than a `models:/` URI: that path resolves the registry from
        the process-wide default URI, not this registry's."""
        release = self.get(version_or_alias)
        dst = Path(dst)
        dst.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{dst.name}.", dir=dst.parent))
        try:
            self.client.download_artifacts(release.run_id, ARTIFACT_ROOT, str(staging))
            root = staging / ARTIFACT_ROOT
            bundle_files.verify(root / "bundle")
            if release.index_version:
                bundle_files.verify(root / "index")
            shutil.rmtree(dst, ignore_errors=True)
            root.rename(dst)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        return dst / "bundle", (dst / "index" if release.index_version else None)

    # -- internals ---------------------------------------------------------------------------------

    def _experiment_id(self) -> str:
        experiment = self.client.get_experiment_by_name(EXPERIMENT)
        if experiment is not None:
            return experiment.experiment_id
        # Without an explicit location a sqlite store puts artifacts in ./mlruns of whatever the cwd is.
        location = (self._local_dir / "artifacts").as_uri() if self._local_dir else None
        return self.client.create_experiment(EXPERIMENT, artifact_location=location)

    def _ensure_model(self) -> None:
        from mlflow.exceptions import MlflowException

        try:
            self.client.get_registered_model(self.model_name)
        except MlflowException as exc:
            if getattr(exc, "error_code", "") != "RESOURCE_DOES_NOT_EXIST":
                raise
            self.client.create_registered_model(
                self.model_name, description="brand-safety releases: one model bundle + one index version each")
