"""Training-time augmentation against the host/path shortcut.

In the source lists almost every adult and malware row carries a path and almost every safe
row is a bare domain, so "has a path" alone predicts the label. Stripping paths from some rows
and adding neutral paths to others, whatever their label, makes path presence carry no signal,
so the model has to read the words.
"""
from __future__ import annotations

import random
from dataclasses import replace

from brandsafe.rendering import PageContext
from brandsafe.urltext import split_url

NEUTRAL_SEGMENTS = [
    "index", "home", "about", "news", "article", "page", "en", "fr", "de", "blog", "post", "products", "category",
    "tag", "search", "2019", "2021", "2023", "2024", "wp-content", "uploads", "images", "contact", "shop", "item",
    "view", "story", "world", "local", "help", "docs", "events", "media", "video", "watch", "forum", "topic",
]
NEUTRAL_ENDINGS = ["", "", "", ".html", ".php", "/", "?id={n}", "?page={n}", "?lang=en"]


def neutral_path(rng: random.Random) -> str:
    segments = rng.sample(NEUTRAL_SEGMENTS, rng.randint(1, 3))
    return "/" + "/".join(segments) + rng.choice(NEUTRAL_ENDINGS).format(n=rng.randint(1, 9999))


def has_path(url: str) -> bool:
    _, rest = split_url(url)
    return bool(rest.strip("/ "))


def strip_path(url: str) -> str:
    host, _ = split_url(url)
    return host


class ShortcutAugmenter:
    def __init__(self, strip_path_prob: float, add_path_prob: float, drop_title_prob: float, seed: int):
        self.strip_path_prob = strip_path_prob
        self.add_path_prob = add_path_prob
        self.drop_title_prob = drop_title_prob
        self.rng = random.Random(seed)

    def __call__(self, page: PageContext) -> PageContext:
        url = page.url
        if url:
            if has_path(url):
                if self.rng.random() < self.strip_path_prob:
                    url = strip_path(url)
            elif self.rng.random() < self.add_path_prob:
                url = strip_path(url) + neutral_path(self.rng)
        title = page.title
        if title and self.rng.random() < self.drop_title_prob:
            title = ""
        return replace(page, url=url, title=title)
