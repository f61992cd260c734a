"""Real Redis and PostgreSQL servers for the cluster-mode tests.

Each is started by the test itself in a temp dir, on a unix socket in that
dir and on no TCP port, and stopped at the end: no service of the machine
is used. PostgreSQL refuses to run as root, so its dir belongs to the
`postgres` user and its programs run through runuser(1).

RedisServer(dir)         redis-server 7 with its log in DIR and its unix
                         socket in a short temp dir; .address is what
                         cluster.redis takes ("unix:/...")
PostgresServer(dir)      a PostgreSQL 15 cluster made by initdb in DIR;
                         .create_database(name) gives a libpq connection
                         string for cluster.postgres
cluster_yaml(...)        the cluster section of a node's talas.yaml

And what the cluster tests share about their nodes and clients:

with_backend_key(srv, key)   SRV's config text with a backend key file
start_node(...)              a node whose talasctl migrates the database,
                             then started
two_nodes(...)               nodes A and B as start_node makes them, once
                             every worker of both says ok
migrate_and_start(a, b)      an empty database migrated through A's
                             talasctl, then A and B started
all_workers_say(srv, status) /api/health answered STATUS from every worker
run(coro), command(ws, cmd)  a client coroutine with a deadline; a
                             WebSocket command's CommandResponse
"""

import asyncio
import json
import os
import pwd
import re
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

import talas_fixtures as tf

REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"
REDIS_CLI = shutil.which("redis-cli") or "/usr/bin/redis-cli"
PG_BIN = Path("/usr/lib/postgresql/15/bin")


def require_engines():
    """Skip the calling test when redis-server or PostgreSQL 15 is not
    installed: local mode needs neither, and scripts/check runs the suite
    once with both hidden (tests/tools/without-engines) to show it. With
    TALAS_REQUIRE_ENGINES=1 (the sanitizer run, where the cluster tests
    must run) a missing server fails the test instead."""
    if os.environ.get("TALAS_REQUIRE_ENGINES") == "1":
        for path, package in ((REDIS_SERVER, "redis-server"), (str(PG_BIN / "initdb"), "postgresql-15")):
            if not os.access(path, os.X_OK):
                pytest.fail(f"{path} not found and TALAS_REQUIRE_ENGINES=1: install Debian package '{package}'")
    tf.require_tool(REDIS_SERVER, "redis-server")
    tf.require_tool(str(PG_BIN / "initdb"), "postgresql-15")


class RedisServer:
    def __init__(self, workdir):
        self.dir = Path(workdir)
        self.dir.mkdir(parents=True, exist_ok=True)
        # a unix socket's path has at most 107 bytes: not under tmp_path
        self.socket = Path(tempfile.mkdtemp(prefix="talas-redis-")) / "redis.sock"
        self.proc = None

    @property
    def address(self):
        return f"unix:{self.socket}"

    def start(self, timeout=10):
        if self.socket.exists():
            self.socket.unlink()
        self.log = open(self.dir / "redis.log", "ab")
        self.proc = subprocess.Popen(
            [REDIS_SERVER, "--port", "0", "--unixsocket", str(self.socket), "--unixsocketperm", "700",
             "--save", "", "--appendonly", "no", "--dir", str(self.dir), "--daemonize", "no"],
            stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True)
        tf.wait_for(lambda: self.socket.exists() and self.cli("PING").strip() == "PONG", timeout,
                    what="redis-server answering PING")
        return self

    def cli(self, *args, check=False):
        cp = subprocess.run([REDIS_CLI, "-s", str(self.socket), *args], capture_output=True, text=True,
                            timeout=10)
        if check and cp.returncode != 0:
            raise AssertionError(f"redis-cli {args}: {cp.stderr}")
        return cp.stdout

    def kill(self):
        """kill -9, as a crash: nothing is saved."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        self.proc = None

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self.proc = None


def _postgres_ids():
    pw = pwd.getpwnam("postgres")
    return pw.pw_uid, pw.pw_gid


class PostgresServer:
    """A PostgreSQL cluster of its own. DIR is made under /tmp (not under
    pytest's tmp_path, whose parents the postgres user cannot enter)."""

    def __init__(self):
        self.dir = Path(tempfile.mkdtemp(prefix="talas-pg-"))
        uid, gid = _postgres_ids()
        os.chown(self.dir, uid, gid)
        os.chmod(self.dir, 0o755)
        self.data = self.dir / "data"
        self.started = False
        self._pg(["initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8",
                  "--locale=C.UTF-8"], timeout=120)

    def _pg(self, argv, timeout=60, check=True, **kw):
        cmd = ["runuser", "-u", "postgres", "--", str(PG_BIN / argv[0]), *argv[1:]]
        cp = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=self.dir, **kw)
        if check and cp.returncode != 0:
            raise AssertionError(f"{' '.join(argv)} failed ({cp.returncode}):\n{cp.stdout}\n{cp.stderr}")
        return cp

    def start(self):
        self._pg(["pg_ctl", "-D", str(self.data), "-l", str(self.dir / "postgres.log"), "-w", "-t", "60",
                  "-o", f"-k {self.dir} -c listen_addresses='' -c fsync=off", "start"], timeout=90)
        self.started = True
        return self

    def stop(self, mode="fast"):
        if self.started:
            self._pg(["pg_ctl", "-D", str(self.data), "-m", mode, "-w", "-t", "60", "stop"], timeout=90,
                     check=False)
            self.started = False

    def destroy(self):
        self.stop("immediate")
        shutil.rmtree(self.dir, ignore_errors=True)

    def conninfo(self, dbname):
        return f"host={self.dir} dbname={dbname} user=postgres"

    def create_database(self, name):
        self._pg(["createdb", "-h", str(self.dir), "-U", "postgres", name])
        return self.conninfo(name)

    def psql(self, dbname, sql):
        """Runs SQL in DBNAME; returns its rows as lists of strings."""
        cp = self._pg(["psql", "-h", str(self.dir), "-U", "postgres", "-d", dbname, "-X", "-A", "-t",
                       "-F", "\t", "-v", "ON_ERROR_STOP=1", "-c", sql])
        return [line.split("\t") for line in cp.stdout.splitlines() if line]


