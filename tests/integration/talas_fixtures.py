"""Harness for Talas's integration tests.

Starts the real talas-master from the build tree on a loopback port with a
config written into a temporary directory, generates audio libraries with
ffmpeg, and runs reference servers (nginx) for comparisons.  Everything here
is bounded in time: every socket and subprocess has a timeout, and every
process started is killed on teardown, whatever the test did.

Only Python's standard library plus pytest, and Debian's CLI tools.
"""

import atexit
import hashlib
import http.client
import json
import os
import random
import re
import shutil
import signal
import socket
import struct
import subprocess
import time
from pathlib import Path

import pytest

TESTS_DIR = Path(__file__).resolve().parent
REPO_ROOT = TESTS_DIR.parent.parent
BUILDDIR = Path(os.environ.get("TALAS_BUILDDIR") or REPO_ROOT)
SRCDIR = Path(os.environ.get("TALAS_SRCDIR") or REPO_ROOT)
TALAS_MASTER = BUILDDIR / "talas-master"
TALASCTL = BUILDDIR / "talasctl"

VERSION = "0.1.0"

# Processes still alive at interpreter exit are killed here, so that even a
# test killed half-way (or a fixture that raised) leaves nothing behind.
_live_servers = []


def _kill_all_at_exit():
    for srv in list(_live_servers):
        try:
            srv.kill()
        except Exception:
            pass


atexit.register(_kill_all_at_exit)


# ---------------------------------------------------------------- utilities

def require_tool(path, package):
    """Skip the calling test unless the executable PATH exists."""
    exe = shutil.which(path) if os.sep not in path else (path if os.access(path, os.X_OK) else None)
    if not exe:
        pytest.skip(f"{path} not found: install Debian package '{package}'")
    return exe


def require_talas():
    if not os.access(TALAS_MASTER, os.X_OK):
        pytest.fail(f"{TALAS_MASTER} is not built (set TALAS_BUILDDIR or run make)")


