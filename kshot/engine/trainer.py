"""The one trainer, for every kind of learning: at step i draw batch i of the task family,
accumulate the learner's gradient on it, take an optimizer step.

    Trainer(learner, train_set, val_set, settings, out_dir).train()

`train_set` is a class-indexed data set (classification episodes of the settings' way, shot
and query, or mini-batches for a learner that `trains_on` batches) or any task family
(engine/tasks.py: sine-wave regression, same/different pairs).
A run directory holds `best.safetensors` (best validation accuracy; the final model when there
is no validation set), `last.safetensors` (model + optimizer + scheduler, to resume), their
JSON copies, and `log.jsonl`. Batch i is a pure function of (seed, i), so a resumed run follows
exactly the path an uninterrupted one would. `Trainer.from_config` builds everything from names
(the command line's way in). Under torchrun, `processes` names this rank: each rank runs its
share of every step (engine/distributed.py) and rank 0 alone validates, logs and saves.
"""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path

import torch
from tqdm import tqdm

from ..data import ClassIndexedDataset, load_dataset
from ..data.sampler import episode_sampler
from ..data.semi_supervised import SemiSupervisedSampler
from ..errors import CheckpointError, DataError
from ..learners import Learner, PrototypeLearner
from . import checkpoint
from .build import build_learner, effective_backbone_args, learner_meta, task_args
from .config import TrainConfig
from .devices import device_of
from .distributed import SINGLE, Processes, ShardedTasks, file_from_main
from .evaluator import evaluate
from .fit import fit_to_data
from .open_set import calibrate
from .run_state import optimizer_tensors, read_log, restore_optimizer, stop_requests
from .semi_supervised import evaluate_semi_supervised
from .tasks import TaskFamily, training_family

# A model that can enroll classes leaves training with an "unknown" threshold set for this
# false-accept rate on the validation classes (a store may set another: `kshot classes threshold`).
CALIBRATION_FAR = 0.01


