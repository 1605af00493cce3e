"""dist.*: torch.distributed: join the process group torchrun describes in the environment;
the collectives generated programs call (program.py puts them in their namespace) and the
ones the hooks use."""
from __future__ import annotations

import datetime
import os

import torch
import torch.distributed as dist

from .core import UserError, op


def active() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


WEEK_S = 7 * 24 * 3600


@op("dist.init")
def init(timeout_s: float = WEEK_S) -> dict:
    """Join the group from torchrun's RANK/WORLD_SIZE/MASTER_ADDR/MASTER_PORT: NCCL on GPU,
    gloo on CPU. Returns where this process stands.

    As the reference: a week's timeout, so ranks that wait while rank 0 downloads and
    tokenizes are not killed by the watchdog (a dead rank still ends the run: torchrun stops
    the others); and on GPU the rank's device bound up front (device_id), which lets NCCL set
    up its communicator eagerly and avoids a barrier on the wrong device."""
    if "RANK" not in os.environ or "WORLD_SIZE" not in os.environ:
        raise UserError("not launched by torchrun: RANK and WORLD_SIZE are not set (use sparsify-launch)")
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    cuda = torch.cuda.is_available()
    if cuda:
        torch.cuda.set_device(local_rank)
    backend = "nccl" if cuda else "gloo"
    if not dist.is_initialized():
        extra = {"device_id": torch.device("cuda", local_rank)} if cuda else {}
        dist.init_process_group(backend, init_method="env://", timeout=datetime.timedelta(seconds=timeout_s), **extra)
    return {
        "rank": dist.get_rank(),
        "world_size": dist.get_world_size(),
        "local_rank": local_rank,
        "backend": backend,
        "device": f"cuda:{local_rank}" if cuda else "cpu",
    }


@op("dist.set_timeout")
def set_timeout(timeout_s: float) -> None:
    """How long a collective waits for the other ranks from now on: once rank 0 has prepared
    the data, a timeout suited to noticing a rank that is gone (a hung NCCL collective then
    fails, and torchrun ends or restarts the job) instead of the week set up front."""
    if active():
        from torch.distributed import distributed_c10d

        distributed_c10d._set_pg_timeout(datetime.timedelta(seconds=timeout_s))


@op("dist.barrier")
def barrier() -> None:
    if active():
        dist.barrier()


_OPS = {"sum": dist.ReduceOp.SUM, "max": dist.ReduceOp.MAX}


def all_reduce_(t: torch.Tensor, how: str = "mean") -> torch.Tensor:
    """In place over all ranks: 'sum', 'max', or 'mean' (a sum divided by the world size)."""
    if not active():
        return t
    if t.dtype == torch.bool:
        buf = t.to(torch.uint8)
        dist.all_reduce(buf, op=_OPS["max" if how == "max" else "sum"])
        t.copy_(buf.bool())
        return t
    dist.all_reduce(t, op=_OPS["max" if how == "max" else "sum"])
    if how == "mean":
        t.div_(dist.get_world_size())
    return t


def all_reduce_grads_(tensors: list) -> None:
    """Average gradients across ranks in one collective (flattened), as DDP does."""
    if not active():
        return
    grads = [t.grad for t in tensors if t.grad is not None]
    if not grads:
        return
    flat = torch.cat([g.reshape(-1) for g in grads])
    dist.all_reduce(flat, op=dist.ReduceOp.SUM)
    flat.div_(dist.get_world_size())
    offset = 0
    for g in grads:
        n = g.numel()
        g.copy_(flat[offset : offset + n].view_as(g))
        offset += n


def all_gather_cat(t):
    """Concatenate a tensor's rows from every rank (rank order); None stays None."""
    if t is None or not active():
        return t
    parts = [torch.empty_like(t) for _ in range(dist.get_world_size())]
    dist.all_gather(parts, t.contiguous())
    return torch.cat(parts)


def broadcast_(t: torch.Tensor, src: int) -> torch.Tensor:
    if active():
        dist.broadcast(t, src=src)
    return t


def broadcast_from(t, src: int, like: torch.Tensor, ndim: int, shape=None):
    """A tensor that only rank `src` has (`t`; None elsewhere), on every rank: its shape is
    sent first unless `shape` gives it (then no host sync), then its values. Not distributed:
    `t` itself."""
    if not active():
        return t
    me = dist.get_rank()
    if shape is None:
        dims = torch.tensor(list(t.shape) if me == src else [0] * ndim, dtype=torch.int64, device=like.device)
        dist.broadcast(dims, src=src)
        shape = dims.tolist()
    if me == src:
        out = t.contiguous()
    else:
        out = torch.empty([int(d) for d in shape], dtype=like.dtype, device=like.device)
    dist.broadcast(out, src=src)
    return out


def reduce_(t: torch.Tensor, dst: int) -> torch.Tensor:
    """Sum `t` over all ranks into rank `dst`'s `t` (the others' are left undefined)."""
    if active():
        dist.reduce(t, dst=dst, op=dist.ReduceOp.SUM)
    return t


def rank() -> int:
    return dist.get_rank() if active() else 0


def world_size() -> int:
    return dist.get_world_size() if active() else 1


def merge_metrics(totals: dict, how: str) -> dict:
    """Combine metric dicts across ranks: 'mean' averages values present everywhere (DDP);
    'merge' takes each key from the rank that has it (distributed modules)."""
    if not active():
        return totals
    local = {k: {m: float(v) for m, v in d.items()} for k, d in totals.items()}
    gathered = [None] * dist.get_world_size()
    dist.all_gather_object(gathered, local)
    out: dict = {}
    counts: dict = {}
    for part in gathered:
        for k, d in part.items():
            slot = out.setdefault(k, {})
            cnt = counts.setdefault(k, {})
            for m, v in d.items():
                slot[m] = slot.get(m, 0.0) + v
                cnt[m] = cnt.get(m, 0) + 1
    if how == "mean":
        for k, d in out.items():
            for m in d:
                d[m] /= counts[k][m]
    return out
