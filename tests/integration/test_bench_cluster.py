"""scripts/bench-cluster on a small scale, so that it does not rot: its
own redis-server, PostgreSQL and nodes start, every delivery arrives on
both nodes and on the node alone, and every figure is printed (a figure,
or INVALID when a client process saturated its core)."""

import os
import re
import subprocess

import cluster_fixtures as cf
import talas_fixtures as tf


def test_bench_cluster_runs_and_checks_every_delivery():
    cf.require_engines()
    tf.require_talas()
    cp = subprocess.run(
        [str(tf.REPO_ROOT / "scripts" / "bench-cluster"), "--connections", "200", "--broadcasts", "3",
         "--burst", "3", "--interval", "0.3"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=300,
        env=dict(os.environ, TALAS_BUILDDIR=str(tf.BUILDDIR)))
    out = cp.stdout
    assert cp.returncode == 0, out
    # 200 connections x 6 events, in the reference and in the cluster
    assert out.count("delivered in all:      1200 of 1200, 0 not as published, 0 duplicates, "
                     "0 connections without exactly 6\n") == 2, out
    assert "connections:           200 opened in" in out, out
    assert "per node: A 100 of 100, B 100 of 100" in out, out
    figure = r"(600|300) deliveries of 3 broadcasts: p50 [0-9.]+ ms, p99 [0-9.]+ ms|INVALID: a client process"
    ref, clu = out.split("== cluster: nodes A and B", 1)
    assert re.search(rf"latency, all: +({figure})", ref), out
    for where in ("all", "on A", "on B"):
        assert re.search(rf"latency, {where}: +({figure})", clu), out
    assert len(re.findall(r"events delivered: +(\d+ deliveries of a 3-event burst|INVALID)", out)) == 3, out
    assert "events delivered:      300 deliveries of a 3-event burst to B's connections" in out or \
        "INVALID on B's connections" in out, out
    # every event was PUBLISHed once, to the 4 workers of the two nodes
    assert re.search(r"through Redis: +3 PUBLISH in the burst \(\d+/s\), each to 4 subscribers: \d+ messages/s "
                     r"out of Redis; 6 PUBLISH in all for 6 events", out), out
    assert re.search(r"client CPU: +A's 100: \d+% while a broadcast is delivered", out), out
    assert re.search(r"CPU per broadcast: +A workers [0-9.]+ ms, master [0-9.]+ ms, B workers", out), out
    for label in ("all", "on B", "on A"):
        assert re.search(rf"p99 cluster, {label} / one node: +([0-9.]+ / [0-9.]+ ms = [0-9.]+|INVALID)", out), out
    assert re.search(r"events/s, cluster / one node: +([0-9]+ / [0-9]+ = [0-9.]+|INVALID)", out), out


def test_bench_cluster_usage_error():
    cp = subprocess.run([str(tf.REPO_ROOT / "scripts" / "bench-cluster"), "--connections", "1"],
                        capture_output=True, text=True, timeout=60,
                        env=dict(os.environ, TALAS_BUILDDIR=str(tf.BUILDDIR)))
    assert cp.returncode == 2, (cp.stdout, cp.stderr)
    assert "--connections must be at least 2" in cp.stderr
