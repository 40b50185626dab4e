"""The bundled example app: operations shaped like the tasks of Proxmox VE and Gcore Cloud.

``taskgate serve`` runs it when no app is named (``make run`` does). Nothing here touches
a real machine: each handler simulates its work with short sleeps, and reports progress
and log lines the way the real system's task would.

    curl -s -XPOST localhost:8006/v1/operations/vzdump -H 'content-type: application/json' \\
         -d '{"vmid": 100, "storage": "local"}'
"""

from __future__ import annotations

import asyncio
import hashlib
import time
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field

import taskgate
from taskgate import Context, Task
from taskgate.http.dialects import cloudcoin as _cloudcoin
from taskgate.http.dialects import gcore_kickoff as _gcore
from taskgate.http.dialects import proxmox_kickoff as _pve
from taskgate.http.dialects import pulp as _pulp
from taskgate.http.dialects import rediscloud as _rediscloud

app = taskgate.App("example")

GIB = 1024**3

StorageId = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[a-zA-Z][\w.\-]*$")]
"""A Proxmox storage identifier, e.g. ``local`` or ``pbs-01``."""


def _stopped(ctx: Context, seconds: float) -> bool:
    """Sleep ``seconds``; True (and a log line) if the task was asked to stop meanwhile."""
    if ctx.wait_canceled(seconds):
        ctx.log("ERROR: interrupted by signal", "error")
        return True
    return False


@app.operation(
    "vzdump",
    object_id="vmid",
    timeout=3600,
    # a guest is backed up by one task at a time; a storage takes two backups at once
    exclusive=["guest:{vmid}"],
    limits=[taskgate.ConcurrencyLimit(2, per="{storage}", name="backups-per-storage")],
)
def vzdump(
    ctx: Context,
    vmid: Annotated[int, Field(ge=100, le=999_999_999, description="The guest to back up.")],
    storage: StorageId = "local",
    mode: Literal["snapshot", "suspend", "stop"] = "snapshot",
    compress: Literal["0", "gzip", "lzo", "zstd"] = "zstd",
    duration: Annotated[float, Field(ge=0, le=600, description="Simulated run time (s).")] = 2.0,
) -> dict[str, Any]:
    """Back up a guest (Proxmox VE ``vzdump``): a snapshot archive written to a storage.

    Reports progress in percent with the bytes copied, logs like the real tool, warns once
    about a missing EFI disk, and stops cleanly when canceled.
    """
    started = datetime.now(UTC)
    stamp = started.strftime("%Y_%m_%d-%H_%M_%S")
    suffix = {"0": "", "gzip": ".gz", "lzo": ".lzo", "zstd": ".zst"}[compress]
    archive = f"vzdump-qemu-{vmid}-{stamp}.vma{suffix}"
    disk = 32 * GIB
    ctx.log(
        f"INFO: starting new backup job: vzdump {vmid} --storage {storage}"
        f" --mode {mode} --compress {compress}"
    )
    ctx.log(f"INFO: Starting Backup of VM {vmid} (qemu)")
    ctx.log(f"INFO: Backup started at {started:%Y-%m-%d %H:%M:%S}")
    ctx.log("INFO: status = running")
    ctx.log(f"INFO: VM Name: vm{vmid}")
    ctx.log(f"INFO: include disk 'scsi0' 'local-lvm:vm-{vmid}-disk-0' 32G")
    ctx.warn("no efidisk configured! Using temporary efivars disk.")
    ctx.log(f"INFO: backup mode: {mode}")
    ctx.log(f"INFO: creating vzdump archive '/var/lib/vz/dump/{archive}'")
    ctx.detailed_state = "BACKUP_RUNNING"
    steps = 10
    for step in range(1, steps + 1):
        if _stopped(ctx, duration / steps):
            ctx.check_canceled()
        done = disk * step // steps
        percent = 100 * step / steps
        rate = disk / max(duration, 0.1) / GIB
        ctx.log(
            f"INFO: {percent:3.0f}% ({done / GIB:.1f} GiB of {disk / GIB:.1f} GiB)"
            f" in {duration * step / steps:.0f}s, read: {rate:.1f} GiB/s"
        )
        ctx.progress(
            percent,
            f"{done / GIB:.1f} GiB of {disk / GIB:.1f} GiB",
            detail={"total": disk, "done": done, "unit": "bytes"},
        )
    size = disk // 27
    ctx.log(f"INFO: transferred {disk / GIB:.2f} GiB in {duration:.0f} seconds")
    ctx.log(f"INFO: archive file size: {size / GIB:.2f}GB")
    ctx.log(
        f"INFO: Finished Backup of VM {vmid} ({time.strftime('%H:%M:%S', time.gmtime(duration))})"
    )
    ctx.log("INFO: Backup job finished successfully")
    ctx.detailed_state = "BACKUP_DONE"
    return {"archive": archive, "volid": f"{storage}:backup/{archive}", "size": size}


