"""The episodic trainer: sample a task, adapt on its support, back-propagate the query loss.

A run directory holds `best.safetensors` (best validation accuracy), `last.safetensors`
(model + optimizer + scheduler, to resume), their JSON copies, and `log.jsonl`.
Episode i is a pure function of (seed, i), so a resumed run follows exactly the
path an uninterrupted one would.
"""
from __future__ import annotations

import json
import signal
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import torch
from tqdm import tqdm

from ..data import load_dataset
from ..data.sampler import episode_sampler
from ..errors import CheckpointError
from . import checkpoint
from .build import build_learner, effective_backbone_args, effective_method_args, learner_meta
from .config import TrainConfig
from .evaluator import evaluate


def optimizer_tensors(opt: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict]:
    """Adam-style state as flat tensors for safetensors, plus the JSON-able rest."""
    sd = opt.state_dict()
    tensors = {f"optim.{pid}.{k}": v for pid, st in sd["state"].items() for k, v in st.items()}
    return tensors, {"param_groups": sd["param_groups"]}


def restore_optimizer(opt: torch.optim.Optimizer, tensors: dict[str, torch.Tensor], info: dict) -> None:
    state: dict[int, dict] = {}
    for key, value in checkpoint.split_prefix(tensors, "optim.").items():
        pid, name = key.split(".", 1)
        state.setdefault(int(pid), {})[name] = value
    opt.load_state_dict({"state": state, "param_groups": info["param_groups"]})


