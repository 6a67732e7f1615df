"""`kshot datasets`: which data sets exist and where they are found."""
from __future__ import annotations

from pathlib import Path

from .common import EPILOG

def add_datasets_parser(sub) -> None:
    p = sub.add_parser("datasets", help="list the data sets kshot knows and whether they are found locally",
                       epilog=EPILOG)
    p.add_argument("--data-dir")


def cmd_datasets(args) -> int:
    from ..data.mnist import FILES as MNIST_FILES
    from ..data.omniglot import PROTOCOLS, SPLIT_FILES, ZIPS
    from ..paths import default_cache_dir, default_data_dir

    root = Path(args.data_dir) if args.data_dir else default_data_dir()
    print(f"data directory: {root}{'' if root.exists() else ' (missing)'}")
    print(f"cache directory: {default_cache_dir()}")
    files = [z.filename for z in ZIPS.values()] + [s.filename for s in SPLIT_FILES.values()]
    found = [f for f in files if (root / "omniglot" / f).exists()]
    state = "found" if len(found) == len(files) else f"{len(found)}/{len(files)} files found; the rest download on first use"
    print(f"omniglot: {state} in {root / 'omniglot'}")
    for protocol, splits in PROTOCOLS.items():
        print(f"  --protocol {protocol}: splits {', '.join(splits)}")
    mnist = [r.filename for pair in MNIST_FILES.values() for r in pair]
    have = sum((root / "mnist" / f).exists() for f in mnist)
    print(f"mnist: {'found' if have == len(mnist) else f'{have}/{len(mnist)} files found; the rest download on first use'}"
          f" in {root / 'mnist'} (splits train, test)")
    print("folder: your own images, --dataset folder --data-dir DIR (DIR/<class>/*.png, or DIR/{train,val,test}/<class>/...)")
    return 0