@app.operation("backup_all", timeout=7200)
def backup_all(
    ctx: Context,
    vmids: Annotated[list[Annotated[int, Field(ge=100)]], Field(min_length=1, max_length=100)],
    storage: StorageId = "local",
    duration: Annotated[float, Field(ge=0, le=600)] = 2.0,
) -> dict[str, Any]:
    """Back up several guests: one ``vzdump`` child task per guest (two at a time per
    storage, by vzdump's limit), then wait for them all. Its ``children`` are the
    backups; canceling it cancels them."""
    for vmid in vmids:  # a key per guest: a retried attempt finds the backups it started
        ctx.spawn("vzdump", {"vmid": vmid, "storage": storage, "duration": duration}, key=str(vmid))
    ctx.log(f"INFO: started {len(vmids)} backups on {storage}")
    ctx.progress(0, f"0 of {len(vmids)} backups done")
    while True:
        children = ctx.wait_children(timeout=1.0)
        ctx.check_canceled()  # a cancel of this task cancels the backups too
        ended = [c for c in children if c.terminal]
        ctx.progress(100 * len(ended) / len(children), f"{len(ended)} of {len(children)} done")
        if len(ended) == len(children):
            break
    failed = [c.object_id for c in children if c.state != "succeeded"]
    if failed:
        raise RuntimeError(f"the backups of {', '.join(map(str, failed))} did not succeed")
    return {"archives": [c.result["archive"] for c in children]}


@app.operation("aptupdate")
def aptupdate(ctx: Context) -> dict[str, Any]:
    """Refresh the package index (Proxmox VE ``aptupdate``) and list available upgrades."""
    lines = [
        "starting apt-get update",
        "Hit:1 http://ftp.us.debian.org/debian bookworm InRelease",
        "Get:2 http://ftp.us.debian.org/debian bookworm-updates InRelease [55.4 kB]",
        "Get:3 http://security.debian.org bookworm-security InRelease [48.0 kB]",
        "Get:4 http://download.proxmox.com/debian/pve bookworm InRelease [2768 B]",
        "Fetched 106 kB in 1s (125 kB/s)",
        "Reading package lists...",
    ]
    for i, line in enumerate(lines, start=1):
        if _stopped(ctx, 0.05):
            ctx.check_canceled()
        ctx.log(line)
        ctx.progress(100 * i / len(lines), line)
    upgrades = ["pve-manager", "proxmox-kernel-6.8", "libpve-common-perl"]
    return {"upgradable": upgrades, "count": len(upgrades)}


