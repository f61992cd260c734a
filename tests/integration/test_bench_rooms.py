"""scripts/bench-rooms on a small scale, so that it does not rot: a room
of 40 members (8 users) over two workers, every RoomState and reference
delivered and checked, and every figure printed (a figure, or INVALID
when the client saturated its core). No figure is asserted."""

import os
import re
import subprocess

import talas_fixtures as tf


def test_bench_rooms_runs_and_checks_every_delivery():
    tf.require_talas()
    tf.require_tool("ffmpeg", "ffmpeg")
    cp = subprocess.run(
        [str(tf.SRCDIR / "scripts" / "bench-rooms"), "--members", "40", "--users", "8", "--rounds", "3",
         "--interval", "0.3"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=300,
        env=dict(os.environ, TALAS_BUILDDIR=str(tf.BUILDDIR)))
    out = cp.stdout
    assert cp.returncode == 0, out
    assert "== room: 40 members (8 users) over 2 workers" in out, out
    assert ("delivered in all:      120 of 120 RoomStates, 120 of 120 references, 40 of 40 joined, 0 bad, "
            "0 duplicates, 0 members without every event, 0 of ") in out, out
    assert re.search(r"0 of \d+ RoomMemberStatus refused; \d+ other events of the room", out), out
    assert re.search(r"per worker: +pid \d+: \d+, pid \d+: \d+\n", out), out
    # a seek's RoomState carries the lean state, not the 9 members
    size = re.search(r"RoomState size: +(\d+) bytes \(the room's full state, 9 members: (\d+) bytes\)", out)
    assert size, out
    assert int(size[1]) < 400 < 1200 < int(size[2]), out
    figure = r"120 deliveries of 3 (broadcasts|seeks): p50 [0-9.]+ ms, p99 [0-9.]+ ms, max [0-9.]+ ms, min [0-9.]+ ms|INVALID"
    assert re.search(rf"reference latency: +({figure})", out), out
    assert re.search(rf"seek latency: +({figure})", out), out
    assert re.search(r"seek / reference: +(p50 [0-9.]+ / [0-9.]+ ms = [0-9.]+, p99 [0-9.]+ / [0-9.]+ ms = [0-9.]+"
                     r"|INVALID)", out), out
    assert re.search(r"issue target: +(seek p99 < 100 ms: (met|NOT met) \([0-9.]+ ms\)|INVALID)", out), out
    assert re.search(r"CPU per event: +workers: reference [0-9.]+ ms, seek [0-9.]+ ms", out), out


def test_bench_rooms_usage_error():
    cp = subprocess.run([str(tf.SRCDIR / "scripts" / "bench-rooms"), "--members", "1"],
                        capture_output=True, text=True, timeout=60,
                        env=dict(os.environ, TALAS_BUILDDIR=str(tf.BUILDDIR)))
    assert cp.returncode == 2, (cp.stdout, cp.stderr)
    assert "--members must be at least 2" in cp.stderr
