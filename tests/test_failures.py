"""training/failures.py: validation misses and false blocks, by the source list each row came from."""
import json

import numpy as np

from brandsafe.training.failures import by_source, source_of


def test_rows_are_grouped_by_their_source_list_at_the_90_percent_recall_threshold(tmp_path):
    data = tmp_path / "urls.jsonl"
    data.write_text("\n".join(json.dumps(r) for r in [
        {"url": "a.example", "labels": ["x"], "source": "lists", "source_label": "bad"},
        {"url": "b.example", "labels": [], "source": "lists", "source_label": "news"},
        {"url": "c.example", "labels": []},
    ]) + "\n")
    files = {}
    assert source_of(f"{data}:1", files) == "lists:bad"
    assert source_of(f"{data}:2", files) == "lists:news"
    assert source_of(f"{data}:3", files) == "-:-"
    assert source_of(f"{data}:9", files) == "-" and source_of("taxonomy:181#1.2", files) == "-"
    csv = tmp_path / "urls.csv"
    csv.write_text("url,label\na.example,\n")
    assert source_of(f"{csv}:2", files) == "-"  # CSV rows carry no source list

    rows = ([{"text": f"bad {i}", "labels": ["x"], "source": "lists:bad"} for i in range(10)]
            + [{"text": f"news {i}", "labels": [], "source": "lists:news"} for i in range(4)]
            + [{"text": f"shop {i}", "labels": [], "source": "lists:shop"} for i in range(4)])
    # Unsafe rows score 0.1 .. 1.0: flagging 9 of 10 takes a threshold of 0.2.
    scores = np.array([0.1 * (i + 1) for i in range(10)] + [0.9, 0.5, 0.15, 0.05] + [0.19, 0.1, 0.0, 0.0])
    threshold, summary = by_source(rows, scores)
    assert abs(threshold - 0.2) < 1e-9
    assert summary[0]["source"] == "lists:news" and (summary[0]["blocked"], summary[0]["safe"]) == (2, 4)
    assert summary[0]["blocked_example"] == "news 0"
    bad = next(g for g in summary if g["source"] == "lists:bad")
    assert (bad["caught"], bad["unsafe"], bad["missed_example"]) == (9, 10, "bad 0")
    shop = next(g for g in summary if g["source"] == "lists:shop")
    assert shop["blocked"] == 0