@app.operation("create_volume", object_id="name", timeout=600)
async def create_volume(
    ctx: Context,
    name: Annotated[str, Field(min_length=1, max_length=63, pattern=r"^[a-zA-Z0-9][\w\-]*$")],
    size: Annotated[int, Field(ge=1, le=16384, description="Size in GiB.")],
    type_name: Literal["standard", "ssd_hiiops", "cold", "ultra"] = "standard",
    count: Annotated[int, Field(ge=1, le=10, description="How many volumes to create.")] = 1,
) -> dict[str, Any]:
    """Create block-storage volumes (Gcore Cloud ``create_volume``).

    Moves through detailed states and records every volume it creates in the task's
    ``created_resources``, as Gcore's task API shows them.
    """
    ctx.detailed_state = "ALLOCATING"
    ctx.log(f"allocating {count} x {size} GiB {type_name} volume(s) named {name}")
    created: list[str] = []
    for i in range(count):
        ctx.check_canceled()
        await asyncio.sleep(0.1)
        volume_id = str(uuid.uuid4())
        ctx.add_created_resource("volumes", volume_id)
        created.append(volume_id)
        ctx.log(f"volume {volume_id} created")
        ctx.progress(100 * (i + 1) / count, f"{i + 1} of {count} volumes created")
    ctx.detailed_state = "FINISHED"
    return {"volumes": created, "name": name, "size": size, "volume_type": type_name}


class DiskImageError(RuntimeError):
    """A disk image cannot be read."""


def _read_header(path: str) -> bytes:
    raise DiskImageError(f"{path}: bad magic number 0x00000000 (not a qcow2 image)")


def _open_image(path: str) -> bytes:
    return _read_header(path)


@app.operation("fail_demo")
def fail_demo(ctx: Context, path: str = "/var/lib/vz/images/100/vm-100-disk-0.qcow2") -> None:
    """Always fails, from a nested call, so the task keeps the error and its traceback."""
    ctx.log(f"opening {path}")
    ctx.progress(10, "reading the image header")
    _open_image(path)


@app.operation("long_running")
def long_running(
    ctx: Context,
    seconds: Annotated[float, Field(gt=0, le=86_400, description="How long to run.")] = 60.0,
) -> dict[str, Any]:
    """Runs for ``seconds``, reporting progress every second; stops at once when canceled."""
    start = time.monotonic()
    ticks = 0
    while (elapsed := time.monotonic() - start) < seconds:
        if ctx.wait_canceled(min(1.0, seconds - elapsed)):
            ctx.log("cancel requested: stopping")
            ctx.check_canceled()
        ticks += 1
        elapsed = min(time.monotonic() - start, seconds)
        ctx.progress(100 * elapsed / seconds, f"{elapsed:.0f} of {seconds:g} s")
        ctx.log(f"tick {ticks}")
    return {"ticks": ticks, "seconds": seconds}


@app.operation("convert_image", isolation="process", object_id="source", timeout=3600)
def convert_image(
    ctx: Context,
    source: Annotated[str, Field(min_length=1, max_length=255)],
    format: Literal["qcow2", "raw", "vmdk"] = "qcow2",
    size_mib: Annotated[int, Field(ge=1, le=4096, description="Simulated image size.")] = 64,
) -> dict[str, Any]:
    """Convert a disk image (CPU-bound, so it runs in its own process).

    A process-isolated task can be stopped by force: if it ignores a cancel for longer
    than the grace period, its process is killed.
    """
    ctx.log(f"converting {source} to {format} ({size_mib} MiB)")
    digest = hashlib.sha256()
    block = b"\0" * (1024 * 1024)
    for mib in range(1, size_mib + 1):
        ctx.check_canceled()
        digest.update(block)
        if mib % 8 == 0 or mib == size_mib:
            ctx.progress(100 * mib / size_mib, f"{mib} of {size_mib} MiB")
    target = f"{source.rsplit('.', 1)[0]}.{format}"
    ctx.log(f"wrote {target}")
    return {"target": target, "sha256": digest.hexdigest()}


