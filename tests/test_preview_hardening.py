"""The preview server under hostile or broken conditions (issue 10, fault 6): DNS rebinding, connection
floods, clients that drip their headers, and exceptions in a handler or in the JPEG encoder.

`edgepose run --preview` as a real subprocess, real sockets; faults in our own code are injected by
running the CLI through a small `-c` script that replaces one function before `main` starts.
"""

from __future__ import annotations

import contextlib
import http.client
import re
import socket
import time
from pathlib import Path

import pytest
from conftest import assert_one_line_error, model_args, run_cli
from test_preview import Run, free_port, get, metrics, open_stream, read_parts, start, wait_until

from edgepose.config.preview_access import is_loopback
from edgepose.sinks.preview.guard import host_is_loopback, origin_is_loopback
from edgepose.sinks.preview.listener import Limits

FOREIGN = "rebind.attacker.test"
#: Seconds a client has to send its request head (the server's default).
HEAD_DEADLINE_S = Limits().head_deadline_s


def threads_of(pid: int) -> int:
    """The process's thread count, from /proc."""
    status = Path(f"/proc/{pid}/status").read_text()
    match = re.search(r"^Threads:\s+(\d+)$", status, re.M)
    assert match, status
    return int(match.group(1))


def response(sock: socket.socket) -> bytes:
    """Everything the server sent until it closed (at most 64 KB)."""
    data = b""
    try:
        while len(data) < 65536 and (chunk := sock.recv(65536)):
            data += chunk
    except ConnectionResetError:
        pass
    return data


def inject(body: str) -> str:
    """A `python` argument list running the CLI after `body` replaced something (see the module doc)."""
    return "-c import sys\n" + body + "\nfrom edgepose.cli import main\nsys.exit(main(sys.argv[1:]))\n"


def error_lines(run: Run, needle: str) -> list[str]:
    """The ERROR lines of the run's log that contain ``needle``."""
    return [line for line in run.stderr().splitlines() if ": ERROR: " in line and needle in line]


# ---------------------------------------------------------------- the Host / Origin guard, pure


def test_loopback_names() -> None:
    for host in ("127.0.0.1", "127.0.0.1:8080", "localhost", "LocalHost:9000", "localhost.", "[::1]", "[::1]:8080",
                 "127.3.4.5:1", "localhost:"):  # fmt: skip
        assert host_is_loopback(host), host
    for host in (FOREIGN, f"{FOREIGN}:8080", "localhost.attacker.test", "127.0.0.1.nip.io", "192.168.1.2:8080",
                 "0.0.0.0", "[::]:8080", "::1", "[127.0.0.1]", "[::1", "127.0.0.1:80:80", "127.0.0.1:abc",
                 "127.0.0.1:123456", "", "localhost@attacker.test", "0177.0.0.1"):  # fmt: skip
        assert not host_is_loopback(host), host
    for origin in ("http://127.0.0.1:8080", "http://localhost", "https://[::1]:443", "HTTP://LOCALHOST:1"):
        assert origin_is_loopback(origin), origin
    for origin in ("null", f"http://{FOREIGN}", f"http://{FOREIGN}:8080", "http://127.0.0.1:8080/x", "file://",
                   "ws://localhost", "http://user@localhost", "localhost"):  # fmt: skip
        assert not origin_is_loopback(origin), origin
    assert is_loopback("::1") and is_loopback("127.0.0.1") and not is_loopback("camera.lan")


# ---------------------------------------------------------------- DNS rebinding


