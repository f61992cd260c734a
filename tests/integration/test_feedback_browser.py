"""The web player's feedback panel in a real browser.

A talas-master serves the built player (web/dist) over a library with two
versions of one song ("take v1.mp3", "take v2.mp3", 20 s each). Headless
Chromium (browser/feedback.mjs, playwright-core driving Debian's
/usr/bin/chromium), at a desktop viewport and as a phone ('Pixel 5'),
opened with a user's token: posts a comment at a time and sees its marker
on the seek bar, clicks the marker and is sent back to that time, posts a
hostile body (HTML with script that would set window.__pwned, an RTL
override) that shows as typed and runs nothing, types a body with NUL and
sees it refused (400 nul_character, as documented: NUL is never stored);
then, while the track plays, another user comments through the API
(urllib, that user's token, when the driver asks on its stderr): the
marker and the text appear live without a reload, inert, then its edit
and its deletion, and the page's own comment is listed once (its POST
answer and its event merge); last it switches to the other version with
the position kept, and a comment posted on that version arrives live. The comments are then read back over HTTP. Screenshots
go to $TALAS_BUILDDIR/tests/artifacts/feedback/. TALAS_SKIP_BROWSER=1
skips. (Overlong UTF-8 cannot come from a page, whose strings are UTF-16:
test_comments.py refuses it at the API.)
"""

import json
import os
import shutil
import subprocess
import threading
import urllib.error
import urllib.request

import pytest

import auth_keys as ak
import talas_fixtures as tf
from test_browser import CHROMIUM, player  # noqa: F401  (fixture)
from test_web_player import web_dist

pytestmark = pytest.mark.skipif(os.environ.get("TALAS_SKIP_BROWSER") == "1",
                                reason="TALAS_SKIP_BROWSER=1: browser tests skipped")

ARTIFACTS = tf.BUILDDIR / "tests" / "artifacts" / "feedback"
HOSTILE = '<img src=x onerror="window.__pwned=1"><script>window.__pwned=2</script>\u202e'
LIVE = '<img src=x onerror="window.__pwned=3"><script>window.__pwned=4</script> live \u202eRTL\u202c, by another'
LIVE_EDITED = 'edited: <b onmouseover="window.__pwned=5">not bold</b> \u202edesrever'


def api(srv, method, path, token, doc=None):
    """One request as a real client would make it: urllib, a bearer token."""
    req = urllib.request.Request(srv.base_url + path, method=method,
                                 data=None if doc is None else json.dumps(doc).encode(),
                                 headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, json.loads(r.read() or b"null")
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"null")