@app.operation("flaky", max_attempts=3, retry_backoff=0.2, retry_backoff_max=2.0)
def flaky(
    ctx: Context,
    failures: Annotated[int, Field(ge=0, le=10, description="Attempts that fail first.")] = 2,
) -> dict[str, Any]:
    """Fails its first ``failures`` attempts, then succeeds: shows retries with backoff."""
    if ctx.attempt <= failures:
        ctx.log(f"attempt {ctx.attempt}: the mirror did not answer", "warning")
        raise ConnectionError(f"attempt {ctx.attempt}: mirror.example.org timed out")
    ctx.log(f"attempt {ctx.attempt}: done")
    return {"attempts": ctx.attempt}


WalletName = Annotated[str, Field(max_length=64, pattern=r"^[A-Za-z0-9 _-]*$")]


@app.operation("wallet_backup", object_id="folder")
def wallet_backup(
    ctx: Context,
    folder: Annotated[str, Field(min_length=1, max_length=4096, pattern=r"^/")],
    name: WalletName = "",
    tag: Annotated[str, Field(max_length=64, pattern=r"^[A-Za-z0-9_-]*$")] = "",
) -> dict[str, Any]:
    """Back up CloudCoin wallets (CloudCoin's ``/backup``): the one named, or all, into a
    folder of this machine. Simulated: it writes nothing, but fails as the real command
    does when the folder does not exist."""
    if not Path(folder).is_dir():
        raise FileNotFoundError(f"The backup folder {folder} does not exist")
    wallets = [name] if name else ["Default", "Savings"]
    for i, wallet in enumerate(wallets, start=1):
        ctx.progress(100 * (i - 1) / len(wallets), f"Backing up wallet {wallet}")
        if _stopped(ctx, 0.3):
            ctx.check_canceled()
        ctx.log(f"backed up wallet {wallet} to {folder}")
    return {"folder": folder, "wallets": wallets, "tag": tag, "coins": 25 * len(wallets)}


@app.operation("join_coins")
def join_coins(ctx: Context, name: WalletName = "Default") -> str:
    """Join a wallet's coin fragments into whole coins (CloudCoin's ``/join``)."""
    for step, what in enumerate(("finding fragments", "joining", "verifying with the RAIDA")):
        ctx.progress(100 * step / 3, what.capitalize())
        if _stopped(ctx, 0.2):
            ctx.check_canceled()
    ctx.log(f"wallet {name or 'Default'}: joined")
    return "OK"


@app.operation("create_subscription", object_id="name")
def create_subscription(
    ctx: Context,
    name: Annotated[str, Field(min_length=1, max_length=40)],
    memory_gb: Annotated[float, Field(gt=0, le=10_000)] = 1.0,
    quota_gb: Annotated[float, Field(gt=0)] = 100.0,
) -> dict[str, Any]:
    """Create a Redis Cloud subscription (``POST /subscriptions``): checks the account's
    memory quota, provisions, and reports the subscription it created."""
    ctx.progress(10, "checking the account's quota")
    if memory_gb > quota_gb:
        raise SubscriptionQuotaExceeded(
            f"{memory_gb:g} GB is more than the account's quota of {quota_gb:g} GB"
        )
    for percent, step in ((40, "allocating nodes"), (80, "starting databases")):
        if _stopped(ctx, 0.2):
            ctx.check_canceled()
        ctx.progress(percent, step)
    subscription = int(hashlib.sha256(ctx.task_id.encode()).hexdigest()[:6], 16) % 900_000 + 100_000
    ctx.add_created_resource("subscriptions", str(subscription))
    ctx.log(f"subscription {subscription} ({name}) created")
    return {"id": subscription, "name": name, "memoryLimitInGb": memory_gb}


class SubscriptionQuotaExceeded(Exception):
    """The account has no room for the subscription."""


