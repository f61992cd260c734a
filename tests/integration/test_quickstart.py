"""scripts/quickstart, as a newcomer runs it: it builds (already built here),
generates the demo library once, serves it on http://127.0.0.1:8082, and a
browser plays its tracks, both through <audio src="/stream/ID"> and from the
page served at /.

The test needs port 8082 free; when something else holds it (a quickstart
you left running), it is skipped with a message. It runs in the source tree
that `make check` builds in, where quickstart keeps its files (var/)."""
import json
import os
import signal
import socket
import subprocess
import time
import urllib.request

import pytest

import talas_fixtures as tf
from test_browser import ARTIFACTS, CHROMIUM, player, run_play  # noqa: F401 (fixture)

PORT = 8082
BASE = f"http://127.0.0.1:{PORT}"
DEMO_FORMATS = {"mp3": "audio/mpeg", "flac": "audio/flac", "wav": "audio/wav"}


def _port_busy():
    try:
        with socket.create_connection(("127.0.0.1", PORT), timeout=0.5):
            return True
    except OSError:
        return False


@pytest.fixture(scope="module")
def quickstart():
    if tf.SRCDIR.resolve() != tf.BUILDDIR.resolve():
        pytest.skip("quickstart builds in the source tree; this is an out-of-tree build")
    if _port_busy():
        pytest.skip(f"port {PORT} is in use (a quickstart already running?)")
    log = open(tf.BUILDDIR / "tests" / "artifacts" / "quickstart.log", "w")
    proc = subprocess.Popen([str(tf.SRCDIR / "scripts" / "quickstart")], cwd=str(tf.SRCDIR),
                            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        def ready():
            if proc.poll() is not None:
                raise AssertionError(f"quickstart exited {proc.returncode}: "
                                     f"{(tf.BUILDDIR / 'tests/artifacts/quickstart.log').read_text()[-3000:]}")
            try:
                with urllib.request.urlopen(BASE + "/api/health", timeout=2) as r:
                    scan = json.load(r)["scan"]
                return scan and not scan["running"] and scan["finished_at"] > 0 and scan["tracks"] > 0
            except OSError:
                return False
        tf.wait_for(ready, 120, what="quickstart to serve the demo library")
        yield proc
    finally:
        # Ctrl-C, as the README says
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGINT)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        log.close()


def _tracks():
    with urllib.request.urlopen(BASE + "/api/tracks", timeout=5) as r:
        return json.load(r)["tracks"]


def test_quickstart_serves_tagged_demo_library(quickstart):
    tracks = _tracks()
    assert len(tracks) >= 5, tracks
    assert {t["container"] for t in tracks} >= set(DEMO_FORMATS), tracks
    for t in tracks:
        assert t["title"] and t["artist"] and t["album"] and t["duration_ms"] > 1000, t
    # the library quickstart points at is the generated demo library
    assert (tf.SRCDIR / "var" / "library").resolve() == (tf.SRCDIR / "var" / "demo-library").resolve()


@pytest.mark.parametrize("fmt", sorted(DEMO_FORMATS))
def test_quickstart_demo_plays_in_browser(quickstart, player, fmt):  # noqa: F811
    track = next(t for t in _tracks() if t["container"] == fmt)
    summary = run_play(player, BASE, track["id"], f"quickstart-{fmt}")
    assert summary["played"] and summary["errors"] == [], summary
    ranged = [r for r in summary["requests"] if r.get("range")]
    assert ranged and all(r["status"] == 206 for r in ranged), summary["requests"]
    assert all(r["content_type"].split(";")[0] == DEMO_FORMATS[fmt]
               for r in summary["requests"] if r.get("content_type")), summary["requests"]


def test_quickstart_page_plays_a_track(quickstart, player):  # noqa: F811
    out = ARTIFACTS / "quickstart-page"
    cp = subprocess.run(["node", str(player.parent / "page.mjs"), BASE, str(out)],
                        capture_output=True, text=True, timeout=90, cwd=str(player.parent),
                        env=dict(os.environ, CHROMIUM=CHROMIUM))
    summary = json.loads(cp.stdout or "{}")
    assert cp.returncode == 0 and summary.get("ok"), (cp.stdout, cp.stderr[-3000:])
    assert summary["tracks"] == len(_tracks())
    assert "/stream/" in summary["src"]
    assert any(r["status"] in (200, 206) for r in summary["requests"]), summary


def test_quickstart_stops_on_ctrl_c(quickstart):
    os.killpg(quickstart.pid, signal.SIGINT)
    assert quickstart.wait(timeout=20) == 0
    t0 = time.monotonic()
    assert not _port_busy(), f"port {PORT} still accepts connections {time.monotonic() - t0:.1f}s after Ctrl-C"