def cluster_yaml(node_name, redis, postgres):
    """The cluster section of a node's configuration."""
    return (f"cluster:\n"
            f"  node_name: {node_name}\n"
            f"  redis: \"{redis}\"\n"
            f"  postgres: \"{postgres}\"\n")



# ------------------------------------------------- nodes and their clients

def with_backend_key(srv, key):
    """SRV's configuration text, its auth section naming a file (in SRV's
    workdir) that holds KEY as the backend key."""
    path = srv.workdir / "backend.key"
    path.write_text(key + "\n")
    return srv.config_text().replace(
        "auth:\n  required: false\n",
        f"auth:\n  required: false\n  backend_key_file: {json.dumps(str(path))}\n")


def start_node(make, lib, name, redis, pg, backend_key, extra=""):
    """Node NAME (made by MAKE, conftest's talas_server; two workers) over
    LIB, with BACKEND_KEY and the EXTRA yaml, in the cluster of REDIS (a
    RedisServer) and PG (pg_database's (dbname, conninfo)). Its talasctl
    migrates the database (a no-op when a node did already), then it starts;
    .ids maps track titles to ids."""
    srv = make([lib], start=False, name=name, workers=2)
    text = with_backend_key(srv, backend_key) + extra + cluster_yaml(name, redis.address, pg[1])
    srv.write_config(text=text)
    r = srv.talasctl("db", "migrate")
    assert r.returncode == 0, (r.stdout, r.stderr)
    srv.start(wait_scan=True)
    srv.ids = {t["title"]: t["id"] for t in srv.tracks()}
    return srv


def two_nodes(make, lib, redis, pg, backend_key, extra=""):
    """Nodes node-a and node-b as start_node makes them, returned once every
    worker of both says ok in /api/health (connected to the engines)."""
    a = start_node(make, lib, "node-a", redis, pg, backend_key, extra)
    b = start_node(make, lib, "node-b", redis, pg, backend_key, extra)
    for srv in (a, b):
        tf.wait_for(lambda: all_workers_say(srv, "ok"), 10, what=f"{srv.workdir.name}: redis ok on every worker")
    return a, b


def schema_version():
    """This build's PostgreSQL schema version, as src/store/pg_schema.h sets it."""
    text = (tf.SRCDIR / "src" / "store" / "pg_schema.h").read_text()
    return int(re.search(r"#define TALAS_PG_SCHEMA_VERSION (\d+)", text).group(1))


def migrate_and_start(a, b):
    """Migrates the nodes' empty database through A's talasctl to this
    build's schema, then starts A and B."""
    r = a.talasctl("db", "migrate")
    assert r.returncode == 0 and f"schema version {schema_version()} (was 0)" in r.stdout, (r.stdout, r.stderr)
    a.start()
    b.start()
    for srv in (a, b):
        tf.wait_for(lambda: engines_ready(srv), 10, what=f"{srv.workdir.name}: every worker on Redis and PostgreSQL")


def worker_healths(srv):
    """/api/health of every worker (asked until each pid answered, at most
    40 times), or None when some worker was not reached."""
    seen = {}
    for _ in range(40):
        h = srv.health()
        seen[h["pid"]] = h
        if len(seen) == srv.workers:
            return list(seen.values())
    return None


def engines_ready(srv):
    """True once every worker's /api/health says it reaches Redis and the
    record store (commands sent before that fail as unavailable)."""
    hs = worker_healths(srv)
    return hs is not None and all(
        h["status"] == "ok" and h.get("postgres", {"status": "ok"})["status"] == "ok" for h in hs)


def all_workers_say(srv, status):
    """True once /api/health answered STATUS from every worker."""
    hs = worker_healths(srv)
    return hs is not None and all(h["status"] == status for h in hs)


def run(coro, timeout=120):
    return asyncio.run(asyncio.wait_for(coro, timeout))


async def command(ws, cmd, timeout=15):
    """Send CMD (with its command_id); its CommandResponse (events before
    it are dropped)."""
    await ws.send(json.dumps(cmd))
    deadline = time.monotonic() + timeout
    while True:
        m = json.loads(await asyncio.wait_for(ws.recv(), max(0.1, deadline - time.monotonic())))
        if m.get("event") == "CommandResponse" and m["command_id"] == cmd["command_id"]:
            return m
