"""Episode shapes that fit the data: a default the data cannot satisfy is lowered (and said), a
setting the user gave is never changed; what cannot fit names the flag to change."""

from __future__ import annotations

from dataclasses import replace

from ..data.dataset import ClassIndexedDataset
from ..errors import DataError
from .config import TrainConfig

EPISODE_SETTINGS = ("way", "query", "val_way", "val_query")


def fit_episode(
    dataset: ClassIndexedDataset,
    way: int,
    shot: int,
    query: int,
    flags: tuple[str, str, str],
    adjustable: set[str] | frozenset[str],
) -> tuple[int, int, list[str]]:
    """(way, query, notes) for episodes of `dataset`. `flags` are the (way, shot, query) options'
    names; the way and query named in `adjustable` are lowered to what the data holds."""
    way_flag, shot_flag, query_flag = flags
    smallest = int(dataset.class_sizes.min())
    if smallest - shot < 1:
        raise DataError(
            f"the smallest class of {dataset.name} has {smallest} items: none is left to query "
            f"after {shot} support; lower {shot_flag}"
        )
    notes = []
    if way > dataset.num_classes and way_flag in adjustable:
        notes.append(f"{way_flag} lowered from {way} to {dataset.num_classes}: {dataset.name} has that many classes")
        way = dataset.num_classes
    if query > smallest - shot and query_flag in adjustable:
        notes.append(
            f"{query_flag} lowered from {query} to {smallest - shot}: the smallest class of {dataset.name} "
            f"has {smallest} items, {shot} of them support"
        )
        query = smallest - shot
    return way, query, notes


def fit_to_data(
    config: TrainConfig,
    train_set: ClassIndexedDataset,
    val_set: ClassIndexedDataset | None,
    adjustable: set[str] | frozenset[str],
) -> tuple[TrainConfig, list[str]]:
    """(settings whose episodes fit the data sets, notes on what was lowered). `adjustable` names
    TrainConfig fields (defaults the user did not choose)."""
    flags = {f"--{name.replace('_', '-')}" for name in adjustable}
    way, query, notes = fit_episode(
        train_set, config.way, config.shot, config.query, ("--way", "--shot", "--query"), flags
    )
    changes = {"way": way, "query": query}
    if val_set is not None:
        val_shot = config.shot if config.val_shot is None else config.val_shot
        val_way, val_query, more = fit_episode(
            val_set, config.val_way, val_shot, config.val_query, ("--val-way", "--val-shot", "--val-query"), flags
        )
        changes |= {"val_way": val_way, "val_query": val_query}
        notes += more
    return replace(config, **changes), notes