@pytest.mark.slow
def test_foreign_host_is_refused_on_the_loopback_default(models_dir: Path, tmp_path: Path, runs: list[Run]) -> None:
    port = free_port()
    run = start(runs, tmp_path, "--source", "synthetic:160x120", "--preview", str(port), *model_args(models_dir))
    wait_until(run, port, "/pose")
    for path in ("/", "/pose", "/stream.mjpg", "/events", "/metrics", "/nope"):
        for host in (FOREIGN, f"{FOREIGN}:{port}"):
            code, body = get(port, path, {"Host": host})
            assert code == 421, (path, host, code)
            assert body.endswith(b"\n") and body.count(b"\n") == 1 and b"127.0.0.1" in body, body
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:  # the absolute form names a site too
        sock.sendall(f"GET http://{FOREIGN}/pose HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode())
        assert response(sock).startswith(b"HTTP/1.0 421 ")
    # A browser page from elsewhere sends its Origin even when the Host is right.
    code, body = get(port, "/pose", {"Origin": f"http://{FOREIGN}:{port}"})
    assert code == 403 and body.count(b"\n") == 1, (code, body)
    assert get(port, "/pose", {"Origin": "null"})[0] == 403
    # The machine's own names, with or without the port (a tunnel changes it), are served.
    for host in (f"127.0.0.1:{port}", "127.0.0.1", "localhost", f"localhost:{port + 1}", f"[::1]:{port}"):
        assert get(port, "/pose", {"Host": host})[0] == 200, host
    assert get(port, "/pose", {"Origin": f"http://localhost:{port}"})[0] == 200
    code, body = get(port, "/", {"Host": f"localhost:{port}"})
    assert code == 200 and b"<title>edgepose preview</title>" in body
    sock, body_file = open_stream(port)
    assert b" 200 " in body_file.readline()
    body_file.close()
    sock.close()
    # /healthz answers anyone, like it needs no token: it says only how old the last frame is.
    code, body = get(port, "/healthz", {"Host": FOREIGN})
    assert code == 200 and body.startswith(b"ok")
    assert run.stop() == 0
    assert "Traceback" not in run.stderr()


@pytest.mark.slow
def test_with_a_token_the_token_decides(models_dir: Path, tmp_path: Path, runs: list[Run]) -> None:
    """Loopback with a token: a page cannot know the token, so the Host header does not matter."""
    port = free_port()
    run = start(runs, tmp_path, "--source", "synthetic:160x120", "--preview", str(port), "--preview-token", "t0k",
                *model_args(models_dir))  # fmt: skip
    wait_until(run, port)
    assert get(port, "/pose", {"Host": FOREIGN})[0] == 401
    assert get(port, "/pose", {"Host": f"camera.lan:{port}", "Authorization": "Bearer t0k"})[0] == 200
    # The token comes before any work: refused stream requests start no stream and encode nothing.
    for path in ("/stream.mjpg", "/stream.mjpg?token=nope", "/nope"):
        assert get(port, path)[0] == 401, path
    code, body = get(port, "/metrics", {"Authorization": "Bearer t0k"})
    assert code == 200
    assert b"\nedgepose_preview_jpeg_frames_total 0.0\n" in body
    assert b'\nedgepose_preview_clients{endpoint="stream"} 0.0\n' in body
    assert run.stop() == 0


# ---------------------------------------------------------------- malformed requests (held before; keep it so)


@pytest.mark.slow
def test_malformed_requests_get_4xx(models_dir: Path, tmp_path: Path, runs: list[Run]) -> None:
    port = free_port()
    run = start(runs, tmp_path, "--source", "synthetic:160x120", "--preview", str(port), *model_args(models_dir))
    wait_until(run, port)
    host = f"Host: 127.0.0.1:{port}\r\n"
    cases = {
        b"\x16\x03\x01 garbage\r\n\r\n": b"Error code: 400",  # taken for HTTP/0.9: no status line, a body
        b"GET /" + b"a" * 100_000 + b" HTTP/1.1\r\n\r\n": b" 414 ",
        b"GET /pose HTTP/1.1\r\n"
        + host.encode()
        + b"".join(b"X-%d: 1\r\n" % i for i in range(200))
        + b"\r\n": b" 431 ",
        b"GET /pose HTTP/1.1\r\n" + host.encode() + b"X-Big: " + b"b" * 60_000 + b"\r\n" * 2 + b"\r\n": b" 200 ",
        b"GET /pose HTTP/1.1\r\n"
        + b"".join(b"X-%d: %s\r\n" % (i, b"b" * 60_000) for i in range(3))
        + b"\r\n": b" 431 ",
    }
    for request, expected in cases.items():
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):  # answered before it was all sent
                sock.sendall(request)
            answer = response(sock)
        where = answer if expected.startswith(b"Error") else answer.split(b"\n", 1)[0]
        assert expected in where, (request[:40], answer[:200])
    assert get(port, "/healthz")[0] == 200
    assert run.stop() == 0
    assert "Traceback" not in run.stderr()


# ---------------------------------------------------------------- connection cap


