"""`kshot plot`: pictures of a trained model."""

from __future__ import annotations

from ..errors import KshotError
from .common import EPILOG, checkpoint_data


def add_plot_parser(sub) -> None:
    p = sub.add_parser("plot", help="draw pictures of a trained model (t-SNE of embeddings)")
    kinds = p.add_subparsers(dest="plot", required=True)
    t = kinds.add_parser(
        "tsne", help="t-SNE of the embeddings of a few test characters, misclassified points marked", epilog=EPILOG
    )
    t.add_argument("checkpoint")
    t.add_argument("--out", default="tsne.png", help="PNG to write (default tsne.png)")
    t.add_argument("--alphabet", help="Omniglot alphabet of the test split (default: the first)")
    t.add_argument("--classes", type=int, default=10, help="how many characters (default 10)")
    t.add_argument("--shot", type=int, default=5, help="support images per class for the predictions (default 5)")
    t.add_argument("--split", default="test")
    t.add_argument("--data-dir")
    t.add_argument("--no-download", action="store_true")


def cmd_plot(args) -> int:
    from ..engine.build import load_learner

    try:
        import matplotlib  # noqa: F401  (only to fail early with install advice)
        import sklearn  # noqa: F401

        from ..plots.tsne import plot_tsne
    except ImportError as e:
        raise KshotError(f"plots need matplotlib and scikit-learn: pip install 'kshot[plot]' ({e})") from e
    learner, meta = load_learner(args.checkpoint)
    _, _, dataset = checkpoint_data(meta, args.split, data_dir=args.data_dir, allow_download=not args.no_download)
    info = plot_tsne(learner, dataset, args.out, args.alphabet, args.classes, args.shot)
    print(
        f"wrote {args.out}: {info['points']} images of {info['classes']} classes, {info['misclassified']} misclassified"
    )
    return 0