class OtherUser:
    """Answers the driver's "ASK {json}" lines (on its stderr) by acting as
    another user through the API; one JSON line back on its stdin each."""

    def __init__(self, srv, proc, tracks, token):
        self.srv, self.proc, self.tracks, self.token = srv, proc, tracks, token
        self.done, self.stderr, self.errors = [], [], []
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def act(self, ask):
        if ask["action"] == "post":
            st, c = api(self.srv, "POST", f"/api/tracks/{self.tracks[ask.get('on', 'v1')]}/comments", self.token,
                        {"at_ms": ask["at_ms"], "body": LIVE})
        elif ask["action"] == "edit":
            st, c = api(self.srv, "PATCH", f"/api/comments/{ask['comment_id']}", self.token, {"body": LIVE_EDITED})
        else:
            st, c = api(self.srv, "DELETE", f"/api/comments/{ask['comment_id']}", self.token)
        self.done.append((ask["action"], st))
        if st not in (200, 201):
            self.errors.append(f"{ask}: {st} {c}")
        return c

    def run(self):
        for line in self.proc.stderr:
            if not line.startswith("ASK "):
                self.stderr.append(line)
                continue
            try:
                answer = self.act(json.loads(line[4:]))
            except Exception as e:  # noqa: BLE001  (told to the driver, which fails)
                self.errors.append(repr(e))
                answer = {"error": repr(e)}
            self.proc.stdin.write(json.dumps(answer) + "\n")
            self.proc.stdin.flush()


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
    ak.configure(srv, keys, f"http:\n  www_root: {json.dumps(str(dist))}\n", required=False)
    srv.start()
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
    live_at_s = {"desktop": 13, "mobile": 15}[mode]
    env = dict(os.environ, CHROMIUM=CHROMIUM, V1_TITLE="Take v1", V2_TITLE="Take v2", AT_S=str(at_s),
               HOSTILE=HOSTILE, LIVE_AT_S=str(live_at_s),
               USER_TOKEN=ak.pyjwt_token(fsrv.keys, "HS256", ak.claims(None, sub=user, ttl=600), kid="k2"))
    v1 = fsrv.track_by_title("Take v1")["id"]
    proc = subprocess.Popen(["node", str(script), fsrv.base_url, str(out), mode], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=str(script.parent), env=env)
    v2 = fsrv.track_by_title("Take v2")["id"]
    other = OtherUser(fsrv, proc, {"v1": v1, "v2": v2},
                      ak.pyjwt_token(fsrv.keys, "HS256", ak.claims(None, sub=f"reviewer-{mode}", ttl=600), kid="k2"))
    try:
        stdout = proc.stdout.read()
        proc.wait(timeout=300)
    except subprocess.TimeoutExpired:
        proc.kill()
        pytest.fail(f"feedback.mjs did not finish in 300 s\nstderr:\n{''.join(other.stderr)[-3000:]}")
    other.thread.join(10)
    stderr = "".join(other.stderr)
    (out / "feedback.json").write_text(stdout)
    try:
        summary = json.loads(stdout)
    except ValueError:
        pytest.fail(f"feedback.mjs exited {proc.returncode} without a summary\n{stdout[-3000:]}\n{stderr[-3000:]}")
    assert proc.returncode == 0 and summary["ok"], f"{summary.get('failure')}\n{json.dumps(summary)[:4000]}\n{stderr[-2000:]}"
    assert not other.errors, other.errors
    assert abs(summary["marker_seek"] - summary["posted"]["at_ms"] / 1000) < 0.3
    assert summary["hostile"]["text"] == HOSTILE and summary["hostile"]["pwned"] is None
    assert summary["hostile"]["children"] == 0 and summary["hostile"]["injected_elements"] == 0
    # NUL: refused with the server's words, nothing listed
    assert "NUL" in summary["nul"]["error"] and summary["nul"]["listed"] == 0, summary["nul"]
    # another user's comment arrived live while playing, as typed and inert,
    # then its edit and its deletion; ours is listed once
    live = summary["live"]
    assert other.done == [("post", 201), ("edit", 200), ("delete", 200), ("post", 201), ("delete", 200)], other.done
    assert live["text"] == LIVE and live["user"] == f"reviewer-{mode}" and live["at_ms"] == live_at_s * 1000
    assert live["playing"] and live["pwned"] is None and live["children"] == 0 and live["injected_elements"] == 0
    assert live["edited"] == LIVE_EDITED and live["deleted"] and live["listings_fetched"] == 0
    assert summary["own_listed"] == 1
    assert abs(summary["switched"]["time"] - 7) < 1
    assert summary["live_after_switch"]["track_id"] == v2
    assert not summary["page_errors"], summary["page_errors"]
    assert {os.path.basename(f) for f in summary["screenshots"]} >= {
        f"{mode}-{n}.png" for n in ("commented", "hostile", "live", "switched")}
    # what the page posted is stored as typed, by the token's user
    st, _, body = fsrv.get(f"/api/tracks/{v1}/comments")
    assert st == 200
    mine = [t for t in json.loads(body)["threads"] if t["user_id"] == user]
    assert HOSTILE in [t["body"] for t in mine]
    assert any(abs(t["at_ms"] - summary["posted"]["at_ms"]) == 0 for t in mine)