def free_port():
    """A TCP port that was free on 127.0.0.1 a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def run(argv, timeout=60, check=True, **kw):
    """subprocess.run with a timeout and captured text output."""
    cp = subprocess.run([str(a) for a in argv], capture_output=True, text=True,
                        timeout=timeout, **kw)
    if check and cp.returncode != 0:
        raise AssertionError(f"{argv} exited {cp.returncode}\nstdout:\n{cp.stdout}\n"
                             f"stderr:\n{cp.stderr}")
    return cp


def ffprobe_duration_ms(path):
    cp = run(["ffprobe", "-v", "error", "-show_entries", "format=duration",
              "-of", "default=nw=1:nk=1", path], timeout=30)
    return float(cp.stdout.strip()) * 1000.0


class Abort(Exception):
    """Raised by a wait_for predicate to stop waiting at once."""


def wait_for(predicate, timeout, interval=0.05, what="condition"):
    """Poll PREDICATE until it returns a truthy value; return that value.
    Exceptions other than Abort count as "not yet"."""
    deadline = time.monotonic() + timeout
    last_exc = None
    while time.monotonic() < deadline:
        try:
            v = predicate()
            if v:
                return v
        except Abort:
            raise
        except Exception as e:  # noqa: BLE001 - retried until the deadline
            last_exc = e
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}"
                         + (f" (last error: {last_exc!r})" if last_exc else ""))


def read_text(path, limit=20000):
    try:
        data = Path(path).read_bytes()
    except OSError:
        return ""
    return data[-limit:].decode("utf-8", "replace")


def http_request(host, port, method, path, headers=None, body=None, timeout=10):
    """One request on a fresh connection; returns (status, headers, body).

    headers is an http.client.HTTPMessage (case-insensitive get/get_all).
    Nothing is normalised: the header values go out exactly as given.
    """
    conn = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        conn.putrequest(method, path, skip_accept_encoding=True)
        for k, v in (headers or {}).items():
            conn.putheader(k, v)
        if body is not None:
            conn.putheader("Content-Length", str(len(body)))
        conn.endheaders(body)
        resp = conn.getresponse()
        data = resp.read()
        return resp.status, resp.headers, data
    finally:
        conn.close()


def raw_exchange(port, data, timeout=5, host="127.0.0.1", read_limit=1 << 20,
                 shutdown_write=False):
    """Send DATA on a raw socket and read the first response.

    Reads until one complete response (headers plus Content-Length bytes)
    has arrived, the peer closes, or TIMEOUT passes.  Returns the bytes
    received: b"" when the server just closed or reset the connection.
    """
    return raw_exchange_ex(port, data, timeout, host, read_limit, shutdown_write)[0]


def raw_exchange_ex(port, data, timeout=5, host="127.0.0.1", read_limit=1 << 20,
                    shutdown_write=False):
    """Like raw_exchange; returns (bytes, how) where how is "response" (a
    complete response arrived), "closed" (EOF or reset) or "timeout"."""
    out = b""
    how = "timeout"
    with socket.create_connection((host, port), timeout=timeout) as s:
        try:
            s.sendall(data)
            if shutdown_write:
                s.shutdown(socket.SHUT_WR)
        except OSError:
            pass
        deadline = time.monotonic() + timeout
        while len(out) < read_limit:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            s.settimeout(left)
            try:
                chunk = s.recv(65536)
            except socket.timeout:
                break
            except OSError:
                how = "closed"
                break
            if not chunk:
                how = "closed"
                break
            out += chunk
            if _response_complete(out):
                how = "response"
                break
    return out, how


def _response_complete(raw):
    head, sep, body = raw.partition(b"\r\n\r\n")
    if not sep:
        return False
    m = re.search(rb"(?im)^content-length:[ \t]*(\d+)[ \t]*$", head)
    if m:
        return len(body) >= int(m.group(1))
    return False


def parse_status_line(raw):
    """Status code of the first response in RAW bytes, or None."""
    if not raw.startswith(b"HTTP/"):
        return None
    try:
        return int(raw.split(b"\r\n", 1)[0].split(b" ")[1])
    except (IndexError, ValueError):
        return None


# ------------------------------------------------------------ audio fixtures

def _ffmpeg(args, timeout=60):
    run(["ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin", "-y"] + list(args),
        timeout=timeout)


def _sine(out, seconds, freq, codec_args, title=None, artist=None, album=None,
          extra=()):
    meta = []
    for k, v in (("title", title), ("artist", artist), ("album", album)):
        if v is not None:
            meta += ["-metadata", f"{k}={v}"]
    _ffmpeg(["-f", "lavfi", "-i", f"sine=frequency={freq}:duration={seconds}"]
            + list(codec_args) + meta + list(extra) + [str(out)])


# Titles and metadata of make_library(); tests look tracks up by title.
LIBRARY_TRACKS = {
    # name: (relative path, title, artist, album, codec, container, content type)
    "mp3": ("a_tone.mp3", "Sine MP3", "Talas Fixtures", "Test Tones",
            "mp3", "mp3", "audio/mpeg"),
    "flac": ("b_tone.flac", "Sine FLAC", "Talas Fixtures", "Test Tones",
             "flac", "flac", "audio/flac"),
    "wav": ("c_tone.wav", "Sine WAV", "Talas Fixtures", "Test Tones",
            "pcm_s16le", "wav", "audio/wav"),
    "ogg": ("d_tone.ogg", "Sine Vorbis", "Talas Fixtures", "Test Tones",
            "vorbis", "ogg", "audio/ogg"),
    "m4a": ("e_tone.m4a", "Sine AAC", "Talas Fixtures", "Test Tones",
            "aac", "mp4", "audio/mp4"),
    "unicode": ("Artiste é/Chanson ü.mp3", "Chanson ü", "Artiste é", "Album à",
                "mp3", "mp3", "audio/mpeg"),
}


def make_library(d):
    """Generate the standard test library in directory D.

    Returns {name: Path}; names are the keys of LIBRARY_TRACKS.  The MP3 is
    24 s of 128 kbit/s CBR (about 384 KB) so Range tests have room.
    """
    d = Path(d)
    d.mkdir(parents=True, exist_ok=True)
    out = {}
    codec = {
        "mp3": (24, 440, ["-c:a", "libmp3lame", "-b:a", "128k"]),
        "flac": (5, 523, ["-c:a", "flac"]),
        "wav": (3, 587, ["-c:a", "pcm_s16le"]),
        "ogg": (4, 659, ["-c:a", "libvorbis", "-q:a", "2"]),
        "m4a": (4, 698, ["-c:a", "aac", "-b:a", "96k"]),
        "unicode": (3, 784, ["-c:a", "libmp3lame", "-b:a", "128k"]),
    }
    for name, (rel, title, artist, album, *_rest) in LIBRARY_TRACKS.items():
        seconds, freq, args = codec[name]
        p = d / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        _sine(p, seconds, freq, args, title=title, artist=artist, album=album)
        out[name] = p
    return out


def make_track(path, title, artist="Talas Fixtures", album="Extra", seconds=3,
               freq=300):
    """One more small track (codec from PATH's extension: mp3, flac, ogg)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    args = {".mp3": ["-c:a", "libmp3lame", "-b:a", "128k"],
            ".flac": ["-c:a", "flac"],
            ".ogg": ["-c:a", "libvorbis"]}[path.suffix]
    _sine(path, seconds, freq, args, title=title, artist=artist, album=album)
    return path


