"""Page shapes: training-time augmentation against the host/path shortcut, and pages as bidders
send them.

In the source lists almost every adult and malware row carries a path and almost every safe
row is a bare domain, so "has a path" alone predicts the label. Stripping paths from some rows
and adding neutral paths to others, whatever their label, makes path presence carry no signal,
so the model has to read the words. A real bid request always carries a full URL, so validation
is also measured with every bare domain given a scheme and a neutral path (`as_bidders_send`),
and title-only rows (headlines, posts) are published on generic hosts (`publish`).
"""
from __future__ import annotations

import random
import re
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


# The paths a bidder's bare-domain page gets in the "as bidders send it" validation view: every one
# carries no meaning, so safe and unsafe hosts alike gain a path and "has a path" means nothing.
BIDDER_PATHS = ["/", "/index.html", "/news", "/2023/05/17/welcome", "/products?id=1042", "/home", "/blog/",
                "/category/latest/", "/en/", "/page/2", "/article/88231", "/watch?v=k2LmQ93xZpA"]

# Hosts that carry every kind of page (platforms, generic publishers, forums): title-only rows and
# taxonomy examples are published here whatever their label, so the host says nothing and the
# title decides.
GENERIC_HOSTS = [
    "https://www.youtube.com/watch?v=", "https://vimeo.com/", "https://www.dailymotion.com/video/",
    "https://medium.com/@writer/", "https://blog.wordpress.com/", "https://www.tumblr.com/post/",
    "https://www.reddit.com/r/videos/comments/", "https://www.facebook.com/watch/", "https://twitter.com/user/status/",
    "https://www.dailynewsnetwork.com/article/", "https://www.citytribune.co.uk/news/", "https://www.tiktok.com/@user/video/",
    "https://www.forumhub.net/thread/", "https://www.globalpost.org/story/",
]
_ID_CHARS = "abcdefghjkmnpqrstuvwxyz0123456789"
_SLUG_JUNK = re.compile(r"[^a-z0-9]+")


def as_bidders_send(url: str, rng: random.Random) -> str:
    """A bare domain as a bid request carries it: scheme and a meaningless path; full URLs unchanged."""
    if not url or has_path(url):
        return url
    return "https://" + strip_path(url) + rng.choice(BIDDER_PATHS)


def publish(title: str, rng: random.Random) -> str:
    """A URL for a title-only row on a generic host: half the time a CMS slug of the title (the
    first words, as publishers write them), half an opaque id, so the model meets both."""
    host = rng.choice(GENERIC_HOSTS)
    if rng.random() < 0.5:
        slug = "-".join(_SLUG_JUNK.sub(" ", title.lower()).split()[:8])
        if slug:
            return host + slug
    return host + "".join(rng.choice(_ID_CHARS) for _ in range(rng.randint(6, 11)))


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
