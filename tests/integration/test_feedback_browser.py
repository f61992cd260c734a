"""The web player's feedback panel in a real browser.

A talas-master serves the built player (web/dist) over a library with two
versions of one song ("take v1.mp3", "take v2.mp3", 20 s each). Headless
Chromium (browser/feedback.mjs, playwright-core driving Debian's
/usr/bin/chromium), at a desktop viewport and as a phone ('Pixel 5'),
opened with a user's token: posts a comment at a time and sees its marker
on the seek bar, clicks the marker and is sent back to that time, posts a
hostile body (HTML with script) that shows as typed and runs nothing, and
switches to the other version with the position kept. The comments are
then read back over HTTP. Screenshots go to
$TALAS_BUILDDIR/tests/artifacts/feedback/. TALAS_SKIP_BROWSER=1 skips.
"""

import json
import os
import shutil
import subprocess

import pytest

import auth_keys as ak
import talas_fixtures as tf
from test_browser import CHROMIUM, player  # noqa: F401  (fixture)
from test_web_player import web_dist

pytestmark = pytest.mark.skipif(os.environ.get("TALAS_SKIP_BROWSER") == "1",
                                reason="TALAS_SKIP_BROWSER=1: browser tests skipped")

ARTIFACTS = tf.BUILDDIR / "tests" / "artifacts" / "feedback"
HOSTILE = '<img src=x onerror="window.__pwned=1"><script>window.__pwned=2</script>\u202e'


@pytest.fixture(scope="module")
def keys(tmp_path_factory):
    return ak.Keys(tmp_path_factory.mktemp("feedbackkeys"))


@pytest.fixture(scope="module")
def fsrv(tmp_path_factory, keys):
    dist = web_dist()
    lib = tmp_path_factory.mktemp("feedbacklib")
    tf.make_track(lib / "take v1.mp3", "Take v1", artist="Demo Band", seconds=20, freq=330)
    tf.make_track(lib / "take v2.mp3", "Take v2", artist="Demo Band", seconds=20, freq=440)
    srv = tf.TalasServer(tmp_path_factory.mktemp("feedbacksrv"), [lib], workers=2)
    text = ak.config_with_auth(srv, ak.auth_yaml(keys, required=False, extra_keys=False))
    text += f"http:\n  www_root: {json.dumps(str(dist))}\n"
    srv.write_config(text=text)
    srv.start()
    srv.keys = keys
    try:
        yield srv
    finally:
        srv.kill()


@pytest.mark.parametrize("mode", ["desktop", "mobile"])
def test_feedback_in_the_browser(player, fsrv, mode):  # noqa: F811
    user = f"listener-{mode}"
    out = ARTIFACTS / mode
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True, exist_ok=True)
    script = player.parent / "feedback.mjs"
    if not script.exists():
        shutil.copy(tf.TESTS_DIR / "browser" / "feedback.mjs", script)
    at_s = {"desktop": 5, "mobile": 11}[mode]  # apart: the other run's markers stay
    env = dict(os.environ, CHROMIUM=CHROMIUM, V1_TITLE="Take v1", V2_TITLE="Take v2", AT_S=str(at_s),
               HOSTILE=HOSTILE,
               USER_TOKEN=ak.pyjwt_token(fsrv.keys, "HS256", ak.claims(None, sub=user, ttl=600), kid="k2"))
    try:
        cp = subprocess.run(["node", str(script), fsrv.base_url, str(out), mode], capture_output=True,
                            text=True, timeout=300, cwd=str(script.parent), env=env)
    except subprocess.TimeoutExpired as e:
        pytest.fail(f"feedback.mjs did not finish in 300 s\nstdout:\n{e.stdout}\nstderr:\n{e.stderr}")
    (out / "feedback.json").write_text(cp.stdout)
    try:
        summary = json.loads(cp.stdout)
    except ValueError:
        pytest.fail(f"feedback.mjs exited {cp.returncode} without a summary\n{cp.stdout[-3000:]}\n{cp.stderr[-3000:]}")
    assert cp.returncode == 0 and summary["ok"], f"{summary.get('failure')}\n{json.dumps(summary)[:4000]}"
    assert abs(summary["marker_seek"] - summary["posted"]["at_ms"] / 1000) < 0.3
    assert summary["hostile"]["text"] == HOSTILE and summary["hostile"]["pwned"] is None
    assert abs(summary["switched"]["time"] - 7) < 1
    assert not summary["page_errors"], summary["page_errors"]
    # what the page posted is stored as typed, by the token's user
    v1 = fsrv.track_by_title("Take v1")["id"]
    st, _, body = fsrv.get(f"/api/tracks/{v1}/comments")
    assert st == 200
    mine = [t for t in json.loads(body)["threads"] if t["user_id"] == user]
    assert HOSTILE in [t["body"] for t in mine]
    assert any(abs(t["at_ms"] - summary["posted"]["at_ms"]) == 0 for t in mine)
