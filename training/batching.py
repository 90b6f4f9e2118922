"""Length-grouped batches: rows of similar length train together, so a batch pads to ~its own
length instead of the longest title in a random draw (most rows are a bare host of ~8 tokens,
UK Web Archive rows carry ~30-token titles). Order stays random between batches."""
from __future__ import annotations

import random

from torch.utils.data import Sampler


class LengthGroupedBatches(Sampler[list[int]]):
    def __init__(self, lengths: list[int], batch_size: int, seed: int, group_batches: int = 50):
        self.lengths = lengths
        self.batch_size = batch_size
        self.seed = seed
        self.group = batch_size * group_batches
        self.epoch = 0

    def __len__(self) -> int:
        return (len(self.lengths) + self.batch_size - 1) // self.batch_size

    def __iter__(self):
        rng = random.Random(self.seed + self.epoch)
        self.epoch += 1
        order = list(range(len(self.lengths)))
        rng.shuffle(order)
        batches = []
        for start in range(0, len(order), self.group):
            group = sorted(order[start:start + self.group], key=self.lengths.__getitem__)
            batches += [group[i:i + self.batch_size] for i in range(0, len(group), self.batch_size)]
        rng.shuffle(batches)
        return iter(batches)
