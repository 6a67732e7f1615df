"""Verification training: a Siamese network on balanced same/different pairs (not episodes)."""
from __future__ import annotations

import time

import torch
import torch.nn.functional as F
from tqdm import tqdm

from ..data.dataset import ClassIndexedDataset
from ..data.pairs import balanced_pairs
from ..learners.siamese import SiameseNet


def pair_logits(net: SiameseNet, dataset: ClassIndexedDataset, first, second):
    return net.same_logits(net.embed(dataset.fetch(first)), net.embed(dataset.fetch(second)))


def train_pairs(net: SiameseNet, dataset: ClassIndexedDataset, steps: int, batch: int = 128, lr: float = 1e-3,
                seed: int = 0, progress: bool = True) -> float:
    """Adam on binary cross-entropy of 'same class'; a fresh balanced batch each step. Returns seconds."""
    opt = torch.optim.Adam(net.parameters(), lr)
    first, second, same = balanced_pairs(dataset, steps * batch, seed)
    net.train()
    start = time.perf_counter()
    for step in tqdm(range(steps), desc="train pairs", disable=not progress):
        sl = slice(step * batch, (step + 1) * batch)
        loss = F.binary_cross_entropy_with_logits(pair_logits(net, dataset, first[sl], second[sl]), same[sl].float())
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return time.perf_counter() - start


@torch.no_grad()
def pair_accuracy(net: SiameseNet, dataset: ClassIndexedDataset, n_pairs: int = 10000, seed: int = 1) -> tuple[float, float]:
    """(accuracy %, 95% CI %) of the 'same class' decision (P > 0.5) on balanced pairs."""
    net.eval()
    first, second, same = balanced_pairs(dataset, n_pairs, seed)
    correct = torch.cat([(pair_logits(net, dataset, first[i:i + 2000], second[i:i + 2000]) > 0) == same[i:i + 2000]
                         for i in range(0, n_pairs, 2000)]).double()
    mean = correct.mean().item()
    return 100 * mean, 100 * 1.96 * (mean * (1 - mean) / n_pairs) ** 0.5
