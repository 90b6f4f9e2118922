"""The classical baseline a data scientist would try first: TF-IDF over character 2-5-grams and
one logistic regression per category, trained on the same split and the same rendered text, with
thresholds chosen the same way. Every report shows it beside the model."""
from __future__ import annotations

import numpy as np
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression

from .dataset import Examples


def fit_predict(train: Examples, val: Examples, seed: int = 13) -> np.ndarray:
    """Validation probabilities, shape (val rows, labels); labels with no training positives get 0."""
    vectorizer = TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), min_df=2, sublinear_tf=True,
                                 max_features=300_000, dtype=np.float32)
    x_train = vectorizer.fit_transform(train.texts)
    x_val = vectorizer.transform(val.texts)
    probs = np.zeros((len(val.texts), train.targets.shape[1]), dtype=np.float32)
    for j in range(train.targets.shape[1]):
        y = train.targets[:, j] > 0.5
        if y.sum() == 0:
            continue
        classifier = LogisticRegression(C=4.0, max_iter=2000, random_state=seed)
        classifier.fit(x_train, y)
        probs[:, j] = classifier.predict_proba(x_val)[:, 1]
    return probs