@pytest.mark.slow
def test_connections_beyond_the_cap_get_503(models_dir: Path, tmp_path: Path, runs: list[Run]) -> None:
    port = free_port()
    run = start(runs, tmp_path, "--source", "synthetic:160x120", "--preview", str(port), "--preview-fps", "2",
                *model_args(models_dir))  # fmt: skip
    wait_until(run, port, "/pose")
    cap = 8  # the default preview.max_connections
    streams = []
    try:
        for _ in range(cap):
            sock, body = open_stream(port)
            assert b" 200 " in body.readline()
            streams.append((sock, body))
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        conn.request("GET", "/pose")
        resp = conn.getresponse()
        text = resp.read()
        conn.close()
        assert resp.status == 503, (resp.status, text)
        assert resp.getheader("Retry-After", "").isdigit() and text.count(b"\n") == 1, text
        # /healthz keeps a reserve of its own, so a monitor still gets its answer.
        assert get(port, "/healthz")[0] == 200
    finally:
        for sock, body in streams:
            body.close()
            sock.close()
    # The slots come back when the viewers leave (the server notices at its next write).
    deadline = time.monotonic() + 30
    while (code := get(port, "/pose")[0]) != 200:
        assert code == 503 and time.monotonic() < deadline, code
        time.sleep(0.2)
    assert metrics(port)["edgepose_preview_refused_connections_total{reason=busy}"] >= 1
    assert run.stop() == 0


@pytest.mark.slow
def test_max_connections_is_validated() -> None:
    for bad in ("0", "257", "eight"):
        proc = run_cli("run", "--preview", "8080", "--preview-max-connections", bad, "--print-config")
        assert_one_line_error(proc, 2, "max_connections" if bad != "eight" else "--preview-max-connections")
    proc = run_cli("run", "--preview", "8080", "--print-config", env={"EDGEPOSE_PREVIEW_MAX_CONNECTIONS": "-1"})
    assert_one_line_error(proc, 2, "max_connections")
    proc = run_cli("run", "--preview", "8080", "--preview-max-connections", "256", "--print-config")
    assert proc.returncode == 0 and "max_connections = 256" in proc.stdout, proc.stdout


# ---------------------------------------------------------------- slow clients


@pytest.mark.slow
def test_a_client_dripping_its_headers_is_cut_off(models_dir: Path, tmp_path: Path, runs: list[Run]) -> None:
    """One header line a second: each line is far inside the 10 s socket timeout, the whole head is not
    inside the head deadline. The bound below is 4× the deadline: it checks that it ends, not how fast."""
    port = free_port()
    run = start(runs, tmp_path, "--source", "synthetic:160x120", "--preview", str(port), *model_args(models_dir))
    wait_until(run, port)
    sock = socket.create_connection(("127.0.0.1", port), timeout=1.0)
    sock.sendall(f"GET /pose HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n".encode())
    started = time.monotonic()
    answer = None
    lines = 0
    while time.monotonic() - started < 4 * HEAD_DEADLINE_S:
        try:
            chunk = sock.recv(4096)
        except TimeoutError:  # nothing from the server for a second: drip one more line
            try:
                sock.sendall(f"X-Drip-{lines}: 1\r\n".encode())
                lines += 1
            except OSError:
                answer = b""
                break
            continue
        except ConnectionResetError:
            answer = b""
            break
        answer = chunk
        break
    sock.close()
    assert answer is not None, (
        f"a client dripping {lines} header lines was still connected after {4 * HEAD_DEADLINE_S} s"
    )
    assert answer == b"" or answer.startswith(b"HTTP/1.0 408 "), answer
    assert lines >= 2  # it did drip: the cut is the head deadline, not a socket timeout on a silent client
    assert get(port, "/healthz")[0] == 200
    assert metrics(port)["edgepose_preview_refused_connections_total{reason=slow}"] == 1
    assert run.stop() == 0


@pytest.mark.slow
def test_200_dripping_connections_keep_threads_bounded(models_dir: Path, tmp_path: Path, runs: list[Run]) -> None:
    port = free_port()
    run = start(runs, tmp_path, "--source", "synthetic:160x120", "--preview", str(port), *model_args(models_dir))
    wait_until(run, port)
    for _ in range(3):  # the threads of every kind of request have come and gone
        get(port, "/pose")
        get(port, "/metrics")
    baseline = threads_of(run.proc.pid)
    socks: list[socket.socket] = []
    for _ in range(200):
        sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        sock.sendall(f"GET /pose HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n".encode())
        sock.setblocking(False)
        socks.append(sock)
    answers: dict[int, bytes] = {}
    most = baseline
    healthz = []
    started = time.monotonic()
    rounds = 0
    while len(answers) < len(socks) and time.monotonic() - started < 6 * HEAD_DEADLINE_S:
        rounds += 1
        for i, sock in enumerate(socks):
            if i in answers:
                continue
            try:
                data = sock.recv(4096)
                answers[i] = data  # an answer, or b"" for a close
                continue
            except BlockingIOError:
                pass
            except OSError:
                answers[i] = b""
                continue
            try:
                sock.send(f"X-Drip-{rounds}: 1\r\n".encode())
            except BlockingIOError:
                pass
            except OSError:
                answers[i] = b""
        most = max(most, threads_of(run.proc.pid))
        healthz.append(get(port, "/healthz", timeout=10)[0])
        time.sleep(1.0)
    for sock in socks:
        sock.close()
    assert run.proc.poll() is None, run.stderr()
    assert len(answers) == 200, f"{200 - len(answers)} dripping connections were never cut off"
    statuses = sorted({a.split(b"\r\n", 1)[0].decode() for a in answers.values()})
    assert set(statuses) <= {"", "HTTP/1.0 503 Service Unavailable", "HTTP/1.0 408 Request Timeout"}, statuses
    # Dripping clients cost no thread at all; the bound allows the cap, the /healthz reserve and a little more.
    limits = Limits()
    assert most <= baseline + limits.max_connections + limits.healthz_reserve + 2, (baseline, most)
    assert healthz and all(code == 200 for code in healthz), healthz
    refused = metrics(port)
    assert refused["edgepose_preview_refused_connections_total{reason=busy}"] >= 200 - limits.max_pending
    assert refused["edgepose_preview_refused_connections_total{reason=slow}"] >= 1
    assert run.stop() == 0
    assert "Traceback" not in run.stderr()


# ---------------------------------------------------------------- exceptions become one log line


def test_an_exception_in_a_handler_is_one_log_line(models_dir: Path, tmp_path: Path, runs: list[Run]) -> None:
    broken = (
        "import edgepose.sinks.preview.metrics as m\n"
        "def render(self):\n"
        "    raise RuntimeError('injected fault\\nwith a second line')\n"
        "m.PreviewMetrics.render = render\n"
    )
    port = free_port()
    run = start(runs, tmp_path, "--source", "synthetic:160x120", "--preview", str(port), *model_args(models_dir),
                python=inject(broken))  # fmt: skip
    wait_until(run, port)
    for _ in range(2):
        code, body = get(port, "/metrics")
        assert code == 500 and body.count(b"\n") == 1, (code, body)
    assert get(port, "/pose")[0] == 200  # the server goes on
    assert run.stop() == 0
    err = run.stderr()
    assert "Traceback" not in err and "Exception occurred" not in err, err
    lines = error_lines(run, "injected fault")
    assert len(lines) == 2 and all("RuntimeError: injected fault with a second line" in ln for ln in lines), lines


@pytest.mark.slow
def test_an_exception_in_the_encoder_is_logged_once_and_streams_go_on(
    models_dir: Path, tmp_path: Path, runs: list[Run]
) -> None:
    """The drawing fails once (the next pictures are fine), then keeps failing (the waiting stream client
    is released, not left waiting), then works again."""
    once, always = tmp_path / "fail-once", tmp_path / "fail-always"
    broken = (
        "import os\n"
        "import edgepose.sinks.preview.hub as h\n"
        "real = h.render\n"
        "def render(*args, **kwargs):\n"
        f"    if os.path.exists({str(once)!r}):\n"
        f"        os.unlink({str(once)!r})\n"
        "        raise RuntimeError('injected once')\n"
        f"    if os.path.exists({str(always)!r}):\n"
        "        raise KeyError('injected always')\n"
        "    return real(*args, **kwargs)\n"
        "h.render = render\n"
    )
    port = free_port()
    run = start(runs, tmp_path, "--source", "synthetic:160x120", "--preview", str(port), *model_args(models_dir),
                python=inject(broken))  # fmt: skip
    wait_until(run, port)

    once.touch()
    sock, body = open_stream(port)
    assert b" 200 " in body.readline()
    while body.readline().strip():
        pass
    assert len(read_parts(body, 3)) == 3  # the failed picture was skipped, the next ones came
    assert not once.exists()
    assert len(error_lines(run, "injected once")) == 1

    always.touch()  # every picture fails now: the client is released, not left waiting for ever
    sock.settimeout(30)
    try:
        while body.readline():
            pass
    except ConnectionResetError:
        pass
    body.close()
    sock.close()
    assert len(error_lines(run, "injected always")) == 1, run.stderr()  # once per run of failures
    assert "ended a stream" in run.stderr()
    assert wait_until(run, port).startswith(b"ok")
    assert metrics(port)["edgepose_preview_encode_errors_total"] >= 4

    always.unlink()
    sock, body = open_stream(port)
    assert b" 200 " in body.readline()
    while body.readline().strip():
        pass
    assert len(read_parts(body, 2)) == 2
    body.close()
    sock.close()
    assert run.stop() == 0
    err = run.stderr()
    assert "Traceback" not in err and "Exception in thread" not in err, err
    assert len(error_lines(run, "injected always")) == 1
