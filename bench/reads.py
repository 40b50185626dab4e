"""W3: status reads from 64 connections, against a bare ASGI app in the same run."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from bench.common import ROOT, free_port, serve, wrk


@contextlib.contextmanager
def bare_server(body: bytes, workdir: Path):  # type: ignore[no-untyped-def]
    body_file = workdir / "w3-body.json"
    body_file.write_bytes(body)
    port = free_port()
    env = dict(os.environ, PYTHONPATH=str(ROOT), BENCH_BODY_FILE=str(body_file))
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "bench.bare:app",
            "--port",
            str(port),
            "--loop",
            "uvloop",
            "--http",
            "httptools",
            "--no-access-log",
            "--log-level",
            "warning",
        ],
        env=env,
        cwd=ROOT,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(base + "/", timeout=1).status_code == 200:
                    break
            time.sleep(0.05)
        yield base
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(10)


def run(workdir: Path, seconds: int = 10) -> dict[str, float]:
    db = workdir / "w3.db"
    with serve(db, workers=1) as base:
        task = httpx.post(base + "/v1/operations/noop", json={}).json()
        url = f"{base}/v1/tasks/{task['id']}"
        for _ in range(100):
            body = httpx.get(url).content
            if httpx.get(url).json()["state"] == "succeeded":
                break
            time.sleep(0.05)
        body = httpx.get(url).content
    # the API alone: no worker processes competing for the two cores
    dialects = ("gcore", "proxmox", "cloudcoin", "rediscloud", "pulp")
    dialects = tuple(arg for name in dialects for arg in ("--dialect", name))
    with serve(db, workers=0, extra=dialects) as base:
        url = f"{base}/v1/tasks/{task['id']}"
        wrk(url, connections=64, seconds=2)  # warm up
        ours = wrk(url, connections=64, seconds=seconds)
        # the same task through the Gcore Cloud dialect, in the same server
        gcore_url = f"{base}/cloud/v1/tasks/{task['id']}"
        wrk(gcore_url, connections=64, seconds=2)
        gcore = wrk(gcore_url, connections=64, seconds=seconds)
        # and through the Proxmox VE dialect (plain HTTP here: wrk measures the translation)
        upid = httpx.get(url).json()["upid"]
        pve_url = f"{base}/api2/json/nodes/{upid.split(':')[1]}/tasks/{upid}/status"
        assert httpx.get(pve_url).json()["data"]["status"] == "stopped"
        wrk(pve_url, connections=64, seconds=2)
        pve = wrk(pve_url, connections=64, seconds=seconds)
        # and through the CloudCoin dialect, the route its pollers repeat
        cc_url = f"{base}/api/v1/tasks/{task['id']}"
        assert httpx.get(cc_url).json()["payload"]["status"] == "completed"
        wrk(cc_url, connections=64, seconds=2)
        cloudcoin = wrk(cc_url, connections=64, seconds=seconds)
        # and through the Redis Cloud dialect (auth is off: x-api-key names the account)
        rc_url = f"{base}/rediscloud/v1/tasks/{task['id']}"
        rc = httpx.get(rc_url, headers={"x-api-key": "default"}).json()
        assert rc["status"] == "processing-completed", rc
        wrk(rc_url, connections=64, seconds=2, headers=("x-api-key: default",))
        redis = wrk(rc_url, connections=64, seconds=seconds, headers=("x-api-key: default",))
        # and through the Pulp dialect: Pulp 2's task report, and Pulp 1's Task object
        pulp2_url = f"{base}/pulp/api/v2/tasks/{task['id']}/"
        assert httpx.get(pulp2_url).json()["state"] == "finished"
        wrk(pulp2_url, connections=64, seconds=2)
        pulp2 = wrk(pulp2_url, connections=64, seconds=seconds)
        pulp1_url = f"{base}/pulp/api/tasks/{task['id']}/"
        assert httpx.get(pulp1_url).json()["state"] == "finished"
        pulp1 = wrk(pulp1_url, connections=64, seconds=seconds)
    with bare_server(body, workdir) as bare_base:
        wrk(bare_base + "/", connections=64, seconds=2)
        bare = wrk(bare_base + "/", connections=64, seconds=seconds)
    ratio = ours["rps"] / bare["rps"]
    print(
        f"  W3 GET /v1/tasks/{{id}}, 64 connections: {ours['rps']:,.0f} req/s, "
        f"p50 {ours['p50']:.2f} ms, p99 {ours['p99']:.2f} ms"
    )
    print(
        f"  W3 bare ASGI, same body ({len(body)} bytes): {bare['rps']:,.0f} req/s, "
        f"p99 {bare['p99']:.2f} ms -> ratio {ratio:.2f}"
    )
    gcore_ratio = gcore["rps"] / ours["rps"]
    print(
        f"  W3 GET /cloud/v1/tasks/{{id}} (Gcore dialect): {gcore['rps']:,.0f} req/s, "
        f"p99 {gcore['p99']:.2f} ms -> {gcore_ratio:.2f} of native"
    )
    pve_ratio = pve["rps"] / ours["rps"]
    print(
        f"  W3 GET /api2/json/nodes/{{node}}/tasks/{{upid}}/status (Proxmox dialect):"
        f" {pve['rps']:,.0f} req/s, p99 {pve['p99']:.2f} ms -> {pve_ratio:.2f} of native"
    )
    cc_ratio = cloudcoin["rps"] / ours["rps"]
    print(
        f"  W3 GET /api/v1/tasks/{{id}} (CloudCoin dialect): {cloudcoin['rps']:,.0f} req/s,"
        f" p99 {cloudcoin['p99']:.2f} ms -> {cc_ratio:.2f} of native"
    )
    rc_ratio = redis["rps"] / ours["rps"]
    print(
        f"  W3 GET /rediscloud/v1/tasks/{{id}} (Redis Cloud dialect): {redis['rps']:,.0f}"
        f" req/s, p99 {redis['p99']:.2f} ms -> {rc_ratio:.2f} of native"
    )
    pulp2_ratio, pulp1_ratio = pulp2["rps"] / ours["rps"], pulp1["rps"] / ours["rps"]
    print(
        f"  W3 GET /pulp/api/v2/tasks/{{id}}/ (Pulp 2): {pulp2['rps']:,.0f} req/s ->"
        f" {pulp2_ratio:.2f} of native; /pulp/api/tasks/{{id}}/ (Pulp 1): {pulp1['rps']:,.0f}"
        f" req/s -> {pulp1_ratio:.2f}"
    )
    return {
        "pulp2_ratio": pulp2_ratio,
        "pulp1_ratio": pulp1_ratio,
        "rediscloud_rps": redis["rps"],
        "rediscloud_ratio": rc_ratio,
        "cloudcoin_rps": cloudcoin["rps"],
        "cloudcoin_ratio": cc_ratio,
        "pve_rps": pve["rps"],
        "pve_ratio": pve_ratio,
        "rps": ours["rps"],
        "bare_rps": bare["rps"],
        "ratio": ratio,
        "p99_ms": ours["p99"],
        "gcore_rps": gcore["rps"],
        "gcore_ratio": gcore_ratio,
    }
