"""`kshot sinusoid`: the few-shot regression experiment of the MAML paper."""

from __future__ import annotations

from pathlib import Path

from .common import EPILOG, append_row


def add_sinusoid_parser(sub) -> None:
    p = sub.add_parser(
        "sinusoid",
        help="few-shot sine regression: MAML vs a pretrained network",
        description="The MAML paper's regression experiment (Finn et al. 2017, 5.1): sine waves with "
        "amplitude U[0.1,5], phase U[0,pi], x U[-5,5]; an MLP 1-40-40-1 meta-trained with "
        "MAML (one inner step of 0.01, meta-batch 25, Adam 1e-3) and the same network "
        "pretrained on all tasks. Reports test MSE after 1 and 10 steps of 0.01 on K "
        "points, and draws the adapted curves. Runs are saved in --out and resumed.",
        epilog=EPILOG,
    )
    p.add_argument("--out", required=True, help="directory for the trained regressors (one run directory each)")
    p.add_argument("--shots", type=int, nargs="+", default=[5, 10, 20], help="K values (default 5 10 20)")
    p.add_argument("--iterations", type=int, default=70000, help="meta-iterations per model (default 70000)")
    p.add_argument("--meta-batch", type=int, default=25)
    p.add_argument("--inner-lr", type=float, default=0.01)
    p.add_argument("--steps", type=int, nargs="+", default=[1, 10], help="test-time gradient steps (default 1 10)")
    p.add_argument("--test-tasks", type=int, default=600, help="held-out sine waves (default 600)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--plot", metavar="PNG", help="draw the adapted curves here")
    p.add_argument("--record", metavar="JSONL", help="append one result row per (method, K, steps)")
    p.add_argument("--threads", type=int)
    p.add_argument("--quiet", action="store_true")


def cmd_sinusoid(args) -> int:
    from ..regression.meta import RegressionRun, evaluate_adaptation, train_regressor

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    models: dict[int, dict] = {}
    for k in args.shots:
        models[k] = {}
        for kind in ("maml", "pretrained"):
            run = RegressionRun(kind, k, args.iterations, args.meta_batch, args.inner_lr, seed=args.seed)
            path = out / f"{kind}-K{k}"
            learner, seconds = train_regressor(run, path, progress=not args.quiet)
            models[k][kind] = learner
            for r in evaluate_adaptation(learner, k, args.steps, args.test_tasks):
                print(
                    f"{kind:10s} K={k:2d} after {r.steps:2d} step(s): MSE {r.mse:.3f} +- {r.ci95:.3f} ({r.tasks} tasks)"
                )
                if args.record:
                    append_row(
                        args.record,
                        {
                            "method": kind,
                            "dataset": "sinusoid",
                            "protocol": "finn2017",
                            "way": None,
                            "shot": k,
                            "query": 100,
                            "episodes": r.tasks,
                            "metric": "mse",
                            "steps": r.steps,
                            "value": round(r.mse, 4),
                            "ci95": round(r.ci95, 4),
                            "unit": "mse",
                            "train_seconds": round(seconds, 1),
                            "iterations": args.iterations,
                            "checkpoint": str(path / "best.safetensors"),
                        },
                        args.argv,
                    )
    if args.plot:
        from ..plots.sinusoid import plot_sinusoid

        print(f"wrote {plot_sinusoid(models, args.plot)}")
    return 0
