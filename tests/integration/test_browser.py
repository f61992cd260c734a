"""A real browser plays Talas streams.

Headless Chromium (Debian's /usr/bin/chromium, driven by playwright-core from
tests/integration/browser/node_modules; no browser is downloaded) plays
/stream/ID through a same-origin <audio> element, seeks to ~70% of the
track and plays on (browser/play.mjs).  The tests check that playback
advanced with no media error, and that the browser's Range requests were
answered 206 with a correct Content-Range.

Chromium fetches a small file whole with its first request (Range:
bytes=0-) and seeks inside its buffer, so the session library (tracks of a
few seconds) shows the first Range request only; the seek's own Range request
is checked on a second server whose tracks are long (~20 MB each).

Set TALAS_SKIP_BROWSER=1 to skip these tests.  A missing Chromium, node or
playwright-core is a failure, not a skip: scripts/check installs them
(chromium from Debian, `npm ci` in tests/integration/browser).
Screenshots and the JSON summaries go to $TALAS_BUILDDIR/tests/artifacts/browser/.
"""

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

import talas_fixtures as tf

pytestmark = pytest.mark.skipif(os.environ.get("TALAS_SKIP_BROWSER") == "1",
                                reason="TALAS_SKIP_BROWSER=1: browser tests skipped")

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
BROWSER_DIR = tf.TESTS_DIR / "browser"
PLAY = BROWSER_DIR / "play.mjs"
ARTIFACTS = tf.BUILDDIR / "tests" / "artifacts" / "browser"
PLAY_TIMEOUT = 120          # seconds for one play.mjs run (it bounds its own waits)

CONTENT_RANGE = re.compile(r"^bytes (\d+)-(\d+)/(\d+)$")
RANGE = re.compile(r"^bytes=(\d+)-(\d*)$")

# Long tracks for the seek test: big enough that Chromium has not buffered
# 70% of them after a second of playback.
LONG_TRACKS = {
    # name: (file, title, ffmpeg input, codec args)
    "mp3": ("long.mp3", "Long MP3", "sine=frequency=440:duration=480",
            ["-ac", "2", "-c:a", "libmp3lame", "-b:a", "320k"]),
    "flac": ("long.flac", "Long FLAC", "anoisesrc=d=180:c=pink:a=0.2:seed=7",
             ["-ac", "2", "-c:a", "flac"]),
    "wav": ("long.wav", "Long WAV", "sine=frequency=587:duration=120",
            ["-ac", "2", "-ar", "44100", "-c:a", "pcm_s16le"]),
}


# ------------------------------------------------------------------ helpers

def _node_modules():
    """The node_modules that holds playwright-core: next to play.mjs, or
    TALAS_BROWSER_NODE_MODULES, or the build tree's copy of the folder."""
    candidates = []
    if os.environ.get("TALAS_BROWSER_NODE_MODULES"):
        candidates.append(Path(os.environ["TALAS_BROWSER_NODE_MODULES"]))
    candidates += [BROWSER_DIR / "node_modules",
                   tf.BUILDDIR / "tests" / "integration" / "browser" / "node_modules"]
    for c in candidates:
        if (c / "playwright-core" / "package.json").is_file():
            return c
    return None


@pytest.fixture(scope="module")
def player(tmp_path_factory):
    """The path of a play.mjs that can import playwright-core."""
    missing = []
    if not os.access(CHROMIUM, os.X_OK):
        missing.append(f"{CHROMIUM} (apt-get install chromium)")
    if not shutil.which("node"):
        missing.append("node (apt-get install nodejs)")
    nm = _node_modules()
    if nm is None:
        missing.append(f"playwright-core in {BROWSER_DIR / 'node_modules'} "
                       f"(run `npm ci` in {BROWSER_DIR})")
    if missing:
        pytest.fail("browser test prerequisites missing (scripts/check installs them; "
                    "TALAS_SKIP_BROWSER=1 skips these tests): " + "; ".join(missing))
    if nm == BROWSER_DIR / "node_modules":
        return PLAY
    # play.mjs resolves playwright-core from its own folder: run a copy that
    # sits next to the node_modules found elsewhere (read-only source trees).
    d = tmp_path_factory.mktemp("browser")
    for script in BROWSER_DIR.glob("*.mjs"):
        shutil.copy(script, d / script.name)
    (d / "package.json").write_text('{"type": "module"}\n')
    (d / "node_modules").symlink_to(nm)
    return d / "play.mjs"


def run_play(player, base_url, track_id, name):
    """Run play.mjs; returns its JSON summary, fails the test on a failure."""
    out = ARTIFACTS / name
    shutil.rmtree(out, ignore_errors=True)      # only this run's screenshots
    out.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, CHROMIUM=CHROMIUM)
    try:
        cp = subprocess.run(["node", str(player), base_url, str(track_id), str(out)],
                            capture_output=True, text=True, timeout=PLAY_TIMEOUT,
                            cwd=str(player.parent), env=env)
    except subprocess.TimeoutExpired as e:
        pytest.fail(f"play.mjs did not finish within {PLAY_TIMEOUT}s\n"
                    f"stdout:\n{e.stdout}\nstderr:\n{e.stderr}")
    (out / "play.json").write_text(cp.stdout)
    (out / "play.stderr").write_text(cp.stderr)
    try:
        summary = json.loads(cp.stdout)
    except ValueError:
        pytest.fail(f"play.mjs exited {cp.returncode} without a JSON summary\n"
                    f"stdout:\n{cp.stdout[-4000:]}\nstderr:\n{cp.stderr[-4000:]}")
    assert cp.returncode == 0 and summary.get("ok"), (
        f"browser playback of {base_url}/stream/{track_id} failed: "
        f"{summary.get('failure')}\nsummary: {json.dumps(summary, indent=1)[:6000]}\n"
        f"stderr:\n{cp.stderr[-3000:]}")
    return summary


def access_log_ranges(srv, track_id, timeout=5):
    """Range requests for /stream/TRACK_ID in SRV's JSON access log, as the
    play.mjs request records ({range, status, content_range: None})."""
    uri = f"/stream/{track_id}"

    def read():
        out = []
        for line in tf.read_text(srv.access_log, limit=1 << 22).splitlines():
            try:
                e = json.loads(line)
            except ValueError:
                continue
            if str(e.get("uri", "")).split("?")[0] != uri:
                continue
            rng = e.get("range")
            if rng and rng != "-":
                out.append({"range": rng, "status": e.get("status"),
                            "content_range": None, "source": "access log"})
        return out
    try:
        return tf.wait_for(read, timeout, interval=0.2, what="access log entries")
    except AssertionError:
        return []


def parse_range(rng):
    m = RANGE.match(rng or "")
    if not m:
        return None
    return int(m.group(1)), (int(m.group(2)) if m.group(2) else None)


def check_content_range(rec, size):
    """REC was answered 206 with a Content-Range that matches its Range."""
    start, end = parse_range(rec["range"])
    assert rec["status"] == 206, f"Range {rec['range']} answered {rec['status']}, want 206"
    if rec.get("content_range") is None and rec.get("source") == "access log":
        return                      # the access log has no response headers
    m = CONTENT_RANGE.match(rec.get("content_range") or "")
    assert m, f"Range {rec['range']}: bad Content-Range {rec.get('content_range')!r}"
    s, e, total = (int(x) for x in m.groups())
    assert total == size, f"Content-Range {rec['content_range']}: total is not {size}"
    assert s == start, f"Content-Range {rec['content_range']} for Range {rec['range']}"
    want_end = size - 1 if end is None else min(end, size - 1)
    assert e == want_end, f"Content-Range {rec['content_range']} for Range {rec['range']}"


def ranged(summary, srv, track_id):
    """Range requests to the stream: from the browser's network events, else
    (when Playwright reported none) from the server's access log."""
    recs = [r for r in summary["requests"] if r.get("range")]
    if recs:
        return recs
    return access_log_ranges(srv, track_id)


def check_playback(summary, srv, track_id, path, content_type):
    size = path.stat().st_size
    assert summary["played"], "playback did not advance"
    assert summary["errors"] == [], f"errors during playback: {summary['errors']}"
    assert summary["seeked_to"] and summary["currentTime_after"] > summary["seeked_to"], (
        f"playback did not go on after the seek to {summary['seeked_to']} s "
        f"(currentTime {summary['currentTime_after']})")
    assert summary["requests"] or access_log_ranges(srv, track_id), \
        "no request to /stream/ID seen in the browser nor in the access log"
    for r in summary["requests"]:
        if r.get("content_type"):
            assert r["content_type"].split(";")[0].strip() == content_type, r
    recs = ranged(summary, srv, track_id)
    assert recs, f"no request carried a Range header: {summary['requests']}"
    answered = [r for r in recs if r.get("status") == 206]
    assert answered, f"no Range request was answered 206: {recs}"
    for r in answered:
        check_content_range(r, size)
    return recs, size


# ------------------------------------------------------- the session library

@pytest.mark.parametrize("kind", ["mp3", "flac", "wav"])
def test_browser_plays_and_seeks(server, library, player, kind):
    rel, title, *_rest, content_type = tf.LIBRARY_TRACKS[kind]
    track = server.track_by_title(title)
    assert track, f"track {title!r} is not in the catalog"
    summary = run_play(player, server.base_url, track["id"], f"library-{kind}")
    check_playback(summary, server, track["id"], library[kind], content_type)


# ---------------------------------------------------- long tracks: the seek

@pytest.fixture(scope="module")
def long_library(tmp_path_factory):
    d = tmp_path_factory.mktemp("long-library")
    out = {}
    for kind, (name, title, src, codec) in LONG_TRACKS.items():
        p = d / name
        tf.run(["ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin", "-y",
                "-f", "lavfi", "-i", src] + codec
               + ["-metadata", f"title={title}", "-metadata", "artist=Talas Fixtures", p],
               timeout=120)
        out[kind] = p
    return out


@pytest.fixture(scope="module")
def long_server(tmp_path_factory, long_library):
    srv = tf.TalasServer(tmp_path_factory.mktemp("long-server"),
                         [long_library["mp3"].parent], workers=2)
    srv.start(wait_scan=True)
    try:
        yield srv
    finally:
        srv.kill()


@pytest.mark.parametrize("kind", ["mp3", "flac", "wav"])
def test_browser_seek_sends_range(long_server, long_library, player, kind):
    name, title, _src, _codec = LONG_TRACKS[kind]
    content_type = tf.LIBRARY_TRACKS[kind][-1]
    track = long_server.track_by_title(title)
    assert track, f"track {title!r} is not in the catalog"
    summary = run_play(player, long_server.base_url, track["id"], f"seek-{kind}")
    recs, size = check_playback(summary, long_server, track["id"],
                                long_library[kind], content_type)
    far = [r for r in recs if parse_range(r["range"]) and parse_range(r["range"])[0] > 0.3 * size]
    assert far, (f"the seek to {summary['seeked_to']} s of {summary['duration']} s sent no "
                 f"Range request beyond 30% of the {size}-byte file: {recs}")
    assert any(r.get("status") == 206 for r in far), f"seek Range requests not answered 206: {far}"
    for r in far:
        if r.get("status") is not None:     # None: cancelled before its answer
            check_content_range(r, size)
