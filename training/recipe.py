"""Training recipes are TOML files: `training/recipes/<name>.toml`, or any path to one."""
from __future__ import annotations

import importlib.util
import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

RECIPE_DIR = Path(__file__).parent / "recipes"
DEFAULT_RECIPE = "minilm-cpu"


class RecipeError(ValueError):
    pass


@dataclass(frozen=True)
class Recipe:
    name: str
    base: str                  # "package:<module>/<subdir>", "env:<VAR>", or a local path
    dtype: str = "float32"
    pad_token: str = ""        # added as a special token when the base tokenizer has none
    lora_r: int = 16
    lora_alpha: int = 32
    lora_dropout: float = 0.1
    lora_targets: tuple[str, ...] = ()
    # Layers that get an adapter (empty = all). The layers below the lowest one stay exactly the
    # pretrained encoder, and backpropagation stops there (about half the work on 6 layers).
    lora_layers: tuple[int, ...] = ()
    # Trained and saved in full besides the adapter: the classification head, and for BERT-style
    # encoders the pooler in front of it.
    trainable_modules: tuple[str, ...] = ("classifier",)
    identity_pooler: bool = False  # start the pooler as identity (see model.py)
    max_length: int = 64
    batch_size: int = 32
    grad_accum: int = 1
    epochs: float = 1.0
    lr: float = 5e-4
    weight_decay: float = 0.01
    warmup_ratio: float = 0.06
    label_smoothing: float = 0.0
    gradient_checkpointing: bool = False
    mixed_precision: str = "no"
    pos_weight_power: float = 0.0     # positives weighted (negatives/positives) ** power; 0 = off
    pos_weight_max: float = 10.0
    eval_every: int = 0               # validate every N steps and keep the best; 0 = only at the end
    threshold_min_precision: float = 0.0
    taxonomy_examples: bool = False   # add IAB taxonomy pages to the training side
    strip_path_prob: float = 0.0      # shortcut augmentation, see augment.py
    add_path_prob: float = 0.0
    drop_title_prob: float = 0.0
    # Retrieval (see context.py): share of training rows that carry a <context> block, passages per
    # row, made-up hosts whose label only their note gives (training / citation check). 0 = none.
    context_fraction: float = 0.0
    context_top_k: int = 3
    note_rows: int = 0
    citation_rows: int = 200
    # Rows whose "source:source_label" starts with one of these are not used (content sources whose
    # labels contradict the product's definitions, e.g. culinary alcohol questions as "drugs").
    exclude_sources: tuple[str, ...] = ()
    val_fraction: float = 0.15
    seed: int = 13
    max_steps: int = 0         # 0 = run the epochs; >0 caps optimizer steps (smoke runs)
    export_precision: str = "int8"
    source: str = ""
    extra: dict = field(default_factory=dict)

    def resolve_base(self) -> Path:
        """Local path of the base weights; never a hub id, so nothing is downloaded."""
        kind, _, rest = self.base.partition(":")
        if kind == "package" and rest:
            module, _, sub = rest.partition("/")
            spec = importlib.util.find_spec(module)
            if spec is None or spec.origin is None:
                raise RecipeError(f"recipe {self.name}: base package {module!r} is not installed")
            path = Path(spec.origin).parent / sub
        elif kind == "env" and rest:
            value = os.environ.get(rest)
            if not value:
                raise RecipeError(f"recipe {self.name}: set {rest} to the local checkpoint folder")
            path = Path(value)
        else:
            path = Path(self.base).expanduser()
        if not (path / "config.json").is_file():
            raise RecipeError(f"recipe {self.name}: no config.json under {path}; base must be a local checkpoint folder")
        return path


def load_recipe(name_or_path: str, **overrides) -> Recipe:
    path = Path(name_or_path)
    if not path.suffix:
        path = RECIPE_DIR / f"{name_or_path}.toml"
    if not path.is_file():
        known = ", ".join(sorted(p.stem for p in RECIPE_DIR.glob("*.toml")))
        raise RecipeError(f"no recipe {name_or_path!r} (known: {known}, or give a path to a .toml)")
    with path.open("rb") as fh:
        raw = tomllib.load(fh)
    flat = {"name": raw.get("name", path.stem), "source": str(path)}
    for section in ("base", "lora", "train", "data", "context", "export"):
        for key, value in raw.get(section, {}).items():
            flat[_KEYS.get((section, key), key)] = value
    flat.update({k: v for k, v in overrides.items() if v is not None})
    for key in ("lora_targets", "lora_layers", "trainable_modules", "exclude_sources"):
        if key in flat:
            flat[key] = tuple(flat[key])
    known_fields = Recipe.__dataclass_fields__
    unknown = sorted(set(flat) - set(known_fields))
    if unknown:
        raise RecipeError(f"{path}: unknown recipe keys {unknown}")
    if "base" not in flat:
        raise RecipeError(f"{path}: [base] path is required")
    return Recipe(**flat)


# TOML keys read more naturally inside their section; map them to flat field names.
_KEYS = {
    ("base", "path"): "base",
    ("lora", "r"): "lora_r",
    ("lora", "alpha"): "lora_alpha",
    ("lora", "dropout"): "lora_dropout",
    ("lora", "target_modules"): "lora_targets",
    ("lora", "layers"): "lora_layers",
    ("export", "precision"): "export_precision",
    ("context", "fraction"): "context_fraction",
    ("context", "top_k"): "context_top_k",
    ("data", "exclude_sources"): "exclude_sources",
}
