"""Starting and joining Ray for the Ray runner: on 127.0.0.1 only when it is started here,
and a clear error within a timeout when an address cannot be joined (Ray itself retries a
dead or foreign address for minutes)."""

from __future__ import annotations

import os
import socket
import sys
import threading
from typing import Any

from lockgate.errors import ConfigError

INSTALL_HINT = 'pip install "lockgate[ray]"'
#: how long joining a cluster may take before the address counts as unreachable
CONNECT_TIMEOUT_S = 5.0
#: how long joining a reachable address may take (a port that is not Ray's, a token that
#: does not match: Ray itself retries those for minutes)
JOIN_TIMEOUT_S = 30.0
#: the same through Ray Client (ray://): its server starts a process of its own for each
#: client, which joins the cluster as a driver first (a minute and more on a busy head)
CLIENT_JOIN_TIMEOUT_S = 180.0
#: overrides both, in seconds
JOIN_TIMEOUT_ENV = "LOCKGATE_RAY_JOIN_TIMEOUT_S"
LOOPBACK = ("127.0.0.1:", "localhost:")
#: Ray's switch for "this is one host": node addresses stay 127.0.0.1
SINGLE_HOST = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"


def import_ray(*, single_host: bool = False) -> Any:
    """Ray, told when this process starts or joins a cluster on 127.0.0.1 only: Ray swaps
    127.0.0.1 for the machine's routable address (and listens on every interface) unless
    it believes it is on one host."""
    if single_host:
        os.environ.setdefault(SINGLE_HOST, "0")
        loaded = sys.modules.get("ray._private.ray_constants")
        if loaded is not None:  # imported already: the variable was read then
            loaded.ENABLE_RAY_CLUSTER = False  # type: ignore[attr-defined]
    try:
        import ray
    except ImportError as exc:
        raise ConfigError(
            f"the Ray runner needs Ray, which is not installed: {INSTALL_HINT}",
            hint=f"{INSTALL_HINT}, or run with the local runner (--runner local)",
        ) from exc
    return ray


def check_reachable(address: str, timeout_s: float = CONNECT_TIMEOUT_S) -> None:
    """Fail fast, with the address in the message, when nothing listens there: Ray itself
    retries a dead address for a long time."""
    target = address.removeprefix("ray://")
    host, sep, port = target.rpartition(":")
    if not sep or not port.isdigit():
        raise ConfigError(
            f"Ray address {address!r} is not host:port",
            hint="pass --address 127.0.0.1:6379 (ray start --head prints it) or ray://host:10001",
        )
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=timeout_s).close()
    except OSError as exc:
        raise ConfigError(
            f"no Ray cluster reachable at {address} ({exc}) within {timeout_s:g} s",
            hint="start one with `ray start --head --node-ip-address 127.0.0.1`, check the "
            "address, or leave --address out to start a local Ray",
        ) from exc


def join_timeout(address: str) -> float:
    """How long joining ``address`` may take: ``LOCKGATE_RAY_JOIN_TIMEOUT_S`` when set,
    else longer for Ray Client than for a node's own host:port."""
    configured = os.environ.get(JOIN_TIMEOUT_ENV, "").strip()
    if configured:
        try:
            seconds = float(configured)
        except ValueError:
            seconds = -1.0
        if not seconds > 0:
            raise ConfigError(
                f"{JOIN_TIMEOUT_ENV}={configured!r} is not a number of seconds above 0",
                hint=f"set {JOIN_TIMEOUT_ENV}=120, or unset it for the default",
            )
        return seconds
    return CLIENT_JOIN_TIMEOUT_S if address.startswith("ray://") else JOIN_TIMEOUT_S


def join_cluster(ray: Any, address: str, timeout_s: float, **options: Any) -> None:
    """``ray.init(address)``, given up after ``timeout_s`` with a ConfigError. The attempt
    is left to finish in a daemon thread: Ray's connection cannot be interrupted."""
    outcome: list[BaseException | None] = []

    def attempt() -> None:
        try:
            ray.init(address=address, **options)
            outcome.append(None)
        except BaseException as exc:  # noqa: BLE001 - re-raised on the calling thread
            outcome.append(exc)

    thread = threading.Thread(target=attempt, name="lockgate-ray-join", daemon=True)
    thread.start()
    thread.join(timeout_s)
    if not outcome:
        raise ConfigError(
            f"something listens at {address}, but no Ray cluster could be joined there "
            f"within {timeout_s:g} s",
            hint="check the port (ray start --head prints the address) and, with token "
            "authentication, that this machine has the cluster's token (RAY_AUTH_TOKEN or "
            f"~/.ray/auth_token); a busy cluster may need a longer {JOIN_TIMEOUT_ENV}",
        )
    if outcome[0] is not None:
        raise ConfigError(
            f"could not join the Ray cluster at {address}: {outcome[0]}",
            hint="check the address and that this Ray's version matches the cluster's",
        ) from outcome[0]


def keep_workers(cpus: int) -> dict[str, int]:
    """A step blocked on its shards lends its CPU to them, so shards run in workers beyond
    the CPU count; Ray kills such idle workers after a second, and the next step's shards
    then pay a new process and its imports (seconds). Keep them a minute instead."""
    return {
        "idle_worker_killing_time_threshold_ms": 60_000,
        "num_workers_soft_limit": max(4, 2 * cpus),
    }


def check_loopback(ray: Any) -> None:
    """A Ray started here must be on 127.0.0.1; stop it when this Ray version moved it."""
    address = ray.util.get_node_ip_address()
    if address != "127.0.0.1":
        ray.shutdown()
        raise ConfigError(
            f"the local Ray came up on {address}, not 127.0.0.1: this Ray version ignores "
            f"{SINGLE_HOST}=0",
            hint="start Ray yourself (ray start --head --node-ip-address 127.0.0.1) and "
            "pass --address, or pin the Ray version lockgate[ray] names",
        )


def require_client() -> None:
    try:
        import grpc  # noqa: F401  # Ray Client speaks gRPC
    except ImportError as exc:
        raise ConfigError(
            "a ray:// address needs Ray Client, which is not installed",
            hint='pip install "ray[client]", or join with host:port from a node of the cluster',
        ) from exc
