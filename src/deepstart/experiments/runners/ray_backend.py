"""Ray backend (the optional extra ``ray``: ``pip install '.[ray]'`` in a clone of the repository): each vectorized
batch is one Ray task.

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

__all__ = ["run_ray", "check_ray_address"]


def _install() -> str:
    from deepstart._extras import install_hint

    return install_hint("ray")


def _reachable(host: str, port: int, timeout: float = 5.0) -> str | None:
    """None if a TCP connection to ``host:port`` opens within ``timeout`` seconds, else the reason in words."""
    import socket

    try:
        with socket.create_connection((host, port), timeout=timeout):
            return None
    except OSError as exc:
        return exc.strerror or type(exc).__name__


def check_ray_address(address: str | None) -> None:
    """ValueError (one line) unless Ray is installed and, when ``address`` (else ``$RAY_ADDRESS``) names a cluster,
    something answers there: ``auto`` needs a running Ray instance on this machine, ``ray://HOST[:PORT]`` (Ray
    Client, port 10001 by default) needs ``ray[client]`` and an open port, ``HOST:PORT`` an open GCS port. Run
    before any work, so a missing cluster is a usage error, not a traceback after the sweep's set-up."""
    import os

    try:
        import ray  # noqa: F401
    except ImportError:
        raise ValueError(f"backend 'ray' needs the optional extra: {_install()}; or use the local backend") from None
    address = address or os.environ.get("RAY_ADDRESS")
    if not address or address == "local":
        return
    where = f"--ray-address {address}"
    if address.startswith("ray://"):
        try:
            import grpc  # noqa: F401  (Ray Client's transport: the 'client' extra of ray)
        except ImportError:
            raise ValueError(f"{where}: Ray Client needs ray[client]: {_install()} "
                             "brings it, or pip install 'ray[client]'") from None
        host, _, port = address[len("ray://"):].partition(":")
        port = port.split("/")[0] or "10001"
    elif address == "auto":
        try:
            from ray._private.services import canonicalize_bootstrap_address_or_die
        except ImportError:  # a Ray without this helper: ray.init reports it
            return
        try:
            canonicalize_bootstrap_address_or_die("auto")
            return
        except ConnectionError:
            raise ValueError(f"{where}: no running Ray instance found on this machine; start one with 'ray start "
                             "--head', or leave out --ray-address for a private local instance") from None
    else:
        host, _, port = address.rpartition(":")
        if not host:
            raise ValueError(f"{where}: give 'auto', 'HOST:PORT' or 'ray://HOST:10001'")
    if not port.isdigit():
        raise ValueError(f"{where}: port {port!r} is not a number; give 'ray://HOST:10001' or 'HOST:6379'")
    reason = _reachable(host, int(port))
    if reason is not None:
        raise ValueError(f"{where}: no Ray cluster answers at {host}:{port} ({reason}); start one ('ray start "
                         "--head' on the head node) or leave out --ray-address for a private local instance")


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
        raise ValueError(f"backend 'ray' needs the optional extra: {_install()}; or use backend='local'") from None
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