def _id3v1(title, artist, album):
    def field(s, n):
        return s.encode("latin-1")[:n].ljust(n, b"\0")
    tag = (b"TAG" + field(title, 30) + field(artist, 30) + field(album, 30)
           + b"2024" + b"\0" * 28 + b"\0\x01" + b"\xff")
    assert len(tag) == 128
    return tag


def _id3v23_latin1(frames):
    """An ID3v2.3 tag whose text frames use encoding 0 (ISO-8859-1)."""
    body = b""
    for fid, text in frames:
        data = b"\x00" + text.encode("latin-1")
        body += fid.encode("ascii") + struct.pack(">I", len(data)) + b"\0\0" + data
    n = len(body)
    size = bytes([(n >> 21) & 0x7F, (n >> 14) & 0x7F, (n >> 7) & 0x7F, n & 0x7F])
    return b"ID3\x03\x00\x00" + size + body


# Bad files of make_bad_files(): name -> relative path.  "latin1_v1" and
# "latin1_v2" are valid audio (they must be listed, with UTF-8 titles); the
# others are not playable and must show up in `talasctl tracks --errors`.
BAD_FILES = {
    "corrupt": "corrupt.flac",
    "empty": "empty.mp3",
    "text": "notes.mp3",
    "truncated": "truncated.flac",
}
LATIN1_FILES = {
    # name: (relative path, UTF-8 title the catalog must show, artist)
    "latin1_v1": ("latin1_v1.mp3", "Café", "Renée"),
    "latin1_v2": ("latin1_v2.mp3", "Crème brûlée", "Renée"),
}


def make_bad_files(d):
    """Write unplayable and awkwardly tagged files into D; returns {name: Path}."""
    d = Path(d)
    d.mkdir(parents=True, exist_ok=True)
    out = {}
    rnd = random.Random(20240607)
    p = d / BAD_FILES["corrupt"]
    p.write_bytes(bytes(rnd.getrandbits(8) for _ in range(64 * 1024)))
    out["corrupt"] = p
    p = d / BAD_FILES["empty"]
    p.write_bytes(b"")
    out["empty"] = p
    p = d / BAD_FILES["text"]
    p.write_text("These are liner notes, not an MP3 file.\n" * 30)
    out["text"] = p
    # A FLAC cut inside its STREAMINFO block.  A FLAC cut in the middle of
    # its audio frames is still playable up to the cut (ffprobe accepts it),
    # so that would not be a fair "bad file".
    tmp = d / ".full.flac.tmp"
    _sine(tmp, 3, 330, ["-c:a", "flac", "-f", "flac"])
    p = d / BAD_FILES["truncated"]
    p.write_bytes(tmp.read_bytes()[:30])
    tmp.unlink()
    out["truncated"] = p

    # Tagless MP3 (no ID3v2, no Xing), then Latin-1 tags added by hand.
    tmp = d / ".notag.mp3.tmp"
    _sine(tmp, 3, 349, ["-c:a", "libmp3lame", "-b:a", "128k", "-map_metadata", "-1",
                        "-id3v2_version", "0", "-write_xing", "0", "-f", "mp3"])
    audio = tmp.read_bytes()
    tmp.unlink()
    rel, title, artist = LATIN1_FILES["latin1_v1"]
    p = d / rel
    p.write_bytes(audio + _id3v1(title, artist, "Été"))
    out["latin1_v1"] = p
    rel, title, artist = LATIN1_FILES["latin1_v2"]
    p = d / rel
    p.write_bytes(_id3v23_latin1([("TIT2", title), ("TPE1", artist), ("TALB", "Été")])
                  + audio)
    out["latin1_v2"] = p
    return out


