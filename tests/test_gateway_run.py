"""`podbot run` with `gateway.listen`: the gateway in the bot process, real containers behind it."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import socket
import subprocess
import sys
from pathlib import Path

from bot import config
from bot.flow import Reply
from bot.gateway import client, tokens
from bot.store.database import open_database
from tests.conftest import REPO, WAIT, cli, wait_for_text, write_config
from tests.gateway_helpers import next_reply


def test_podbot_run_serves_the_gateway_and_a_client_runs_a_skill(podman_ready, tmp_path: Path, log_dir: Path) -> None:
    path = write_config(tmp_path, log_dir, gateway={"listen": "127.0.0.1:0"})
    cfg = config.load(str(path), environ={})
    key = tokens.signing_key(cfg.data_dir)
    token = tokens.encode(key, tokens.create(open_database(cfg.database, cfg.data_dir), key, "web:alice", 600))
    stderr = tmp_path / "stderr.txt"
    env = {**os.environ, "PODBOT_CONFIG": str(path)}
    with stderr.open("w") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "bot.cli", "run"], cwd=REPO, env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=out
        )
    try:
        port = re.search(r"gateway listening on 127\.0\.0\.1 port (\d+)", wait_for_text(stderr, "gateway listening")).group(1)

        async def talk() -> Reply:
            replies: asyncio.Queue[Reply] = asyncio.Queue()
            async with await client.connect(f"ws://127.0.0.1:{port}/ws", token, replies.put_nowait) as alice:
                await alice.send("say hello")
                await next_reply(replies, "queued")
                return await next_reply(replies, "the result")

        result = asyncio.run(talk())
    finally:
        process.send_signal(signal.SIGTERM)
        code = process.wait(WAIT)
    assert result.code == "hello\n" and " say done in " in result.text
    assert code == 0, stderr.read_text()


def test_podbot_chat_does_not_serve_the_gateway(podman_ready, tmp_path: Path, log_dir: Path) -> None:
    """A console chat beside `podbot run`, on the same config, neither takes nor fails on the gateway's port."""
    with socket.socket() as taken:  # the port `podbot run` would hold
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        path = write_config(tmp_path, log_dir, gateway={"listen": f"127.0.0.1:{taken.getsockname()[1]}"})
        result = cli("chat", "--user", "ada", env={**os.environ, "PODBOT_CONFIG": str(path)}, stdin="/whoami\n")
    assert result.returncode == 0, result.stderr
    assert "You are console:ada" in result.stdout and "gateway" not in result.stderr
