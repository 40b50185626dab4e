"""Run every benchmark and print the figures against the targets of the issues.

make bench                             # everything
python -m bench.run w1 w2              # some workloads
python -m bench.run w1pg w2pg scale    # the PostgreSQL ones

The PostgreSQL workloads (w1pg, w2pg, scale) each make a database of their own on
``TASKGATE_BENCH_POSTGRES_URL`` (see `bench.postgres`) and drop it after; when the server
cannot be reached they are skipped, and the figures table says so.
"""

from __future__ import annotations

import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from bench import (
    history,
    latency,
    metrics,
    postgres,
    purge,
    reads,
    schedules,
    throughput,
    ui,
    waiters,
)
from bench.common import machine

Target = tuple[str, str, Callable[[dict[str, float]], float], str, float]
# (workload, figure, value, comparison, target)
TARGETS: dict[str, list[tuple[str, Callable[[dict[str, float]], float], str, float]]] = {
    "w1": [
        ("Python API no-op tasks/s, end to end", lambda r: r["python_noop"], ">=", 5000),
        ("Python API async no-op tasks/s", lambda r: r["python_noop_async"], ">=", 5000),
        ("HTTP, 16 clients, tasks/s", lambda r: r["http"], ">=", 2000),
    ],
    "w2": [
        ("submit -> start p50 (ms)", lambda r: r["start_p50_ms"], "<=", 2),
        ("submit -> start p99 (ms)", lambda r: r["start_p99_ms"], "<=", 10),
        ("submit -> result via ?wait p50 (ms)", lambda r: r["result_p50_ms"], "<=", 5),
        ("SDK client.submit + client.wait p50 (ms)", lambda r: r["sdk_p50_ms"], "<=", 5),
    ],
    "w1pg": [
        ("2 workers, no-op tasks/s, end to end", lambda r: r["python_noop"], ">=", 4000),
        ("2 workers, async no-op tasks/s", lambda r: r["python_noop_async"], "info", 0),
    ],
    "w2pg": [
        ("submit -> start p50 (ms)", lambda r: r["start_p50_ms"], "<=", 3),
        ("submit -> start p99 (ms)", lambda r: r["start_p99_ms"], "info", 0),
        ("submit -> result via ?wait p50 (ms)", lambda r: r["result_p50_ms"], "info", 0),
    ],
    "scale": [
        ("no-op tasks/s, 1 worker process", lambda r: r["workers_1"], "info", 0),
        ("no-op tasks/s, 2 worker processes", lambda r: r["workers_2"], "info", 0),
        ("no-op tasks/s, 4 worker processes", lambda r: r["workers_4"], "info", 0),
    ],
    "w3": [
        ("GET task req/s / bare ASGI req/s", lambda r: r["ratio"], ">=", 0.4),
        ("GET task p99 (ms)", lambda r: r["p99_ms"], "<=", 20),
        ("Gcore GET /cloud/v1/tasks/{id} req/s / native", lambda r: r["gcore_ratio"], ">=", 0.8),
        ("Proxmox .../{upid}/status req/s / native", lambda r: r["pve_ratio"], ">=", 0.8),
        ("CloudCoin /api/v1/tasks/{id} req/s / native", lambda r: r["cloudcoin_ratio"], ">=", 0.8),
        ("Redis Cloud .../tasks/{id} req/s / native", lambda r: r["rediscloud_ratio"], ">=", 0.8),
        ("Pulp 2 /pulp/api/v2/tasks/{id}/ req/s / native", lambda r: r["pulp2_ratio"], ">=", 0.8),
        ("Pulp 1 /pulp/api/tasks/{id}/ req/s / native", lambda r: r["pulp1_ratio"], ">=", 0.8),
    ],
    "w4": [
        ("10k waiters: every answer within (max ms)", lambda r: r["max_ms"], "<=", 1000),
        ("10k waiters: answer p50 (ms)", lambda r: r["p50_ms"], "info", 0),
        ("10k waiters: answer p99 (ms)", lambda r: r["p99_ms"], "info", 0),
        ("10k waiters: API process peak RSS (MB)", lambda r: r["rss_mb"], "<=", 300),
    ],
    "w5": [
        ("get-by-id p99 (ms), store", lambda r: r["get_p99_ms"], "<=", 2),
        ("get-by-id p99 (ms), HTTP", lambda r: r["http_get_p99_ms"], "<=", 2),
        ("filtered list page p99 (ms), store", lambda r: r["list_p99_ms"], "<=", 20),
        ("filtered list page p99 (ms), HTTP", lambda r: r["http_list_p99_ms"], "<=", 20),
        ("bytes on disk per task", lambda r: r["bytes_per_task"], "info", 0),
    ],
    "purge": [
        ("W1 tasks/s lost while 1M tasks are purged (%)", lambda r: r["w1_drop"] * 100, "<=", 20),
        ("slowest API call on the purge (ms)", lambda r: r["slowest_api_ms"], "<=", 100),
        ("a purge batch of 200, p50 (ms)", lambda r: r["batch_p50_ms"], "info", 0),
        ("the purge of 1M tasks (s)", lambda r: r["purge_s"], "info", 0),
    ],
    "ui": [
        ("first list page, archived=any, p50 (ms)", lambda r: r["list_p50_ms"], "<=", 300),
        ("first list page, archived=any, max (ms)", lambda r: r["list_max_ms"], "<=", 300),
        ("... with state=failed, max (ms)", lambda r: r["list_state_max_ms"], "<=", 300),
        ("... with q=<object id>, max (ms)", lambda r: r["list_q_object_max_ms"], "<=", 300),
        ("... with q=<label value>, max (ms)", lambda r: r["list_q_label_max_ms"], "<=", 300),
        ("... with tenant=, max (ms)", lambda r: r["list_tenant_max_ms"], "<=", 300),
        ("GET /v1/stats (1 h), max (ms)", lambda r: r["stats_max_ms"], "<=", 300),
        ("GET /v1/stats (7 days), max (ms)", lambda r: r["stats_7d_max_ms"], "<=", 300),
    ],
    "metrics": [
        ("GET /metrics, 10k active tasks, p50 (ms)", lambda r: r["p50_ms"], "<=", 50),
        ("GET /metrics, 10k active tasks, p99 (ms)", lambda r: r["p99_ms"], "<=", 50),
    ],
    "sched": [
        ("10k schedules: scheduler CPU (% of a core)", lambda r: r["cpu_percent"], "<=", 5),
        ("10k schedules: runs submitted per second", lambda r: r["runs_per_s"], "info", 0),
    ],
}