def make_big_wav(path, seconds=300):
    """A large WAV (44.1 kHz stereo s16: ~10.6 MB/min) for long downloads."""
    _ffmpeg(["-f", "lavfi", "-i", f"sine=frequency=220:duration={seconds}",
             "-ac", "2", "-ar", "44100", "-c:a", "pcm_s16le",
             "-metadata", "title=Big WAV", str(path)], timeout=120)
    return Path(path)


def make_tls_cert(d):
    """Self-signed EC certificate for 127.0.0.1; returns (cert, key)."""
    d = Path(d)
    cert, key = d / "cert.pem", d / "key.pem"
    run(["openssl", "req", "-x509", "-newkey", "ec",
         "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
         "-keyout", key, "-out", cert, "-days", "2", "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1"], timeout=30)
    return cert, key


# --------------------------------------------------------------- processes

def _comm(pid):
    """The process name of PID (/proc/PID/comm), or None when it is gone."""
    try:
        with open(f"/proc/{pid}/comm") as f:
            return f.read().strip()
    except OSError:
        return None


def _children(pid):
    """Direct children of PID (from /proc), zombies excluded."""
    kids = set()
    try:
        for tid in os.listdir(f"/proc/{pid}/task"):
            try:
                with open(f"/proc/{pid}/task/{tid}/children") as f:
                    kids.update(int(x) for x in f.read().split())
            except OSError:
                pass
    except OSError:
        return []
    alive = []
    for k in sorted(kids):
        if _proc_state(k) not in (None, "Z", "X"):
            alive.append(k)
    return alive


