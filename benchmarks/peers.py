"""The peer libraries the speed benchmarks compare kshot with, imported from their published source.

easyfsl 1.5.0 and learn2learn 0.2.0 are not installed into kshot's environment: their packages'
top levels import torchvision, which does not import beside the CPU torch used here. Their source
is downloaded once (`pip download --no-deps`) into a scratch folder, and only the modules the
benchmarks call are imported from it, under empty parent packages so that the top-level
`__init__.py` never runs. What runs is the libraries' own code, unchanged.
"""

from __future__ import annotations

import subprocess
import sys
import tarfile
import types
import zipfile
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

SCRATCH = Path("/tmp/kshot-peers")


def peer_source(dist: str, version: str, scratch: Path = SCRATCH) -> Path:
    """The folder that holds the package `dist`'s source tree (downloaded and unpacked once)."""
    home = scratch / f"{dist}-{version}"
    if not (home / dist).is_dir():
        home.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "--no-deps", f"{dist}=={version}", "-d", str(home)],
            check=True,
            capture_output=True,
        )
        archive = next(p for p in home.iterdir() if p.suffix in (".whl", ".gz"))
        if archive.suffix == ".whl":
            with zipfile.ZipFile(archive) as z:
                z.extractall(home)
        else:
            with tarfile.open(archive) as tar:
                tar.extractall(home, filter="data")
            (home / dist).symlink_to(next(home.glob(f"{dist}-*/{dist}")))
    return home


def import_peer_module(dist: str, version: str, module: str, scratch: Path = SCRATCH) -> types.ModuleType:
    """`dist.sub.module` from the peer's source, with its parent packages' __init__ files skipped."""
    root = peer_source(dist, version, scratch) / dist
    parts = module.split(".")
    for depth in range(1, len(parts)):
        name = ".".join(parts[:depth])
        if name not in sys.modules:
            pkg = types.ModuleType(name)
            pkg.__path__ = [str(root.joinpath(*parts[1:depth]))]
            sys.modules[name] = pkg
    __import__(module)
    return sys.modules[module]


def easyfsl_prototypical_networks(scratch: Path = SCRATCH) -> type:
    return import_peer_module("easyfsl", "1.5.0", "easyfsl.methods.prototypical_networks", scratch).PrototypicalNetworks


def easyfsl_method(module: str, name: str, scratch: Path = SCRATCH) -> type:
    """An easyfsl few-shot classifier whose module reads its default layers from
    easyfsl.modules.predesigned_modules (Matching and Relation Networks). That module imports ResNet
    blocks from torchvision at its top; they are only used by its ResNet builders, so a stand-in
    torchvision that names them is present while it loads, and removed after."""
    stand_ins = {}
    if "torchvision" not in sys.modules:
        for dotted in ("torchvision", "torchvision.models", "torchvision.models.resnet"):
            stand_ins[dotted] = types.ModuleType(dotted)
        for block in ("BasicBlock", "Bottleneck", "conv1x1"):
            setattr(stand_ins["torchvision.models.resnet"], block, type(block, (), {}))
    sys.modules.update(stand_ins)
    try:
        import_peer_module("easyfsl", "1.5.0", "easyfsl.modules.predesigned_modules", scratch)
        return getattr(import_peer_module("easyfsl", "1.5.0", f"easyfsl.methods.{module}", scratch), name)
    finally:
        for dotted in stand_ins:
            del sys.modules[dotted]


def learn2learn_maml(scratch: Path = SCRATCH) -> type:
    return import_peer_module("learn2learn", "0.2.0", "learn2learn.algorithms.maml", scratch).MAML


def plain_conv4(batch_statistics_only: bool = False, pooled_blocks: int = 4) -> nn.Sequential:
    """The Conv-4 a user of a peer library writes: conv, BatchNorm, ReLU, max-pool, in PyTorch's
    default memory layout (easyfsl ships none; learn2learn's Omniglot CNN is this one, with BatchNorm
    keeping no running statistics, `batch_statistics_only`, as MAML's). Relation Networks pool in
    the first two blocks only and keep the feature maps (`pooled_blocks=2`, no flattening)."""

    def block(i: int, o: int, pool: bool) -> nn.Sequential:
        norm = nn.BatchNorm2d(o, track_running_stats=not batch_statistics_only)
        return nn.Sequential(nn.Conv2d(i, o, 3, padding=1), norm, nn.ReLU(), *([nn.MaxPool2d(2)] if pool else []))

    blocks = [block(1 if i == 0 else 64, 64, i < pooled_blocks) for i in range(4)]
    return nn.Sequential(*blocks, *([nn.Flatten()] if pooled_blocks == 4 else []))


def prototype_loss(z, way: int, shot: int, query: int):
    """A plain loop's ProtoNet loss on embeddings ordered class by class, support first."""
    z = z.view(way, shot + query, -1)
    prototypes = z[:, :shot].mean(1)
    q = z[:, shot:].reshape(way * query, -1)
    return F.cross_entropy(-(torch.cdist(q, prototypes) ** 2), torch.arange(way).repeat_interleave(query))


def plain_maml_gradient(net: nn.Module, first_order: bool, inner_lr: float = 0.4):
    """tasks -> None: MAML's meta-gradient as plain PyTorch computes it, one inner step per task
    (autograd.grad, with create_graph for second order; fast weights through functional_call)."""

    def add_meta_gradient(tasks) -> None:
        params = dict(net.named_parameters())
        for t in tasks:
            loss = F.cross_entropy(torch.func.functional_call(net, params, (t.support,)), t.support_labels)
            grads = torch.autograd.grad(loss, list(params.values()), create_graph=not first_order)
            fast = {k: p - inner_lr * g for (k, p), g in zip(params.items(), grads)}
            q = F.cross_entropy(torch.func.functional_call(net, fast, (t.query,)), t.query_labels)
            (q / len(tasks)).backward()

    return add_meta_gradient
