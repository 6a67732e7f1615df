"""Exact nearest-prototype search that reads half the memory.

At 100,000 enrolled classes of a 1024-wide embedding, a request's time is reading the
float32 prototypes (400 MB). Here a float16 copy (200 MB) scores every class, the best
`candidates` are re-scored from the float32 prototypes, and a bound on the float16 error
proves that no class outside them could have made the top k; when the proof fails (near-ties
across the candidate boundary) that query is answered by the full float32 scan. The answer is
therefore the float32 one: the same classes, with scores equal up to float32 rounding.

Scores are minus squared distances, 2 q.p - |p|^2 - |q|^2. Before rounding, q and every p are
scaled to at most unit length, so dot products lie in [-1, 1] (float16 would overflow on raw
embeddings) and the rounding error of each is below 2^-9: 2^-11 for each rounded input,
2^-11 for the rounded output, and products accumulated in float32 (checked in the tests).
"""

from __future__ import annotations

import torch
from torch import Tensor

from ..learners.protonet import squared_euclidean

DOT_ERROR = 2.0**-9  # bound on |fp16 dot - exact dot| for vectors of at most unit length


class HalfPrecisionSearch:
    def __init__(self, prototypes: Tensor, candidates: int = 64):
        self.full = prototypes.float().contiguous()
        self.norms = self.full.pow(2).sum(1)  # |p|^2, float32
        self.scale = self.norms.max().sqrt().clamp_min(1e-12) if len(prototypes) else torch.tensor(1.0)
        self.half = (self.full / self.scale).half()
        self.candidates = candidates
        self.fallbacks = 0  # queries answered by the full scan (for the benchmark)

    def __len__(self) -> int:
        return self.full.shape[0]

    def exact_scores(self, queries: Tensor, rows: Tensor | None = None) -> Tensor:
        """Minus squared distances in float32, to all prototypes (as the model's own prototype
        classifier scores them) or to `rows` [n, m] of them."""
        if rows is None:
            return -squared_euclidean(queries, self.full, self.norms.unsqueeze(0))
        q_norms = queries.pow(2).sum(1, keepdim=True)
        picked = self.full[rows]  # [n, m, d]
        dots = torch.einsum("nd,nmd->nm", queries, picked)
        return -(q_norms - 2 * dots + self.norms[rows]).clamp_min(0)

    def top(self, queries: Tensor, k: int) -> tuple[Tensor, Tensor]:
        """(scores [n, k], indices [n, k]) of the k nearest prototypes of each query, exactly."""
        queries = queries.float()
        n_classes = len(self)
        k = min(k, n_classes)
        m = min(n_classes, max(self.candidates, k))
        if m == n_classes:  # nothing to save: score everything exactly
            return self.exact_scores(queries).topk(k, dim=1)
        q_lengths = queries.norm(dim=1, keepdim=True).clamp_min(1e-12)
        dots = ((queries / q_lengths).half() @ self.half.T).float()  # [n, classes], each within DOT_ERROR
        # Approximate scores without the |q|^2 term, which is the same for every class of a query.
        approx = 2 * q_lengths * self.scale * dots - self.norms.unsqueeze(0)
        margin = 2 * q_lengths.squeeze(1) * self.scale * DOT_ERROR  # per query
        ranked = approx.topk(m + 1, dim=1)
        chosen = ranked.indices[:, :m]
        exact = self.exact_scores(queries, chosen)
        best = exact.topk(k, dim=1)
        indices = chosen.gather(1, best.indices)
        # A class outside the candidates truly scores at most the approximate score of the first
        # one left out, plus the margin; the k-th exact score among the candidates must reach that.
        outside_best = ranked.values[:, m] - queries.pow(2).sum(1) + margin
        proven = best.values[:, -1] >= outside_best
        if not bool(proven.all()):
            redo = (~proven).nonzero().squeeze(1)
            self.fallbacks += int(redo.numel())
            full = self.exact_scores(queries[redo]).topk(k, dim=1)
            values, indices = best.values.clone(), indices.clone()
            values[redo], indices[redo] = full.values, full.indices
            return values, indices
        return best.values, indices