@app.operation("sync_repository", object_id="repo_id", exclusive=["repository:{repo_id}"])
def sync_repository(
    ctx: Context,
    repo_id: Annotated[str, Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9._-]+$")],
    feed: str | None = None,
) -> dict[str, Any]:
    """Sync a repository from its feed (Pulp's ``sync`` action): one sync of a
    repository at a time, as Pulp reserves the repository; others in parallel."""
    steps = ("downloading metadata", "downloading packages", "publishing")
    for i, step in enumerate(steps):
        ctx.progress(100 * i / len(steps), step, detail={"step": step, "done": i, "total": 3})
        if _stopped(ctx, 0.2):
            ctx.check_canceled()
    if feed is not None and not feed.startswith(("http://", "https://", "file://")):
        raise ValueError(f"the feed {feed!r} is not a URL")
    ctx.log(f"repository {repo_id} synced")
    return {"repo_id": repo_id, "added_count": 3, "removed_count": 0}


# -- Proxmox VE style kickoffs: POST /api2/json/nodes/{node}/vzdump and .../apt/update,
# served when the proxmox dialect is on (taskgate serve --dialect proxmox).


def _vmid(text: str) -> int:
    """PVE's vzdump takes a list of guests; this example backs up one."""
    return int(text.strip())


_pve.kickoff(
    app,
    "vzdump",
    "vzdump",
    fields={
        "vmid": _vmid,
        "storage": str,
        "mode": str,
        "compress": str,
        "duration": float,
        "remove": None,  # PVE options with no meaning here: accepted, dropped
        "notes-template": None,
    },
)
_pve.kickoff(
    app, "apt/update", "aptupdate", fields={"notify": _pve.pve_bool, "quiet": _pve.pve_bool}
)

# -- Gcore Cloud style kickoff: POST /cloud/v1/volumes/{project_id}/{region_id} runs
# create_volume, GET .../{volume_id} shows the volume it created (--dialect gcore).

_gcore.kickoff(
    app,
    "volumes",
    "create_volume",
    params=_gcore.volume_params,
    show=_gcore.show_volume,
)

# -- CloudCoin style kickoffs: POST /api/v1/backup (alias /create-wallet-backup) and
# /api/v1/join (alias /consolidate-coins), answered with the task (--dialect cloudcoin).

_cloudcoin.kickoff(app, "backup", "wallet_backup", alias="create-wallet-backup")
_cloudcoin.kickoff(app, "join", "join_coins", alias="consolidate-coins")

# -- Redis Cloud style kickoff: POST /rediscloud/v1/subscriptions runs create_subscription;
# GET .../subscriptions/{id} shows the subscription it created (--dialect rediscloud).


def _subscription_params(body: Mapping[str, Any]) -> dict[str, Any]:
    """Redis Cloud's create-subscription body: a name and databases with their memory."""
    databases = body.get("databases") or [{}]
    memory = sum(float(db.get("memoryLimitInGb", 1.0)) for db in databases)
    return {"name": str(body["name"]), "memory_gb": memory}


def _show_subscription(task: Task, resource_id: str) -> dict[str, Any]:
    result = task.result or {}
    return {
        "id": int(resource_id),
        "name": result.get("name"),
        "status": "active",
        "memoryStorage": "ram",
        "numberOfDatabases": 1,
        "createdTimestamp": task.finished_at.isoformat() if task.finished_at else None,
    }


_rediscloud.kickoff(
    app,
    "subscriptions",
    "create_subscription",
    command_type="subscriptionCreateRequest",
    params=_subscription_params,
    show=_show_subscription,
    title="getSubscriptionInformation",
)

# -- Pulp 2 style kickoffs: POST /pulp/api/v2/repositories/{repo_id}/actions/sync/ runs
# sync_repository (a call report); .../repositories/actions/sync/ with {"repo_ids": [...]}
# syncs several as one group (a group call report) (--dialect pulp).

_pulp.kickoff(
    app,
    "repositories/{repo_id}/actions/sync",
    "sync_repository",
    params=lambda path, body: {
        "repo_id": path["repo_id"],
        **dict(body.get("override_config") or {}),
    },
)
_pulp.kickoff(
    app,
    "repositories/actions/sync",
    "sync_repository",
    params=lambda path, body: [{"repo_id": str(r)} for r in body["repo_ids"]],
)
