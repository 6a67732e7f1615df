"""Meta-training a policy initialisation (MAML, Finn et al. 2017, algorithm 3) and its comparison,
a policy pretrained on all tasks at once.

MAML, per iteration: for each of `meta_batch` tasks, K trajectories with the current parameters,
one policy-gradient step of size `inner_lr` on them (kept differentiable), K trajectories with the
adapted parameters (with `inner_steps` > 1: another step on those, and so on), and their
policy-gradient surrogate; the outer step moves the initialisation
down the mean of those surrogates, back-propagated through the inner step (second order).
Departure, and why: the paper takes the outer step with TRPO; here it is Adam on the surrogate's
gradient (the issue allows a first-order or PPO-style outer step if measured). TRPO's
conjugate-gradient step with a KL constraint is the larger piece of code, and Adam's step size is
the one knob to tune; both share the known bias of MAML-RL's original estimator, which ignores how
the adapted policy's own sampling depends on the initialisation.

Pretrained: the same iterations and trajectories, without the inner step: the policy-gradient
surrogate of trajectories from all the batch's tasks, i.e. one policy for the task distribution.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from ..engine import checkpoint
from .navigation import FAMILIES
from .policy import GaussianMLPPolicy
from .policy_gradient import adapted_params, advantages, surrogate_loss
from .sampling import rollouts

KINDS = ("maml", "pretrained")


@dataclass
class MetaRLSettings:
    family: str = "navigation-2d"
    kind: str = "maml"
    iterations: int = 100  # the paper code's n_itr for the point task
    meta_batch: int = 20  # tasks per iteration (the paper code: 40)
    trajectories: int = 20  # K per task and stage (the paper code's fast_batch_size)
    inner_lr: float = 0.5  # the paper code's fast learning rate for the point task
    # Policy-gradient steps the outer loss is taken after (the paper: 1). More steps meta-train an
    # initialisation from which later steps, too, keep improving; each costs K more trajectories.
    inner_steps: int = 1
    outer_lr: float = 0.01
    seed: int = 0

    def __post_init__(self) -> None:
        from ..errors import ConfigError

        if self.inner_steps < 1:
            raise ConfigError(f"--inner-steps must be at least 1, not {self.inner_steps}")


def policy_for(family: str) -> GaussianMLPPolicy:
    env = FAMILIES[family].make(FAMILIES[family].sample(1, np.random.default_rng(0))[0])
    return GaussianMLPPolicy(env.observation_space.shape[0], env.action_space.shape[0])


def train(settings: MetaRLSettings, out: str | Path, progress=print) -> GaussianMLPPolicy:
    s = settings
    family = FAMILIES[s.family]
    torch.manual_seed(s.seed)
    policy = policy_for(s.family)
    opt = torch.optim.Adam(policy.parameters(), lr=s.outer_lr)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    log, start = [], time.perf_counter()
    for it in range(s.iterations):
        rng = np.random.default_rng([s.seed, it])
        g = torch.Generator().manual_seed(int(rng.integers(2**31)))
        tasks = family.sample(s.meta_batch, rng)
        params = policy.params()
        losses, post_returns = [], []
        for task in tasks:
            pre = rollouts(family, task, policy, params, s.trajectories, g)
            if s.kind == "maml":
                adapted, batch = params, pre
                for _ in range(s.inner_steps):  # each step on trajectories of the policy it starts from
                    adapted = adapted_params(policy, adapted, batch, s.inner_lr, create_graph=True)
                    batch = rollouts(family, task, policy, adapted, s.trajectories, g)
                losses.append(surrogate_loss(policy, adapted, batch, advantages(batch)))
                post_returns.append(batch.returns().mean().item())
            else:
                losses.append(surrogate_loss(policy, params, pre, advantages(pre)))
                post_returns.append(pre.returns().mean().item())
        opt.zero_grad()
        torch.stack(losses).mean().backward()
        opt.step()
        row = {
            "iteration": it + 1,
            "return": float(np.mean(post_returns)),
            "seconds": round(time.perf_counter() - start, 1),
        }
        log.append(row)
        progress(json.dumps(row))
        if (it + 1) % 10 == 0 or it + 1 == s.iterations:  # a usable policy every 10 iterations
            meta = {"kind": "meta-rl-policy", "settings": asdict(s), "train_seconds": row["seconds"], "log": log}
            checkpoint.save(out / "policy", {f"policy.{k}": v for k, v in policy.state_dict().items()}, meta)
    return policy


def load_policy(path: str | Path) -> tuple[GaussianMLPPolicy, dict]:
    from ..errors import CheckpointError

    tensors, meta = checkpoint.load(path)
    if meta.get("kind") != "meta-rl-policy":
        raise CheckpointError(f"{path} is not a policy written by `kshot rl train`")
    policy = policy_for(meta["settings"]["family"])
    policy.load_state_dict(checkpoint.split_prefix(tensors, "policy."))
    return policy, meta
