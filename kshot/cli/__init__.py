"""The `kshot` command line: one module per command."""

from __future__ import annotations

import argparse
import sys

from ..allocator import keep_freed_memory
from ..errors import KshotError
from . import curves, datasets, enroll, evaluate, instances, pairs, plot, rl, serve, sinusoid, tasks, train, zeroshot
from .common import EPILOG, machine_description

COMMANDS = {
    "train": (train.add_train_parser, train.cmd_train),
    "eval": (evaluate.add_eval_parser, evaluate.cmd_eval),
    "instances": (instances.add_instances_parser, instances.cmd_instances),
    "curves": (curves.add_curves_parser, curves.cmd_curves),
    "tasks": (tasks.add_tasks_parser, tasks.cmd_tasks),
    "datasets": (datasets.add_datasets_parser, datasets.cmd_datasets),
    "pairs": (pairs.add_pairs_parser, pairs.cmd_pairs),
    "plot": (plot.add_plot_parser, plot.cmd_plot),
    "sinusoid": (sinusoid.add_sinusoid_parser, sinusoid.cmd_sinusoid),
    "enroll": (enroll.add_enroll_parsers, enroll.cmd_enroll),
    "identify": (lambda sub: None, enroll.cmd_identify),
    "classes": (lambda sub: None, enroll.cmd_classes),
    "serve": (serve.add_serve_parser, serve.cmd_serve),
    "zero-shot": (zeroshot.add_zeroshot_parser, zeroshot.cmd_zeroshot),
    "rl": (rl.add_rl_parser, rl.cmd_rl),
}
# Commands whose process is a training or evaluation loop: they keep freed memory (allocator.py).
LOOP_COMMANDS = ("train", "eval", "sinusoid")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="kshot", description="Few-shot learning and meta-learning.", epilog=EPILOG)
    sub = parser.add_subparsers(dest="command", required=True)
    for add, _ in COMMANDS.values():
        add(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    args = build_parser().parse_args(argv)
    args.argv = argv
    if args.command in LOOP_COMMANDS:
        keep_freed_memory()
    if getattr(args, "threads", None):
        import torch

        torch.set_num_threads(args.threads)
    try:
        return COMMANDS[args.command][1](args)
    except KshotError as e:
        print(f"kshot {args.command}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


__all__ = ["main", "build_parser", "machine_description"]