def _proc_state(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            s = f.read()
        return s[s.rindex(")") + 2]
    except (OSError, ValueError, IndexError):
        return None


def pid_alive(pid):
    return _proc_state(pid) not in (None, "Z", "X")


def process_tree(pid):
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(_children(p))
    return out


def _q(value):
    """VALUE as a YAML double-quoted scalar (JSON strings are valid YAML)."""
    return json.dumps(str(value), ensure_ascii=False)


class TalasServer:
    """A talas-master running in the foreground with its own config.

    srv = TalasServer(tmp_path, [libdir]); srv.start(); srv.get("/api/health")
    Always call stop() or kill() (the fixtures do, even when a test fails).
    """

    def __init__(self, workdir, library_paths, workers=2, extra_yaml="", tls=None,
                 access_format="json", port=None, shutdown_timeout="10s",
                 log_level="info"):
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.library_paths = [Path(p) for p in library_paths]
        self.workers = workers
        self.extra_yaml = extra_yaml
        self.tls = tls                      # (cert, key) or None
        self.access_format = access_format
        self.shutdown_timeout = shutdown_timeout
        self.log_level = log_level
        self.port = port or free_port()
        self.tls_port = free_port() if tls else None
        self.host = "127.0.0.1"
        self.base_url = f"http://{self.host}:{self.port}"
        self.tls_base_url = f"https://{self.host}:{self.tls_port}" if tls else None
        self.config_path = self.workdir / "talas.yaml"
        self.pid_file = self.workdir / "talas.pid"
        self.storage_path = self.workdir / "talas.lmdb"
        self.error_log = self.workdir / "error.log"
        self.access_log = self.workdir / "access.log"
        self.stdout_path = self.workdir / "master.stdout"
        self.stderr_path = self.workdir / "master.stderr"
        self.proc = None
        self.master_pid = None
        self.exit_code = None
        self._known_pids = set()
        self.write_config()

    # -- config
    def config_text(self, workers=None, library_paths=None, extra_yaml=None,
                    access_format=None):
        workers = self.workers if workers is None else workers
        libs = self.library_paths if library_paths is None else [Path(p) for p in library_paths]
        extra = self.extra_yaml if extra_yaml is None else extra_yaml
        fmt = access_format or self.access_format
        lines = ["listen:", "  - host: 127.0.0.1", f"    port: {self.port}"]
        if self.tls:
            cert, key = self.tls
            lines += ["  - host: 127.0.0.1", f"    port: {self.tls_port}",
                      f"    tls: {{certificate: {_q(cert)}, key: {_q(key)}}}"]
        lines += [
            f"workers: {workers}",
            f"pid_file: {_q(self.pid_file)}",
            f"shutdown_timeout: {self.shutdown_timeout}",
            "library:",
            "  paths: [" + ", ".join(_q(p) for p in libs) + "]",
            "storage:",
            f"  path: {_q(self.storage_path)}",
            "  map_size: 256MiB",
            "auth:",
            "  required: false",
            "log:",
            f"  error: {_q(self.error_log)}",
            f"  access: {_q(self.access_log)}",
            f"  access_format: {fmt}",
            f"  level: {self.log_level}",
        ]
        text = "\n".join(lines) + "\n"
        if extra:
            text += extra.rstrip("\n") + "\n"
        return text

    def write_config(self, text=None, **kw):
        """Write the config file: TEXT verbatim, or generated from KW
        (workers, library_paths, extra_yaml, access_format).  Generated
        values become the new defaults."""
        if text is None:
            for k in ("workers", "extra_yaml", "access_format"):
                if kw.get(k) is not None:
                    setattr(self, k, kw[k])
            if kw.get("library_paths") is not None:
                self.library_paths = [Path(p) for p in kw["library_paths"]]
            text = self.config_text()
        tmp = self.config_path.with_suffix(".tmp")
        tmp.write_text(text)
        os.replace(tmp, self.config_path)
        return self.config_path

    # -- lifecycle
    def start(self, wait_scan=True, timeout=20):
        require_talas()
        out = open(self.stdout_path, "ab")
        err = open(self.stderr_path, "ab")
        try:
            self.proc = subprocess.Popen(
                [str(TALAS_MASTER), "-c", str(self.config_path)],
                stdin=subprocess.DEVNULL, stdout=out, stderr=err,
                cwd=str(self.workdir), start_new_session=True)
        finally:
            out.close()
            err.close()
        self.master_pid = self.proc.pid
        self.exit_code = None
        _live_servers.append(self)
        try:
            wait_for(self._health_ok, timeout, interval=0.05,
                     what=f"talas-master on port {self.port} to answer /api/health")
            if wait_scan:
                self.wait_scan(timeout=60)
        except BaseException as e:
            diag = self.diagnostics()
            self.kill()
            raise AssertionError(f"talas-master failed to start: {e}\n{diag}") from None
        return self

    def _health_ok(self):
        if self.proc.poll() is not None:
            raise Abort(f"talas-master exited with status {self.proc.returncode}")
        st, _, body = self.get("/api/health", timeout=2)
        return st == 200 and json.loads(body).get("status") == "ok"

    def diagnostics(self):
        return (f"--- config {self.config_path}:\n{read_text(self.config_path)}"
                f"--- error log {self.error_log}:\n{read_text(self.error_log)}"
                f"--- stderr:\n{read_text(self.stderr_path)}"
                f"--- stdout:\n{read_text(self.stdout_path)}")

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def send_signal(self, sig):
        os.kill(self.master_pid, sig)

    def reload(self):
        self.send_signal(signal.SIGHUP)

    def wait_exit(self, timeout):
        try:
            self.exit_code = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"talas-master (pid {self.master_pid}) did not exit "
                                 f"within {timeout}s\n{self.diagnostics()}") from None
        return self.exit_code

    def stop(self, sig=signal.SIGTERM, timeout=15):
        """Signal the master and wait for it to exit; returns its exit code.
        Kills the whole tree if it does not exit in time (and then raises)."""
        if self.proc is None:
            return None
        if self.proc.poll() is not None:
            self.exit_code = self.proc.returncode
            self.kill()
            return self.exit_code
        try:
            self._known_pids.update(process_tree(self.master_pid))
            os.kill(self.master_pid, sig)
            return self.wait_exit(timeout)
        finally:
            self.kill()

    def kill(self):
        """SIGKILL the master, its process group and every descendant seen."""
        if self.proc is None:
            return
        pids = set(self._known_pids)
        if self.proc.poll() is None:
            pids.update(process_tree(self.master_pid))
        try:
            os.killpg(self.master_pid, signal.SIGKILL)
        except OSError:
            pass
        for p in pids:
            if p == os.getpid():
                continue
            try:
                # Only kill what is still one of ours: same session as the master.
                if os.getsid(p) == self.master_pid:
                    os.kill(p, signal.SIGKILL)
            except OSError:
                pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass
        if self.exit_code is None:
            self.exit_code = self.proc.returncode
        if self in _live_servers:
            _live_servers.remove(self)

    def worker_pids(self):
        """Live HTTP workers of the master, sorted: children whose process
        name (set by talas-master) is talas-worker; the library scanner is
        named talas-scanner and is left out."""
        pids = [p for p in _children(self.master_pid) if _comm(p) == "talas-worker"]
        self._known_pids.update(pids)
        return pids

    def wait_worker_pids(self, n, timeout=10, exclude=()):
        """Wait until exactly N live children exist, none of them in EXCLUDE."""
        def ok():
            p = self.worker_pids()
            return p if len(p) == n and not (set(p) & set(exclude)) else None
        return wait_for(ok, timeout, what=f"{n} worker processes")

    # -- HTTP
    def get(self, path, headers=None, method="GET", timeout=10, body=None):
        """One request on a fresh connection: (status, headers, body)."""
        return http_request(self.host, self.port, method, path, headers=headers,
                            body=body, timeout=timeout)

    def get_json(self, path, headers=None, expect=200):
        st, hdrs, body = self.get(path, headers=headers)
        assert st == expect, f"GET {path}: status {st}, body {body[:500]!r}"
        return json.loads(body)

    def health(self):
        return self.get_json("/api/health")

    def wait_scan(self, timeout=60, after=None):
        """Wait until no scan runs and one has finished (finished_at > 0, or
        > AFTER when given).  Returns the health document."""
        def done():
            h = self.health()
            scan = h.get("scan") or {}
            fin = scan.get("finished_at") or 0
            if scan.get("running") is False and fin > 0 and (after is None or fin > after):
                return h
            return None
        return wait_for(done, timeout, interval=0.1, what="library scan to finish")

    def tracks(self, q=None):
        path = "/api/tracks?limit=1000"
        if q is not None:
            from urllib.parse import quote
            path += "&q=" + quote(q)
        return self.get_json(path)["tracks"]

    def track_by_title(self, title):
        """The track whose title is TITLE, or None."""
        for t in self.tracks():
            if t.get("title") == title:
                return t
        return None

    def talasctl(self, *args, timeout=60, check=False):
        if not os.access(TALASCTL, os.X_OK):
            pytest.fail(f"{TALASCTL} is not built")
        return run([TALASCTL, "-c", self.config_path] + list(args), timeout=timeout,
                   check=check)


