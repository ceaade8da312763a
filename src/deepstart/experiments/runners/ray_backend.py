"""Ray backend (optional extra ``pip install deepstart[ray]``): each vectorized batch is one Ray task.

Tasks are retried on failure (``max_retries``, exceptions included); results stream back with ``ray.wait`` and the
driver alone writes the store, so a lost worker costs only its batch.

Pointing it at an existing cluster (details: ``docs/ray.md``): start the cluster (``ray start --head`` on one
machine, ``ray start --address=HEAD:6379`` on the others), make sure deepstart (and the data, via
``DEEPSTART_DATA``) is installed on every node, then run on the head node ``deepstart sweep run SPEC --store
results.db --backend ray --ray-address auto``, or from elsewhere ``--ray-address ray://HEAD:10001`` (Ray Client).
In code: ``run_sweep(spec, store, backend="ray", ray_address="auto")``. Without an address, ``$RAY_ADDRESS`` is
used when set; otherwise a fresh local Ray instance is started (``num_cpus=workers``) and shut down after. A Ray
session the caller already started (``ray.init(...)`` before ``run_sweep``) is used as it is and left running.
"""
from __future__ import annotations

__all__ = ["run_ray"]


def _task(batch: list[dict], fail_once: str | None, device: str = "cpu"):
    import torch

    from deepstart.experiments.runners.base import execute_batch

    torch.set_num_threads(1)
    return execute_batch(batch, fail_once=fail_once, device=device)


def run_ray(batches: list[list[dict]], *, address: str | None = None, workers: int | None = None,
            max_retries: int = 3, fail_once: str | None = None, device: str = "cpu"):
    """Yield ``(results, environment)`` per batch as Ray tasks finish, trained on ``device`` on the workers.
    ``fail_once`` (tests): the first batch's first attempt raises, exercising the retry path."""
    try:
        import ray
    except ImportError:
        raise ValueError("backend 'ray' needs the optional extra: pip install 'deepstart[ray]'; "
                         "or use backend='local'") from None
    started = False
    if not ray.is_initialized():
        import os

        if address or os.environ.get("RAY_ADDRESS"):  # an existing cluster brings its own resources
            kwargs = {"address": address}
        else:  # "local": never attach to some other Ray instance this machine happens to run
            kwargs = {"address": "local", "num_cpus": workers}
        ray.init(include_dashboard=False, log_to_driver=False, **kwargs)
        started = True
    try:
        gpus = 1 if str(device).startswith("cuda") else 0  # Ray hides GPUs from tasks that do not ask for one
        task = ray.remote(num_cpus=1, num_gpus=gpus, max_retries=max_retries, retry_exceptions=True)(_task)
        pending = [task.remote(batch, fail_once if i == 0 else None, device) for i, batch in enumerate(batches)]
        while pending:
            done, pending = ray.wait(pending, num_returns=1)
            yield ray.get(done[0])
    finally:
        if started:
            ray.shutdown()
