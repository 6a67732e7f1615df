"""`kshot datasets`: every registered data set and where its files are looked for."""

from __future__ import annotations

from .common import EPILOG


def add_datasets_parser(sub) -> None:
    p = sub.add_parser(
        "datasets", help="list the data sets kshot knows and whether they are found locally", epilog=EPILOG
    )
    p.add_argument("--data-dir")


def cmd_datasets(args) -> int:
    from ..data import DATASETS, DataOptions
    from ..paths import default_cache_dir

    options = DataOptions(args.data_dir)
    print(f"data directory: {options.root}{'' if options.root.exists() else ' (missing)'}")
    print(f"cache directory: {default_cache_dir()}")
    for name, source in DATASETS.items():
        print(f"{name}: {source.summary}")
        print(f"  {source().status(options)}")
    return 0