class Trainer:
    def __init__(
        self,
        learner: Learner,
        train_set: ClassIndexedDataset | TaskFamily,
        val_set: ClassIndexedDataset | None,
        settings: TrainConfig,
        out_dir: str | Path,
        meta: dict | None = None,
        progress: bool = True,
        processes: Processes = SINGLE,
        device: torch.device | str = "cpu",
    ):
        s = self.settings = settings
        # Where the run computes; not a setting: a run may resume on another device.
        self.learner, self.out, self.processes = learner.to(device), Path(out_dir), processes
        self.progress = progress and processes.main
        self.tasks = training_family(learner, train_set, s) if isinstance(train_set, ClassIndexedDataset) else train_set
        if processes.active:
            self.tasks = ShardedTasks(self.tasks, learner, processes, s.meta_batch)
        self.val_set = val_set
        if val_set is not None:  # fail now, not after an hour of training
            if s.unlabelled:
                SemiSupervisedSampler(val_set, s.val_way, self.val_shot, s.val_query, s.unlabelled, s.distractors)
            else:
                episode_sampler(val_set, s.val_way, self.val_shot, s.val_query, 1)
        # What a checkpoint needs to be rebuilt by `load_learner` (from_config knows it all).
        self.meta = {"method": learner.method, **(meta or {}), "config": s.to_dict()}
        optimizer = torch.optim.Adam if s.optimizer == "adam" else torch.optim.SGD
        self.optimizer = optimizer(learner.parameters(), lr=s.lr)
        if s.lr_schedule == "linear":
            self.scheduler = torch.optim.lr_scheduler.LambdaLR(
                self.optimizer, lambda step: max(0.0, 1 - step / s.episodes)
            )
        elif s.lr_schedule == "cosine":  # to 1% of lr at the last step (Antoniou et al. 2019: 1e-3 to 1e-5)
            self.scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(self.optimizer, s.episodes, s.lr / 100)
        else:
            self.scheduler = torch.optim.lr_scheduler.StepLR(self.optimizer, s.lr_step, s.lr_gamma)
        self.episode, self.best_val, self.train_seconds = 0, -1.0, 0.0
        self.notes: list[str] = []  # what from_config adapted to the data, for the user
        self.window = [0.0, 0.0, 0]  # loss sum, accuracy sum, steps since the last log row

    @classmethod
    def from_config(
        cls,
        config: TrainConfig,
        out_dir: str | Path,
        progress: bool = True,
        allow_download: bool = True,
        adjustable: frozenset[str] = frozenset(),
        processes: Processes = SINGLE,
        device: torch.device | str = "cpu",
    ) -> Trainer:
        """Load the named data sets, build the named learner (seeded), and a trainer for them. The
        episode settings named in `adjustable` (defaults the user did not choose) are lowered to fit
        the data; `notes` says what was changed, and how a flat folder's classes were split."""
        c = config
        load = lambda split: load_dataset(
            c.dataset, split, c.protocol, c.data_dir, c.image_size, allow_download, c.channels
        )
        train_set = load(c.train_split)
        if c.rotations > 1:
            train_set = train_set.with_rotations(c.rotations)
        val_set = load(c.val_split) if c.val_split else None
        c, notes = fit_to_data(c, train_set, val_set, adjustable)
        if "split_seed" in train_set.meta:
            held = f", {val_set.num_classes} to validate" if val_set else ""
            notes.insert(
                0,
                f"{c.data_dir}: classes split by seed {train_set.meta['split_seed']} into {train_set.num_classes} "
                f"to train{held} and the rest to test (the lists are recorded in the checkpoint)",
            )
        torch.manual_seed(c.seed)
        backbone_args = effective_backbone_args(c.method, {"in_channels": c.channels, **c.backbone_args})
        input_shape = [c.channels, c.image_size, c.image_size]
        method_args = {**task_args(c.method, c.way, input_shape, train_set.num_classes), **c.method_args}
        learner = build_learner(c.method, c.backbone, backbone_args, method_args)
        data = {k: train_set.meta.get(k) for k in ("dataset", "protocol", "image_size")} | {"channels": c.channels}
        if "normalize" in train_set.meta:  # what a store or service must apply to a new photo
            data["normalize"] = train_set.meta["normalize"]
        if "split_seed" in train_set.meta:
            data["classes"] = {"train": train_set.class_names, **({"val": val_set.class_names} if val_set else {})}
        meta = {**learner_meta(c.method, c.backbone, backbone_args, method_args), "data": data}
        trainer = cls(learner, train_set, val_set, c, out_dir, meta, progress, processes, device)
        trainer.notes = notes
        return trainer

    @property
    def val_shot(self) -> int:
        return self.settings.shot if self.settings.val_shot is None else self.settings.val_shot

    # ---- saving and resuming -------------------------------------------------------
    def _save(self, name: str, with_optimizer: bool) -> None:
        if not self.processes.main:
            return
        tensors = {f"model.{k}": v for k, v in self.learner.state_dict().items()}
        meta = {
            **self.meta,
            "episode": self.episode,
            "best_val_accuracy": self.best_val,
            "train_seconds": round(self.train_seconds, 1),
            "log_window": self.window,
        }
        if with_optimizer:
            opt_tensors, opt_info = optimizer_tensors(self.optimizer)
            tensors |= opt_tensors
            meta |= {"kind": "training-state", "optimizer": opt_info, "scheduler": self.scheduler.state_dict()}
        else:
            meta["kind"] = "model"
        checkpoint.save(self.out / name, tensors, meta)

    def resume(self) -> bool:
        """Continue from `last.safetensors` if present. Returns whether it did."""
        path = self.out / "last.safetensors"  # on rank 0; the other ranks read a copy it sends
        with tempfile.TemporaryDirectory() as scratch:
            here = file_from_main(self.processes, path, Path(scratch) / path.name, device_of(self.learner))
            if here is None:
                return False
            tensors, meta = checkpoint.load(here, expect_method=self.learner.method)
        if meta.get("kind") != "training-state":
            raise CheckpointError(f"{path} holds no optimizer state, so training cannot resume from it")
        # A setting added to kshot after the run began has its default there (the run used none).
        ours, theirs = self.settings.to_dict(), {**TrainConfig.defaults(), **meta["config"]}
        ours.pop("episodes"), theirs.pop("episodes")  # extending a run is allowed
        if ours != theirs:
            changed = sorted(k for k in ours if ours[k] != theirs.get(k))
            raise CheckpointError(
                f"{path} was trained with other settings ({', '.join(changed)}); "
                "use the same settings to resume, or a new --out directory"
            )
        self.learner.load_state_dict(checkpoint.split_prefix(tensors, "model."))
        restore_optimizer(self.optimizer, tensors, meta["optimizer"])
        self.scheduler.load_state_dict(meta["scheduler"])
        self.episode, self.best_val = meta["episode"], meta["best_val_accuracy"]
        self.train_seconds = meta.get("train_seconds", 0.0)
        self.window = list(meta.get("log_window", [0.0, 0.0, 0]))
        self._truncate_log()
        return True

    def _truncate_log(self) -> None:
        """Drop log lines written after the checkpoint we resume from (they will be redone), and a
        line torn by a crash mid-write."""
        log = self.out / "log.jsonl"
        if self.processes.main and log.exists():
            keep = [row for row in read_log(log) if row["episode"] <= self.episode]
            log.write_text("".join(json.dumps(row) + "\n" for row in keep))

    def _log(self, row: dict) -> None:
        if not self.processes.main:
            return
        with open(self.out / "log.jsonl", "a") as f:
            f.write(json.dumps(row) + "\n")

    # ---- the loop ------------------------------------------------------------------
    def validate(self):
        """Validation accuracy, on episodes shaped like the training ones (with their unlabelled
        items and distractors in a semi-supervised run)."""
        s = self.settings
        shape = (self.learner, self.val_set, s.val_way, self.val_shot, s.val_query)
        if s.unlabelled:
            return evaluate_semi_supervised(
                *shape, s.unlabelled, s.distractors, s.val_episodes, seed=s.seed + 1, progress=False
            )
        return evaluate(*shape, s.val_episodes, seed=s.seed + 1, progress=False)

    def _step(self) -> dict | None:
        """One optimizer step; returns the log row to write, if any."""
        s = self.settings
        t0 = time.perf_counter()
        self.optimizer.zero_grad(set_to_none=True)
        with torch.autocast(device_of(self.learner).type, dtype=torch.bfloat16, enabled=s.precision == "bf16"):
            result = self.tasks.step(self.learner, self.episode, s.meta_batch)
        if s.grad_clip:
            torch.nn.utils.clip_grad_norm_(self.learner.parameters(), s.grad_clip)
        self.optimizer.step()
        self.scheduler.step()
        self.episode += 1
        self.train_seconds += time.perf_counter() - t0
        w = self.window
        w[0] += result.loss
        w[1] += result.accuracy or 0.0
        w[2] += 1
        row = None
        if self.episode % s.log_every == 0 or self.episode == s.episodes:
            row = {"episode": self.episode, "loss": w[0] / w[2]}
            if result.accuracy is not None:
                row["accuracy"] = w[1] / w[2]
            row |= {"lr": self.scheduler.get_last_lr()[0], "train_seconds": round(self.train_seconds, 1)}
            self.window = [0.0, 0.0, 0]
        validating = self.episode % s.val_every == 0 or self.episode == s.episodes
        if self.val_set is not None and self.processes.main and validating:
            result = self.validate()
            row = (row or {"episode": self.episode}) | {"val_accuracy": result.accuracy, "val_ci95": result.ci95}
            if result.accuracy > self.best_val:
                self.best_val = result.accuracy
                self._save("best", with_optimizer=False)
                row["saved_best"] = True
        return row

    def train(self) -> dict:
        s = self.settings
        if self.processes.main:
            self.out.mkdir(parents=True, exist_ok=True)
        self.learner.train()
        last_save = time.perf_counter()
        # smoothing=0: the estimate is the average pace since the start, validation pauses included,
        # not the last few steps' (which ignore the validations still to come).
        bar = tqdm(
            total=s.episodes,
            initial=self.episode,
            desc=f"train {self.learner.method}",
            disable=not self.progress,
            smoothing=0,
        )
        try:
            with stop_requests() as flag:
                while self.episode < s.episodes:
                    if flag["stop"]:
                        raise KeyboardInterrupt
                    row = self._step()
                    bar.update(1)
                    if row:
                        self._log(row)
                        self._show(bar, row)
                    if (
                        self.episode % s.val_every == 0
                        or self.episode == s.episodes
                        or time.perf_counter() - last_save > s.checkpoint_seconds
                    ):
                        self._save("last", with_optimizer=True)
                        last_save = time.perf_counter()
        except KeyboardInterrupt:
            self._save("last", with_optimizer=True)
            if self.processes.main:
                bar.write(
                    f"interrupted: saved {self.out / 'last.safetensors'} at step {self.episode}; rerun with --resume"
                )
            raise
        finally:
            bar.close()
        if self.val_set is None:  # nothing to select on: the final model is the best we know
            self._save("best", with_optimizer=False)
        elif isinstance(self.learner, PrototypeLearner) and self.processes.main:  # learners a store can use
            self._calibrate_best()
        return {"episode": self.episode, "best_val_accuracy": self.best_val, "train_seconds": self.train_seconds}

    def _calibrate_best(self) -> None:
        """Give best.safetensors the open-set threshold of its weights, measured on the validation
        classes (never trained on), so a store made with it answers "unknown" to strangers."""
        path = self.out / "best.safetensors"
        tensors, meta = checkpoint.load(path)
        current = {k: v.clone() for k, v in self.learner.state_dict().items()}
        self.learner.load_state_dict(checkpoint.split_prefix(tensors, "model."))
        try:
            result = calibrate(self.learner, self.val_set, far=CALIBRATION_FAR, seed=self.settings.seed)
        except DataError as e:  # too few validation classes: the model still works, without a threshold
            self._log({"episode": self.episode, "open_set": f"not calibrated: {e}"})
            return
        finally:
            self.learner.load_state_dict(current)
        checkpoint.save(path, tensors, {**meta, "open_set": result.to_dict()})
        self._log({"episode": self.episode, "open_set": result.to_dict()})

    def _show(self, bar: tqdm, row: dict) -> None:
        if "loss" in row:
            bar.set_postfix(
                {"loss": f"{row['loss']:.3f}"} | ({"acc": f"{row['accuracy']:.1f}"} if "accuracy" in row else {})
            )
        if "val_accuracy" in row:
            best = " (best so far: saved)" if row.get("saved_best") else ""
            bar.write(f"step {self.episode}: val {row['val_accuracy']:.2f} +- {row['val_ci95']:.2f}%{best}")