WORKLOADS: dict[str, Callable[[Path], dict[str, float]]] = {
    "w1": throughput.run,
    "w2": latency.run,
    "w1pg": throughput.run_postgres,
    "w2pg": latency.run_postgres,
    "scale": throughput.scaling,
    "w3": reads.run,
    "w4": waiters.run,
    "w5": history.run,
    "sched": schedules.run,
    "purge": purge.run,
    "ui": ui.run,
    "metrics": metrics.run,
}


def main(argv: list[str]) -> int:
    chosen = [a.lower() for a in argv] or list(WORKLOADS)
    unknown = [c for c in chosen if c not in WORKLOADS]
    if unknown:
        print(f"unknown workload(s): {', '.join(unknown)}; choose from {', '.join(WORKLOADS)}")
        return 2
    print(f"taskgate benchmarks on {machine()}")
    print(f"started {time.strftime('%Y-%m-%d %H:%M:%S %Z')}\n")
    results: dict[str, dict[str, float]] = {}
    skipped: dict[str, str] = {}
    with tempfile.TemporaryDirectory(prefix="taskgate-bench-") as tmp:
        for name in chosen:
            print(f"{name.upper()}:")
            try:
                results[name] = WORKLOADS[name](Path(tmp))
            except postgres.Unreachable as exc:
                skipped[name] = str(exc)
                print(f"  skipped: {exc}")
            print()
    print(f"{'figure':<48} {'measured':>12} {'target':>10}  verdict")
    failed = 0
    for name in chosen:
        if name in skipped:
            print(f"{name.upper() + ' (PostgreSQL unreachable)':<48} {'skipped':>12}")
            continue
        for label, get, op, target in TARGETS[name]:
            value = get(results[name])
            if op == "info":
                print(f"{name.upper() + ' ' + label:<48} {value:>12,.2f} {'':>10}")
                continue
            ok = value >= target if op == ">=" else value <= target
            failed += not ok
            print(
                f"{name.upper() + ' ' + label:<48} {value:>12,.2f} {op + ' ' + str(target):>10}"
                f"  {'ok' if ok else 'MISSED'}"
            )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