@contextmanager
def stop_requests():
    """SIGINT/SIGTERM set a flag that the loop honours between episodes, so a saved state is
    never half an optimizer step. Outside the main thread signals stay as they are."""
    flag = {"stop": False}
    if threading.current_thread() is not threading.main_thread():
        yield flag
        return
    request = lambda signum, frame: flag.update(stop=True)
    previous = {s: signal.signal(s, request) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield flag
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


class Trainer:
    def __init__(self, config: TrainConfig, out_dir: str | Path, progress: bool = True, allow_download: bool = True):
        self.config, self.out = config, Path(out_dir)
        self.progress = progress
        c = config
        load = lambda split: load_dataset(c.dataset, split, c.protocol, c.data_dir, c.image_size, allow_download, c.channels)
        self.train_set = load(c.train_split)
        self.val_set = load(c.val_split) if c.val_split else None
        self.sampler = episode_sampler(self.train_set, c.way, c.shot, c.query, c.episodes * c.meta_batch, c.seed)
        if self.val_set is not None:  # fail now, not after an hour of training
            episode_sampler(self.val_set, c.val_way, self.val_shot, c.val_query, 1)
        torch.manual_seed(c.seed)
        backbone_args = effective_backbone_args(c.method, {"in_channels": c.channels, **c.backbone_args})
        method_args = effective_method_args(c.method, c.method_args, c.way, [c.channels, c.image_size, c.image_size])
        self.learner = build_learner(c.method, c.backbone, backbone_args, method_args)
        self.meta = {**learner_meta(c.method, c.backbone, backbone_args, method_args),
                     "data": {k: self.train_set.meta.get(k) for k in ("dataset", "protocol", "image_size")} | {"channels": c.channels},
                     "config": c.to_dict()}
        optimizer = torch.optim.Adam if c.optimizer == "adam" else torch.optim.SGD
        self.optimizer = optimizer(self.learner.parameters(), lr=c.lr)
        if c.lr_schedule == "linear":
            self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, lambda step: max(0.0, 1 - step / c.episodes))
        else:
            self.scheduler = torch.optim.lr_scheduler.StepLR(self.optimizer, c.lr_step, c.lr_gamma)
        self.episode, self.best_val, self.train_seconds = 0, -1.0, 0.0
        self.window = [0.0, 0.0, 0]  # loss sum, accuracy sum, episodes since the last log row

    @property
    def val_shot(self) -> int:
        return self.config.shot if self.config.val_shot is None else self.config.val_shot

    # ---- saving and resuming -------------------------------------------------------
    def _save(self, name: str, with_optimizer: bool, extra: dict | None = None) -> None:
        tensors = {f"model.{k}": v for k, v in self.learner.state_dict().items()}
        meta = {**self.meta, "episode": self.episode, "best_val_accuracy": self.best_val,
                "train_seconds": round(self.train_seconds, 1), "log_window": self.window, **(extra or {})}
        if with_optimizer:
            opt_tensors, opt_info = optimizer_tensors(self.optimizer)
            tensors |= opt_tensors
            meta |= {"kind": "training-state", "optimizer": opt_info, "scheduler": self.scheduler.state_dict()}
        else:
            meta["kind"] = "model"
        checkpoint.save(self.out / name, tensors, meta)

    def resume(self) -> bool:
        """Continue from `last.safetensors` if present. Returns whether it did."""
        path = self.out / "last.safetensors"
        if not path.exists():
            return False
        tensors, meta = checkpoint.load(path, expect_method=self.config.method)
        if meta.get("kind") != "training-state":
            raise CheckpointError(f"{path} holds no optimizer state, so training cannot resume from it")
        ours, theirs = self.config.to_dict(), dict(meta["config"])
        ours.pop("episodes"), theirs.pop("episodes")  # extending a run is allowed
        if ours != theirs:
            changed = sorted(k for k in ours if ours[k] != theirs.get(k))
            raise CheckpointError(f"{path} was trained with other settings ({', '.join(changed)}); "
                                  "use the same settings to resume, or a new --out directory")
        self.learner.load_state_dict(checkpoint.split_prefix(tensors, "model."))
        restore_optimizer(self.optimizer, tensors, meta["optimizer"])
        self.scheduler.load_state_dict(meta["scheduler"])
        self.episode, self.best_val = meta["episode"], meta["best_val_accuracy"]
        self.train_seconds = meta.get("train_seconds", 0.0)
        self.window = list(meta.get("log_window", [0.0, 0.0, 0]))
        self._truncate_log()
        return True

    def _truncate_log(self) -> None:
        """Drop log lines written after the checkpoint we resume from (they will be redone)."""
        log = self.out / "log.jsonl"
        if log.exists():
            keep = [l for l in log.read_text().splitlines() if l and json.loads(l)["episode"] <= self.episode]
            log.write_text("".join(l + "\n" for l in keep))

    def _log(self, row: dict) -> None:
        with open(self.out / "log.jsonl", "a") as f:
            f.write(json.dumps(row) + "\n")

    # ---- the loop ------------------------------------------------------------------
    def validate(self):
        c = self.config
        return evaluate(self.learner, self.val_set, c.val_way, self.val_shot, c.val_query, c.val_episodes,
                        seed=c.seed + 1, progress=False)

    def _episode(self) -> dict | None:
        """One meta-training step; returns the log row to write, if any."""
        c = self.config
        t0 = time.perf_counter()
        tasks = [self.sampler.task(self.train_set, self.episode * c.meta_batch + j) for j in range(c.meta_batch)]
        self.optimizer.zero_grad(set_to_none=True)
        loss, logits = self.learner.meta_step(tasks)
        self.optimizer.step()
        self.scheduler.step()
        self.episode += 1
        self.train_seconds += time.perf_counter() - t0
        w = self.window
        w[0] += loss
        w[1] += (logits.argmax(-1) == torch.stack([t.query_labels for t in tasks])).float().mean().item()
        w[2] += 1
        row = None
        if self.episode % c.log_every == 0 or self.episode == c.episodes:
            row = {"episode": self.episode, "loss": w[0] / w[2], "accuracy": 100 * w[1] / w[2],
                   "lr": self.scheduler.get_last_lr()[0], "train_seconds": round(self.train_seconds, 1)}
            self.window = [0.0, 0.0, 0]
        if self.val_set is not None and (self.episode % c.val_every == 0 or self.episode == c.episodes):
            result = self.validate()
            row = (row or {"episode": self.episode}) | {"val_accuracy": result.accuracy, "val_ci95": result.ci95}
            if result.accuracy > self.best_val:
                self.best_val = result.accuracy
                self._save("best", with_optimizer=False)
                row["saved_best"] = True
        return row

    def train(self) -> dict:
        c = self.config
        self.out.mkdir(parents=True, exist_ok=True)
        self.sampler.episodes = c.episodes * c.meta_batch
        self.learner.train()
        last_save = time.perf_counter()
        bar = tqdm(total=c.episodes, initial=self.episode, desc=f"train {c.method}", disable=not self.progress)
        try:
            with stop_requests() as flag:
                while self.episode < c.episodes:
                    if flag["stop"]:
                        raise KeyboardInterrupt
                    row = self._episode()
                    bar.update(1)
                    if row:
                        self._log(row)
                        if "loss" in row:
                            bar.set_postfix(loss=f"{row['loss']:.3f}", acc=f"{row['accuracy']:.1f}")
                        if "val_accuracy" in row:
                            best = " (best so far: saved)" if row.get("saved_best") else ""
                            bar.write(f"episode {self.episode}: val {row['val_accuracy']:.2f} +- {row['val_ci95']:.2f}%{best}")
                    if (self.episode % c.val_every == 0 or self.episode == c.episodes
                            or time.perf_counter() - last_save > c.checkpoint_seconds):
                        self._save("last", with_optimizer=True)
                        last_save = time.perf_counter()
        except KeyboardInterrupt:
            self._save("last", with_optimizer=True)
            bar.write(f"interrupted: saved {self.out / 'last.safetensors'} at episode {self.episode}; rerun with --resume")
            raise
        finally:
            bar.close()
        if self.val_set is None:  # nothing to select on: the final model is the best we know
            self._save("best", with_optimizer=False)
        return {"episode": self.episode, "best_val_accuracy": self.best_val, "train_seconds": self.train_seconds}
