"""Shared fixtures for Talas's integration tests.

library         the generated test library (once per session): {name: Path}
server          one talas-master (2 workers) over that library, scanned,
                shared by the whole session; tests must not stop or reload it
talas_server    a factory for tests that need their own server (supervision,
                reloads, bad input); every server it made is killed at the
                end of the test, pass or fail
redis_server    a redis-server of the test's own, on a unix socket (cluster mode)
postgres        a PostgreSQL 15 cluster of the session's own (initdb as the
                postgres user, unix socket only)
pg_database     a fresh database in it for one test: its libpq connection string
"""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

import talas_fixtures as tf  # noqa: E402
import cluster_fixtures as cf  # noqa: E402


# Servers a test used, so that a failure report can show their error logs.
_servers_of_item = {}


@pytest.fixture(scope="session")
def library(tmp_path_factory):
    return tf.make_library(tmp_path_factory.mktemp("library"))


@pytest.fixture(scope="session")
def library_dir(library):
    return library["mp3"].parent


@pytest.fixture(scope="session")
def server(tmp_path_factory, library_dir):
    srv = tf.TalasServer(tmp_path_factory.mktemp("server"), [library_dir], workers=2)
    srv.start(wait_scan=True)
    try:
        yield srv
    finally:
        srv.kill()


@pytest.fixture
def talas_server(request, tmp_path):
    """Factory: talas_server(library_paths, start=True, **TalasServer kwargs)."""
    made = []
    _servers_of_item[request.node.nodeid] = made

    def make(library_paths, start=True, wait_scan=True, name=None, **kw):
        workdir = tmp_path / (name or f"talas{len(made)}")
        srv = tf.TalasServer(workdir, library_paths, **kw)
        made.append(srv)
        if start:
            srv.start(wait_scan=wait_scan)
        return srv

    try:
        yield make
    finally:
        for srv in made:
            srv.kill()


@pytest.fixture
def redis_server(tmp_path):
    cf.require_engines()
    srv = cf.RedisServer(tmp_path / "redis").start()
    try:
        yield srv
    finally:
        srv.kill()


@pytest.fixture(scope="session")
def postgres():
    cf.require_engines()
    srv = cf.PostgresServer().start()
    try:
        yield srv
    finally:
        srv.destroy()


_databases = iter(range(1, 1 << 30))


@pytest.fixture
def pg_database(postgres):
    name = f"talas_{next(_databases)}"
    return name, postgres.create_database(name)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if report.failed and report.when in ("setup", "call"):
        servers = list(_servers_of_item.get(item.nodeid, []))
        # Module- and session-scoped servers the test received as fixtures.
        for v in getattr(item, "funcargs", {}).values():
            if isinstance(v, tf.TalasServer) and v not in servers:
                servers.append(v)
        for srv in servers:
            report.sections.append((f"talas {srv.workdir}", srv.diagnostics()))
    if report.when == "teardown":
        _servers_of_item.pop(item.nodeid, None)
