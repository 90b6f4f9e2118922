"""The classical baseline a data scientist would try first: TF-IDF over character 2-5-grams and
one logistic regression per category, trained on the same split and the same rendered text, with
thresholds chosen the same way. Every report shows it beside the model."""
from __future__ import annotations

import numpy as np
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression

from .dataset import Examples


class Baseline:
    def __init__(self, seed: int = 13):
        self.seed = seed
        self.vectorizer = TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), min_df=2, sublinear_tf=True,
                                          max_features=300_000, dtype=np.float32)
        self.classifiers: list[LogisticRegression | None] = []

    def fit(self, train: Examples) -> "Baseline":
        x = self.vectorizer.fit_transform(train.texts())
        self.classifiers = []
        for j in range(train.targets.shape[1]):
            y = train.targets[:, j] > 0.5
            self.classifiers.append(
                LogisticRegression(C=4.0, max_iter=2000, random_state=self.seed).fit(x, y) if 0 < y.sum() < len(y)
                else None)  # a label with no training positives scores 0
        return self

    def predict(self, texts: list[str]) -> np.ndarray:
        x = self.vectorizer.transform(texts)
        probs = np.zeros((len(texts), len(self.classifiers)), dtype=np.float32)
        for j, classifier in enumerate(self.classifiers):
            if classifier is not None:
                probs[:, j] = classifier.predict_proba(x)[:, 1]
        return probs
