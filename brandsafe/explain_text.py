"""An ExplainResponse for a terminal (`brandsafe explain`)."""
from __future__ import annotations

from brandsafe.client import brief
from brandsafe.v1 import brandsafe_pb2 as pb

_FIELDS = {"path:": "path", "title:": "title", "keywords:": "keywords", "<context>": "context"}


def word_fields(text: str) -> list[str]:
    """For each word of a rendered text, the part of the page it came from (site, path, title, …)."""
    fields, current = [], "site"
    for word in text.split():
        current = _FIELDS.get(word, current)
        fields.append(current)
    return fields


def format_explanation(response: pb.ExplainResponse, words: int = 6) -> str:
    verdict = response.verdict
    lines = [brief(verdict), "",
             f"model text ({response.text_schema}):", f"  {response.model_text}", ""]
    if verdict.HasField("domain_list"):
        lines += [f"decided by the profile's {verdict.domain_list.list}: {verdict.domain_list.domain} "
                  "(the model's scores below did not decide)", ""]
    lines.append(f"profile {verdict.policy_id}: categories it blocks, highest score first")
    for check in response.thresholds[:8]:
        mark = "BLOCK" if check.reached else "     "
        lines.append(f"  {mark} {check.score:6.3f} / {check.threshold:.3f}  {check.category_name}")
    if len(response.thresholds) > 8:
        lines.append(f"  … {len(response.thresholds) - 8} more below")
    lines.append("")
    fields = word_fields(response.model_text)
    if not response.explanations:
        lines.append("no category scored above the report floor: nothing to explain")
    for explanation in response.explanations:
        lines.append(f"{explanation.category_name} {explanation.score:.3f}: words that drove it "
                     "(score minus the score without the word)")
        for influence in explanation.words[:words]:
            arrow = "raised" if influence.drop > 0 else "lowered"
            where = fields[influence.position] if influence.position < len(fields) else "?"
            lines.append(f"  {influence.word:>22s} ({where:8s}) {influence.drop:+.3f}  ({arrow} it)")
    return "\n".join(lines)
