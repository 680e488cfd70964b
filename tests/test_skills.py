"""Each shipped skill, run in its real container."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import run_skill, say
from tests.fake_dns import FakeDns


@pytest.fixture
def web() -> Iterator[str]:
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200 if self.path == "/health" else 503)
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_say_and_uptime_and_disk_usage(running) -> None:
    bot, recorder = running
    assert run_skill(bot, recorder, "uma", "say hello").code == "hello\n"
    assert " load average: " in run_skill(bot, recorder, "uma", "/uptime").code
    assert "Filesystem" in run_skill(bot, recorder, "uma", "/disk_usage path=/").code


def test_http_check(running, web: str) -> None:
    bot, recorder = running
    ok = run_skill(bot, recorder, "olga", f"check {web}/health")
    assert ok.code.startswith(f"{web}/health -> HTTP 200 OK in ") and " done in " in ok.text
    bad = run_skill(bot, recorder, "olga", f"/http_check {web}/broken")
    assert "failed with exit code" in bad.text and f"{web}/broken -> " in bad.code


def test_dns_lookup(running) -> None:
    dns = FakeDns("192.0.2.10")
    try:
        bot, recorder = running
        reply = run_skill(bot, recorder, "olga", f"resolve db.example.test @127.0.0.1:{dns.port}")
    finally:
        dns.close()
    assert "Name:\tdb.example.test\nAddress: 192.0.2.10" in reply.code
    assert "db.example.test" in dns.queries


def test_tail_log_reads_only_the_configured_dir(running, log_dir: Path) -> None:
    (log_dir / "app.log").write_text("".join(f"event {i}\n" for i in range(100)))
    (log_dir / "app.log").chmod(0o644)
    bot, recorder = running
    reply = run_skill(bot, recorder, "olga", "tail app.log 3")
    assert reply.code == "event 97\nevent 98\nevent 99\n"
    [refused] = say(bot, "olga", "/tail_log file=../../etc/passwd")
    assert refused.text.startswith("argument 'file' of tail_log is not valid: '../../etc/passwd'")
    missing = run_skill(bot, recorder, "olga", "/tail_log nope.log")
    assert "failed with exit code 1" in missing.text and "No such file" in missing.code


def test_send_alert_goes_to_the_alert_conversation(running) -> None:
    bot, recorder = running
    [question] = say(bot, "olga", "alert backups failed")
    assert question.text == "Run send_alert message=backups failed? Reply yes within 120 s to confirm; anything else cancels."
    [ack] = say(bot, "olga", "yes")
    assert ack.text == f"job {ack.job_id} queued: send_alert message=backups failed; the result goes to console:alerts"
    result = recorder.result(ack.job_id)
    assert result.conversation == "console:alerts"
    assert result.code == "ALERT: backups failed\n"


def test_a_value_is_printed_or_refused_never_read_as_an_option(running) -> None:
    bot, recorder = running
    assert run_skill(bot, recorder, "uma", "/say -n").code == "-n\n"
    assert run_skill(bot, recorder, "uma", "/say text=-e").code == "-e\n"
    assert run_skill(bot, recorder, "uma", "say --help").code == "--help\n"
    for text in ("/disk_usage path=--help", "df --help", "/disk_usage -h"):
        [refused] = say(bot, "uma", text)
        assert refused.text.startswith("argument 'path' of disk_usage is not valid: '-") and "\n" not in refused.text, text
    [refused] = say(bot, "olga", "/dns_lookup example.com server=-debug")
    assert refused.text == "argument 'server' of dns_lookup is not valid: '-debug': a DNS server, optionally with :port"
