"""The Prometheus rules and the Grafana dashboard in deploy/ read metrics the service exports
(under those exact names and labels), and the rules are well-formed (promtool when installed)."""
from __future__ import annotations

import json
import re
import shutil
import subprocess

import pytest
import yaml
from prometheus_client import CollectorRegistry

from brandsafe.service.metrics import Metrics
from conftest import REPO

RULES = REPO / "deploy" / "prometheus" / "brandsafe-rules.yml"
DASHBOARD = REPO / "deploy" / "grafana" / "brandsafe-dashboard.json"
PROMQL_WORDS = {"sum", "by", "rate", "histogram_quantile", "clamp_min", "max", "offset", "or", "le", "without",
                "and", "unless", "on", "ignoring", "avg", "min", "count", "irate", "increase", "abs"}


def exported() -> dict[str, set[str]]:
    """Every sample name the service's registry can export, with its label names."""
    metrics = Metrics(CollectorRegistry())
    names: dict[str, set[str]] = {}
    for collector in {id(c): c for c in metrics.registry._names_to_collectors.values()}.values():
        for family in collector.describe() or collector.collect():
            labels = set(getattr(collector, "_labelnames", ()) or getattr(collector, "labelnames", ()))
            suffixes = {"counter": ["_total"], "histogram": ["_bucket", "_sum", "_count"]}.get(family.type, [""])
            for suffix in suffixes:
                base = family.name[:-len("_total")] if family.name.endswith("_total") else family.name
                names[base + suffix] = labels | ({"le"} if suffix == "_bucket" else set())
    return names


def rule_exprs() -> list[str]:
    groups = yaml.safe_load(RULES.read_text())["groups"]
    return [rule["expr"] for group in groups for rule in group["rules"]]


def recorded() -> set[str]:
    return {rule["record"] for group in yaml.safe_load(RULES.read_text())["groups"] for rule in group["rules"]
            if "record" in rule}


def check_expr(expr: str, known: dict[str, set[str]]) -> None:
    for selector in re.finditer(r"\b([a-z_:][a-z0-9_:]*)\s*(\{[^}]*\})?", expr):
        name, labels = selector.group(1), selector.group(2)
        if name in PROMQL_WORDS or name in recorded() or re.fullmatch(r"\d+[smhd]?", name):
            continue
        if name.startswith("brandsafe_"):
            assert name in known, f"{name} is not exported by service/metrics.py (in {expr!r})"
            for label in re.findall(r"(\w+)\s*!?=~?", labels or ""):
                assert label in known[name], f"{name} has no label {label!r} (in {expr!r})"
    for grouping in re.finditer(r"by \(([^)]*)\)", expr):
        for label in (l.strip() for l in grouping.group(1).split(",")):
            assert any(label in labels for labels in known.values()) or label == "instance", (label, expr)


def test_rules_read_metrics_the_service_exports():
    known = exported()
    assert "brandsafe_decisions_total" in known and "grpc_method" in known["brandsafe_requests_total"]
    exprs = rule_exprs()
    alerts = {rule["alert"] for group in yaml.safe_load(RULES.read_text())["groups"] for rule in group["rules"]
              if "alert" in rule}
    assert alerts == {"BrandsafeP99OverBudget", "BrandsafeFallbackShareHigh", "BrandsafeBlockRateShift",
                      "BrandsafeRedisBreakerOpen"}
    for expr in exprs:
        check_expr(expr, known)


def test_a_misspelt_metric_is_caught():
    with pytest.raises(AssertionError, match="not exported"):
        check_expr('sum(rate(brandsafe_decision_total[5m]))', exported())
    with pytest.raises(AssertionError, match="no label 'method'"):
        check_expr('rate(brandsafe_requests_total{method="Classify"}[5m])', exported())


def test_dashboard_panels_query_exported_metrics():
    dashboard = json.loads(DASHBOARD.read_text())
    known = exported()
    exprs = [t["expr"] for panel in dashboard["panels"] for t in panel["targets"]]
    assert len(dashboard["panels"]) >= 8 and len({p["id"] for p in dashboard["panels"]}) == len(dashboard["panels"])
    for expr in exprs:
        check_expr(expr, known)
    joined = " ".join(exprs)
    for needed in ("brandsafe_decisions_total", "brandsafe_category_score_bucket", "brandsafe_cache_redis_up",
                   "brandsafe_request_latency_seconds_bucket", "brandsafe:fallback_share:rate5m"):
        assert needed in joined


def test_promtool_accepts_the_rules_and_their_unit_tests_fire_each_alert():
    promtool = shutil.which("promtool")
    assert promtool, "promtool is required (Debian package prometheus; .ci/run installs it)"
    check = subprocess.run([promtool, "check", "rules", str(RULES)], capture_output=True, text=True, timeout=60)
    assert check.returncode == 0 and "SUCCESS: 7 rules found" in check.stdout, check.stdout + check.stderr
    # Synthetic series for each alert: fallbacks at 5 %, p99 at ~30 ms, a breaker open, a block share tripled.
    unit = subprocess.run([promtool, "test", "rules", RULES.with_suffix(".test.yml").name], capture_output=True,
                          text=True, timeout=60, cwd=RULES.parent)
    assert unit.returncode == 0, unit.stdout + unit.stderr
