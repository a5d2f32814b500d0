"""The start-up warm-up (ui.serve, ui.warmup): a real `python -m ui.serve` on 127.0.0.1
opens the default pages headless before it says it is ready, and the image's readiness
probe waits for exactly that.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
import yaml

from ui.serve import app_url
from ui.user_sessions import free_port, serve
from ui.warmup import DEFAULT_PAGES, Visit, report, visit, wait_healthy, warm
from ui.warmup import main as warmup_main

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    "args,url",
    [
        ([], "http://127.0.0.1:8501"),
        (["--server.address=0.0.0.0", "--server.port=9000"], "http://127.0.0.1:9000"),
        (["--server.port", "8600", "--server.address", "10.1.2.3"], "http://10.1.2.3:8600"),
        (["--server.baseUrlPath=/dash/"], "http://127.0.0.1:8501/dash"),
        (["--server.address=::1"], "http://[::1]:8501"),
    ],
)
def test_app_url_follows_the_streamlit_options(args, url):
    assert app_url(args) == url


def test_a_bad_address_is_refused_by_name():
    with pytest.raises(ValueError, match="ftp://x"):
        warm("ftp://x", wait=0.1)
    visit_ = visit("not a url", "home", timeout=1)
    assert visit_.error and "not a url" in visit_.error


@pytest.mark.parametrize(
    "url,fragment",
    [
        ("http://127.0.0.1:abc", "Port could not be cast"),
        ("http://127.0.0.1:99999", "out of range"),
        ("http://[::1", "Invalid IPv6"),
        ("http://:8501", "got 'http://:8501'"),
        ("", "got ''"),
        ("http://" + "x" * 5000, "(5,007 characters)"),  # a pasted file: named, not echoed
    ],
)
def test_a_malformed_address_is_one_line_that_names_it(capsys, url, fragment):
    assert warmup_main(["--url", url, "--wait", "0.5"]) == 1
    err = capsys.readouterr().err
    assert fragment in err and "Traceback" not in err and len(err) < 400, err


@pytest.mark.parametrize("wait", ["nan", "inf", "-1", "1e308", "soon"])
def test_a_wait_that_is_not_finite_seconds_is_refused(capsys, wait):
    with pytest.raises(SystemExit) as stop:
        warmup_main(["--wait", wait])
    assert stop.value.code == 2
    assert "--wait must be" in capsys.readouterr().err
    with pytest.raises(ValueError, match="finite seconds"):
        wait_healthy("http://127.0.0.1:8501", float(wait) if wait != "soon" else -1.0)


def test_nothing_listening_is_a_bounded_wait_and_a_failed_visit():
    url = f"http://127.0.0.1:{free_port()}"
    started = time.monotonic()
    with pytest.raises(TimeoutError, match="did not answer its health check in 1 s"):
        wait_healthy(url, 1.0)
    assert time.monotonic() - started < 5
    failed = visit(url, "home", timeout=5)
    assert failed.error is not None and failed.page == "home"


def test_a_pasted_page_list_is_reported_by_its_start_and_length(capsys):
    url = f"http://127.0.0.1:{free_port()}"
    page = "risk?risk_tab=" + "x" * 5000
    report([visit(url, page, timeout=5), Visit("universe?uni_tab=Sector+rotation", 1.5)])
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 2 and len(lines[0]) < 400 and "(5,014 characters)" in lines[0]
    assert lines[1] == "warm-up: universe?uni_tab=Sector+rotation ready in 1.5 s"


def test_a_server_that_accepts_and_says_nothing_times_out():
    with socket.socket() as sock:  # accepts the TCP connection, never answers
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        url = f"http://127.0.0.1:{sock.getsockname()[1]}"
        started = time.monotonic()
        stalled = visit(url, "home", timeout=3)
    assert stalled.error is not None
    assert time.monotonic() - started < 20  # the WebSocket handshake's own deadline


def _probe(port: int, ready: Path) -> int:
    """The Kubernetes readiness probe of deploy/k8s/app.yaml, run here against ``port``."""
    manifests = list(yaml.safe_load_all((ROOT / "deploy/k8s/app.yaml").read_text()))
    (deployment,) = [d for d in manifests if d and d["kind"] == "Deployment"]
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    command = [
        c.replace(":8501/", f":{port}/") for c in container["readinessProbe"]["exec"]["command"]
    ]
    command[0] = sys.executable
    env = {**os.environ, "MLTRAINER_READY_FILE": str(ready)}
    return subprocess.run(command, env=env, timeout=30).returncode


def test_ui_serve_warms_the_pages_then_says_ready(shared_data_dir, tmp_path):
    env = {
        "MLTRAINER_CACHE_DIR": str(tmp_path / "cache"),
        "MLTRAINER_AUDIT_DIR": str(tmp_path / "audit"),
        "MLTRAINER_OFFLINE": "1",
    }
    ready = tmp_path / "ready"
    with serve(tmp_path, env=env, warm=True) as (url, proc):
        # serve(warm=True) returned: ui.serve wrote the ready file after the warm-up
        assert ready.read_text() == "warm\n"
        log = (tmp_path / "streamlit.log").read_text()
        for page in DEFAULT_PAGES:
            assert re.search(rf"warm-up: {re.escape(page)} ready in \d+\.\d s", log), (
                page,
                log[-2000:],
            )
        port = int(url.rsplit(":", 1)[1])
        assert _probe(port, ready) == 0
        assert _probe(port, tmp_path / "absent") == 1  # healthy but not warm: not ready

        # the shared work is done: a new session's Home is a warm view now
        again = visit(url, "home", timeout=120)
        assert again.error is None
        first = float(re.search(r"warm-up: home ready in (\d+\.\d) s", log).group(1))
        assert again.seconds < first, (again.seconds, first)

        lost = visit(url, "no_such_page", timeout=60)
        assert lost.error is not None and "no_such_page" in lost.error

        server = psutil.Process(proc.pid).children()
        assert [p.cmdline()[2:4] for p in server] == [["streamlit", "run"]]
        proc.send_signal(signal.SIGTERM)  # passed on: the server stops, so does ui.serve
        assert proc.wait(timeout=30) == 0
        assert not psutil.pid_exists(server[0].pid) or server[0].status() == "zombie"
    assert _probe(port, ready) == 1  # nothing answers now


def test_a_ready_file_left_by_an_earlier_run_goes_at_start(tmp_path):
    ready = tmp_path / "ready"
    ready.write_text("stale\n")  # a restarted container keeps its /tmp volume
    port = free_port()
    env = {**os.environ, "MLTRAINER_READY_FILE": str(ready), "MLTRAINER_WARMUP": "0"}
    args = ["--server.port", str(port), "--server.headless", "true"]
    with (tmp_path / "log").open("w") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "ui.serve", *args], cwd=ROOT, env=env, stdout=log, stderr=log
        )
    try:
        wait_healthy(f"http://127.0.0.1:{port}", 90)
        # gone before the server answered: never read as ready while starting
        assert not ready.exists() or ready.read_text() == "warm\n"
        deadline = time.monotonic() + 30  # no warm-up: ready as soon as it is healthy
        while not ready.exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert ready.read_text() == "warm\n"
        assert _probe(port, ready) == 0
        assert "warm-up: " not in (tmp_path / "log").read_text()  # no page was opened
    finally:
        proc.terminate()
        assert proc.wait(timeout=30) == 0


def test_serve_moves_on_when_another_server_took_its_port(tmp_path, monkeypatch):
    """CI saw a Dask worker bind the port chosen for the app before the app did: the
    health check met Dask's handshake (BadStatusLine). That reads as not healthy, and the
    server, which exits with "Port ... is not available", is started on another port."""
    import threading

    from ui import user_sessions
    from ui.warmup import healthy

    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    busy = taken.getsockname()[1]

    def answer_like_dask():
        while True:
            try:
                conn, _ = taken.accept()
            except OSError:
                return
            conn.sendall(b"\x00\x00\x00:*compression\xc0python pickle-protocol\r\n\r\n")
            conn.close()

    threading.Thread(target=answer_like_dask, daemon=True).start()
    ports = iter([busy, free_port()])
    monkeypatch.setattr(user_sessions, "free_port", lambda: next(ports))
    try:
        assert healthy(f"http://127.0.0.1:{busy}") is False
        with serve(tmp_path) as (url, _proc):
            assert url != f"http://127.0.0.1:{busy}" and healthy(url)
    finally:
        taken.close()
