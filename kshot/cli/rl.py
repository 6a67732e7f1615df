"""`kshot rl`: meta-reinforcement learning (Finn et al. 2017, section 5.3).

    kshot rl train --family navigation-2d --kind maml --out runs/nav-maml
    kshot rl train --family navigation-2d --kind pretrained --out runs/nav-pre
    kshot rl eval runs/nav-maml/policy.safetensors runs/nav-pre/policy.safetensors --random \\
        --plot nav.png --record benchmarks/results.jsonl
"""

from __future__ import annotations

import argparse
from dataclasses import fields
from pathlib import Path

from .common import EPILOG, append_row


def add_rl_parser(sub) -> None:
    p = sub.add_parser(
        "rl",
        help="meta-reinforcement learning: MAML policies that adapt to a new task in a few episodes",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=EPILOG,
    )
    verbs = p.add_subparsers(dest="verb", required=True)
    from ..rl.meta import KINDS, MetaRLSettings
    from ..rl.navigation import FAMILIES

    d = MetaRLSettings()
    t = verbs.add_parser("train", help="meta-train (maml) or pretrain on all tasks at once (pretrained)")
    t.add_argument("--family", choices=sorted(FAMILIES), default=d.family)
    t.add_argument("--kind", choices=KINDS, default=d.kind)
    t.add_argument("--out", required=True)
    for name in (f.name for f in fields(MetaRLSettings) if f.name not in ("family", "kind")):
        value = getattr(d, name)
        t.add_argument("--" + name.replace("_", "-"), type=type(value), default=value, help=f"default {value}")
    t.add_argument("--threads", type=int)
    e = verbs.add_parser("eval", help="average return after 0..N policy-gradient steps on new tasks")
    e.add_argument("policies", nargs="*", help="policy files written by `kshot rl train`")
    e.add_argument("--random", action="store_true", help="also a randomly initialised policy")
    e.add_argument("--family", choices=sorted(FAMILIES), help="default: the policies' family")
    e.add_argument("--tasks", type=int, default=40)
    e.add_argument("--steps", type=int, default=3)
    e.add_argument("--trajectories", type=int, default=20)
    e.add_argument("--inner-lr", type=float, default=d.inner_lr)
    e.add_argument("--seed", type=int, default=1)
    e.add_argument("--plot")
    e.add_argument("--record", metavar="JSONL")
    e.add_argument("--threads", type=int)


def cmd_rl(args) -> int:
    return cmd_train(args) if args.verb == "train" else cmd_eval(args)


def cmd_train(args) -> int:
    from ..rl.meta import MetaRLSettings, train

    settings = MetaRLSettings(**{f.name: getattr(args, f.name) for f in fields(MetaRLSettings)})
    train(settings, args.out)
    return 0


def cmd_eval(args) -> int:
    import numpy as np
    import torch

    from ..errors import ConfigError
    from ..rl.evaluate import adaptation_returns
    from ..rl.meta import load_policy, policy_for
    from ..rl.navigation import FAMILIES

    if not args.policies and not args.random:
        raise ConfigError("nothing to evaluate: give policy files, or --random")
    models = {}
    for path in args.policies:
        policy, meta = load_policy(path)
        models[f"{meta['settings']['kind']} ({path})"] = (policy, meta)  # the path goes into the record
    families = {meta["settings"]["family"] for _, meta in models.values()} | ({args.family} if args.family else set())
    if len(families) != 1:
        raise ConfigError(f"give policies of one task family (or --family with --random only); got {sorted(families)}")
    family = families.pop()
    if args.random:
        torch.manual_seed(args.seed)
        models["random initialisation"] = (policy_for(family), {"settings": {"kind": "random"}, "train_seconds": 0})
    tasks = FAMILIES[family].sample(args.tasks, np.random.default_rng([args.seed, 999]))  # never a training draw
    results = {}
    for label, (policy, meta) in models.items():
        r = adaptation_returns(family, policy, tasks, args.steps, args.trajectories, args.inner_lr, args.seed)
        results[label] = r
        for steps, (mean, ci) in enumerate(r.summary()):
            print(f"{label}: after {steps} step(s): return {mean:.2f} +- {ci:.2f}")
            if args.record:
                row = {
                    "method": f"meta-rl {meta['settings']['kind']}",
                    "dataset": family,
                    "protocol": "finn2017",
                    "metric": "average_return",
                    "inner_steps": steps,
                    "value": round(mean, 3),
                    "ci95": round(ci, 3),
                    "unit": "return",
                    "tasks": args.tasks,
                    "trajectories": args.trajectories,
                    "inner_lr": args.inner_lr,
                    "seed": args.seed,
                    "checkpoint": label.split("(")[-1].rstrip(")") if "(" in label else None,
                    "train_seconds": meta.get("train_seconds"),
                }
                if meta["settings"]["kind"] == "maml":  # policies written before the setting took 1
                    row["train_inner_steps"] = meta["settings"].get("inner_steps", 1)
                append_row(args.record, row, args.argv)
    if args.plot:
        from ..plots.rl import plot_adaptation

        short = {
            label.split(" (")[0] + (f" ({Path(label.split('(')[1]).parent.name})" if "(" in label else ""): r
            for label, r in results.items()
        }
        plot_adaptation(family, short, args.plot, shown=next(iter(short)))
        print(f"wrote {args.plot}")
    return 0