# ------------------------------------------------------ reference servers

class NginxServer:
    """Debian's nginx serving ROOT_DIR statically on 127.0.0.1:PORT."""

    NGINX = "/usr/sbin/nginx"

    def __init__(self, workdir, root_dir, port=None):
        require_tool(self.NGINX, "nginx")
        self.dir = Path(workdir)
        self.dir.mkdir(parents=True, exist_ok=True)
        (self.dir / "logs").mkdir(exist_ok=True)
        self.root = Path(root_dir)
        self.port = port or free_port()
        self.proc = None
        conf = f"""
user root;
worker_processes 1;
pid {self.dir}/nginx.pid;
error_log {self.dir}/logs/error.log info;
events {{ worker_connections 256; }}
http {{
    types {{ audio/mpeg mp3; audio/flac flac; audio/wav wav; audio/ogg ogg; audio/mp4 m4a; }}
    default_type application/octet-stream;
    access_log {self.dir}/logs/access.log;
    client_body_temp_path {self.dir}/client_body;
    proxy_temp_path {self.dir}/proxy;
    fastcgi_temp_path {self.dir}/fastcgi;
    uwsgi_temp_path {self.dir}/uwsgi;
    scgi_temp_path {self.dir}/scgi;
    sendfile off;
    etag on;
    server {{
        listen 127.0.0.1:{self.port};
        root {self.root};
    }}
}}
"""
        self.conf = self.dir / "nginx.conf"
        self.conf.write_text(conf)

    def start(self):
        err = open(self.dir / "stderr", "ab")
        self.proc = subprocess.Popen(
            [self.NGINX, "-p", str(self.dir), "-c", str(self.conf),
             "-g", "daemon off; master_process on;"],
            stdin=subprocess.DEVNULL, stdout=err, stderr=err, start_new_session=True)
        err.close()

        def up():
            if self.proc.poll() is not None:
                raise Abort("nginx exited: "
                                     + read_text(self.dir / "stderr")
                                     + read_text(self.dir / "logs/error.log"))
            with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                return True
        try:
            wait_for(up, 10, what="nginx to listen")
        except BaseException:
            self.stop()
            raise
        return self

    def get(self, path, headers=None, method="GET", timeout=10):
        return http_request("127.0.0.1", self.port, method, path, headers=headers,
                            timeout=timeout)

    def stop(self):
        if self.proc is None:
            return
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except OSError:
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass
