"""The web player's continuous mode in a real browser.

A talas-master serves the built player over a library with two 4 s
tracks of one artist ("Queue Band"). Headless Chromium
(browser/continuous.mjs, playwright-core driving Debian's
/usr/bin/chromium), at a desktop viewport and as a phone ('Pixel 5'), plays
one of them, then "Play all of Queue Band": the player loads
/hls/queue/artist/Queue%20Band/master.m3u8 (the gapless queue route)
through hls.js and plays both tracks as one stream, followed past the
first track's end without the element ending there; then the artist typed
in the form plays again. Screenshots go to
$TALAS_BUILDDIR/tests/artifacts/continuous/. TALAS_SKIP_BROWSER=1 skips.
"""

import json
import os
import shutil
import subprocess

import pytest

import talas_fixtures as tf
from test_browser import CHROMIUM, player  # noqa: F401  (fixture)
from test_web_player import web_dist

pytestmark = pytest.mark.skipif(os.environ.get("TALAS_SKIP_BROWSER") == "1",
                                reason="TALAS_SKIP_BROWSER=1: browser tests skipped")

ARTIFACTS = tf.BUILDDIR / "tests" / "artifacts" / "continuous"
ARTIST = "Queue Band"


@pytest.fixture(scope="module")
def csrv(tmp_path_factory):
    dist = web_dist()
    lib = tmp_path_factory.mktemp("contlib")
    tf.make_track(lib / "q1.mp3", "Queue One", artist=ARTIST, album="Q", seconds=4, freq=330)
    tf.make_track(lib / "q2.mp3", "Queue Two", artist=ARTIST, album="Q", seconds=4, freq=550)
    tf.make_track(lib / "other.mp3", "Other Song", artist="Someone Else", seconds=4, freq=660)
    srv = tf.TalasServer(tmp_path_factory.mktemp("contsrv"), [lib], workers=2,
                         extra_yaml=f"http:\n  www_root: {json.dumps(str(dist))}\n")
    srv.start()
    try:
        yield srv
    finally:
        srv.kill()


@pytest.mark.parametrize("mode", ["desktop", "mobile"])
def test_play_an_artist_continuously(player, csrv, mode):  # noqa: F811
    out = ARTIFACTS / mode
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True, exist_ok=True)
    script = player.parent / "continuous.mjs"
    if not script.exists():
        shutil.copy(tf.TESTS_DIR / "browser" / "continuous.mjs", script)
    env = dict(os.environ, CHROMIUM=CHROMIUM, TRACK_TITLE="Queue One", ARTIST=ARTIST, FIRST_S="4")
    try:
        cp = subprocess.run(["node", str(script), csrv.base_url, str(out), mode], capture_output=True, text=True,
                            timeout=180, cwd=str(script.parent), env=env)
    except subprocess.TimeoutExpired as e:
        pytest.fail(f"continuous.mjs did not finish in 180 s\n{(e.stderr or '')[-3000:]}")
    (out / "continuous.json").write_text(cp.stdout)
    try:
        summary = json.loads(cp.stdout)
    except ValueError:
        pytest.fail(f"continuous.mjs exited {cp.returncode} without a summary\n{cp.stdout[-3000:]}\n{cp.stderr[-3000:]}")
    assert cp.returncode == 0 and summary["ok"], f"{summary.get('failure')}\n{json.dumps(summary)[:4000]}\n{cp.stderr[-2000:]}"
    master = f"/hls/queue/artist/{ARTIST}/master.m3u8"
    reqs = summary["queue_requests"]
    assert {"path": master, "status": 200} in reqs, reqs
    assert all(r["status"] == 200 for r in reqs), reqs
    assert any(r["path"].endswith(".m4s") for r in reqs), reqs
    assert summary["source"].startswith("Continuous")
    # one stream of both tracks (8 s), played past the first one's end
    assert 7.5 < summary["duration"] < 8.6, summary["duration"]
    assert summary["passed_boundary_at"] > 5 and summary["ended_early"] is False
    assert summary["typed_master"] == {"path": master, "status": 200}
    assert not summary["page_errors"], summary["page_errors"]
