"""Training rows with a `<context>` block: the knowledge base a run ships, and how rows get passages.

The knowledge base of a run holds three kinds of passage:
  - one per label: what the category covers (the same words the taxonomy examples use);
  - one note per training domain: what the site is known for, from its labels. Validation domains
    get none, so validation still measures unseen sites;
  - notes for made-up hosts whose only signal is the note (the citation set): the rows that prove the
    model reads the passage rather than the host.

Training rows get passages the way serving gets them (the same Retriever), for `context_fraction` of
rows; for half of those the row's own domain note is withheld, as it would be for a site nobody has
written about, so the model learns to weigh neighbours' notes and taxonomy passages as hints, not
answers. Note-following rows (bare made-up hosts, label = the note's category) teach it that a keyed
note about this very host is the fact to follow, including when the note changes.
"""
from __future__ import annotations

import json
import random
from collections import defaultdict
from dataclasses import replace
from pathlib import Path

import numpy as np

from brandsafe.domains import registrable_domain
from brandsafe.labels import LabelSet
from brandsafe.rendering import PageContext
from brandsafe.retrieval import KnowledgePassage, Retriever

from .augment import GENERIC_HOSTS
from .dataset import Examples
from .taxonomy_examples import RISK_PAGES

NOTE_SHAPES = [
    "{host} is known for {topic}.",
    "{host}: a site about {topic}.",
    "Reviewers list {host} as {topic}.",
    "Most pages on {host} cover {topic}.",
]
SAFE_TOPICS = [
    "cooking and recipes", "football news and match reports", "travel guides", "personal finance advice",
    "gardening tips", "school homework help", "local weather forecasts", "home improvement", "pet care",
    "classical music", "children's books", "cycling and running", "software tutorials", "fashion and beauty",
    "science news", "family health advice",
]
# Made-up host words; the first half names training hosts, the second half citation-check hosts, so
# the citation check never sees a host the model was trained on.
HOST_WORDS = [
    "amber", "birch", "cobalt", "delta", "ember", "fjord", "granite", "harbor", "indigo", "juniper", "kestrel",
    "lumen", "maple", "nimbus", "orchid", "pebble", "quartz", "raven", "sierra", "tundra",
    "umber", "violet", "willow", "xenon", "yarrow", "zephyr", "alder", "basalt", "cedar", "dune", "echo",
    "falcon", "glade", "heron", "iris", "jasper", "kelp", "lotus", "mesa", "nova",
]
HOST_SUFFIXES = [".com", ".net", ".org", ".info", ".co", ".site"]


def category_passages(labels: LabelSet) -> list[KnowledgePassage]:
    passages = []
    for label in labels:
        phrases = RISK_PAGES.get(label.name, [])
        text = f"IAB category {label.name}: " + ("; ".join(phrases[:4]) if phrases else label.name)
        passages.append(KnowledgePassage(f"iab:{label.id}", label.name, text))
    return passages


def _topic(label_names: list[str], rng: random.Random) -> str:
    if not label_names:
        return rng.choice(SAFE_TOPICS) + " (brand-safe)"
    return " and ".join(f"{name.lower()} ({rng.choice(RISK_PAGES.get(name, [name]))})" for name in label_names)


_GENERIC_DOMAINS = frozenset(registrable_domain(h) for h in GENERIC_HOSTS)


def domain_notes(examples: Examples, labels: LabelSet, seed: int) -> list[KnowledgePassage]:
    """One note per registrable domain in `examples`: the union of its rows' labels."""
    rng = random.Random(seed)
    by_domain: dict[str, set[int]] = defaultdict(set)
    for page, target, origin in zip(examples.pages, examples.targets, examples.origins):
        # Generic hosts carry every kind of page (made-up pages and published titles live there):
        # a note on what they are "known for" would be a lie.
        domain = registrable_domain(page.url) if page.url else ""
        if domain and not origin.startswith("taxonomy:") and domain not in _GENERIC_DOMAINS:
            by_domain[domain].update(np.flatnonzero(target).tolist())
    notes = []
    for domain in sorted(by_domain):
        names = [labels.labels[j].name for j in sorted(by_domain[domain])]
        text = rng.choice(NOTE_SHAPES).format(host=domain, topic=_topic(names, rng))
        notes.append(KnowledgePassage(f"site:{domain}", domain, text, (domain,)))
    return notes


def made_up_hosts(count: int, seed: int, citation: bool) -> list[str]:
    words = HOST_WORDS[len(HOST_WORDS) // 2:] if citation else HOST_WORDS[:len(HOST_WORDS) // 2]
    rng = random.Random(seed)
    hosts: set[str] = set()
    while len(hosts) < count:
        a, b = rng.sample(words, 2)
        hosts.add(f"{a}-{b}{rng.randint(1, 999)}{rng.choice(HOST_SUFFIXES)}")
    return sorted(hosts)


def note_cases(labels: LabelSet, count: int, seed: int, citation: bool) -> tuple[list[KnowledgePassage], list[dict]]:
    """(notes, rows) for made-up hosts: each row is the bare host, labelled with its note's category
    (about a third are brand-safe notes)."""
    rng = random.Random(seed)
    notes, rows = [], []
    for host in made_up_hosts(count, seed, citation):
        label = rng.choice(labels.labels) if rng.random() > 0.33 else None
        names = [label.name] if label else []
        notes.append(KnowledgePassage(f"site:{host}", host, rng.choice(NOTE_SHAPES).format(
            host=host, topic=_topic(names, rng)), (host,)))
        rows.append({"url": f"https://{host}/", "title": "", "labels": [label.id] if label else [],
                     "passage_id": f"site:{host}"})
    return notes, rows


def note_examples(rows: list[dict], labels: LabelSet) -> Examples:
    targets = np.zeros((len(rows), len(labels)), dtype=np.float32)
    for i, row in enumerate(rows):
        for label_id in row["labels"]:
            targets[i, labels.index[label_id]] = 1.0
    return Examples([PageContext(url=r["url"], title=r["title"]) for r in rows], targets,
                    [f"note:{r['passage_id']}" for r in rows])


def attach_context(examples: Examples, retriever: Retriever, fraction: float, k: int, seed: int) -> Examples:
    """A copy of `examples` where `fraction` of rows carry retrieved passages; for half of those
    the passage keyed to the row's own domain is withheld (a site nobody has written about)."""
    rng = random.Random(seed)
    chosen = [i for i in range(len(examples)) if rng.random() < fraction]
    retrieved = retriever.retrieve_many([examples.pages[i] for i in chosen], k + 1, progress="retrieve for training rows")
    pages = list(examples.pages)
    for i, passages in zip(chosen, retrieved):
        if rng.random() < 0.5 and pages[i].url:
            own = f"site:{registrable_domain(pages[i].url)}"
            passages = tuple(p for p in passages if p.source_id != own)
        pages[i] = replace(pages[i], passages=passages[:k])
    return Examples(pages, examples.targets, examples.origins)


def with_retrieval(examples: Examples, retriever: Retriever, k: int) -> Examples:
    """Every row with what the retriever returns for it: how serving would see these pages."""
    retrieved = retriever.retrieve_many(examples.pages, k, progress="retrieve passages")
    return Examples([replace(p, passages=ps) for p, ps in zip(examples.pages, retrieved)], examples.targets,
                    examples.origins)


def write_jsonl(rows: list[dict], path: Path) -> None:
    with Path(path).open("w", encoding="utf-8") as fh:
        for row in rows:
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")
