"""The web chat and the dashboard in headless Chromium (Debian's chromium and chromium-driver, driven by Selenium).

A person opens a one-time login link, says `say hello` and sees the reply; an
admin watches a job go from queued to done on the dashboard, approves a job
that waits for an admin there and sees it run, and approves another with the
button under its notice in the web chat. Screenshots of each page,
at laptop and phone size, go to test-output/gateway/.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support import expected_conditions as seen
from selenium.webdriver.support.ui import WebDriverWait

from bot.gateway import tokens
from tests.conftest import REPO, WAIT, add_manifest, probe_like
from tests.fake_runner import FakeRunner, Scripted
from tests.gateway_helpers import Served, serving

SHOTS = REPO / "test-output" / "gateway"
LAPTOP, PHONE = (1280, 860), (390, 844)


@pytest.fixture
def browser() -> Iterator[webdriver.Chrome]:
    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for argument in (
        "--headless=new",
        "--no-sandbox",
        "--disable-dev-shm-usage",
        "--no-proxy-server",
        f"--window-size={LAPTOP[0]},{LAPTOP[1]}",
    ):
        options.add_argument(argument)
    driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
    try:
        yield driver
    finally:
        driver.quit()


def shoot(driver: webdriver.Chrome, name: str) -> None:
    """Save the page at laptop and phone size."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    for size, suffix in ((LAPTOP, ""), (PHONE, "-phone")):
        driver.set_window_size(*size)
        driver.save_screenshot(str(SHOTS / f"{name}{suffix}.png"))
    driver.set_window_size(*LAPTOP)


def state_of(driver: webdriver.Chrome, job_id: int) -> str | None:
    cells = driver.find_elements(By.CSS_SELECTOR, f"#job-{job_id} .state")
    return cells[0].text if cells else None


def post(served: Served, token: str, text: str) -> int:
    async def send() -> int:
        async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {token}"}) as session:
            async with session.post(served.url + "/api/v1/messages", json={"text": text}) as answer:
                return (await answer.json())["replies"][0]["job_id"]

    return asyncio.run(send())


def test_log_in_chat_and_watch_a_job_on_the_dashboard(tmp_path: Path, log_dir: Path, browser: webdriver.Chrome) -> None:
    runner = FakeRunner()
    runner.script(lambda spec: spec.argv[-1] == "busy", Scripted(delay=WAIT, output="busy\n"))  # until removed
    add_manifest(tmp_path, probe_like("risky", "echo risky ran", approval={"roles": ["admin"]}))
    add_manifest(tmp_path, probe_like("paged", "echo paged ran", approval={"roles": ["admin"], "notify": "web:ada"}))
    with serving(tmp_path, log_dir, runner) as served:
        wait = WebDriverWait(browser, WAIT)
        code = tokens.login_code(served.bot.db, "web:alice", served.bot.cfg.gateway.login_ttl)

        browser.get(f"{served.url}/login#{code}")
        wait.until(seen.url_to_be(f"{served.url}/chat"))
        wait.until(seen.text_to_be_present_in_element((By.ID, "who"), "web:alice"))
        wait.until(lambda driver: driver.find_element(By.ID, "status").text == "")  # the WebSocket said welcome
        box = browser.find_element(By.ID, "message")
        box.send_keys("say hello", Keys.ENTER)
        wait.until(seen.presence_of_element_located((By.CSS_SELECTOR, "#transcript li.me.acked")))
        wait.until(
            lambda driver: any(p.text == "hello\n" or p.text == "hello" for p in driver.find_elements(By.CSS_SELECTOR, "li.bot pre"))
        )
        shoot(browser, "chat")

        # An admin's dashboard: everyone's jobs, schedules, the outbox backlog and the audit log.
        admin = tokens.login_code(served.bot.db, "web:ada", served.bot.cfg.gateway.login_ttl)
        browser.get(f"{served.url}/login#{admin}")
        wait.until(seen.url_to_be(f"{served.url}/chat"))
        browser.get(f"{served.url}/dashboard")
        wait.until(seen.text_to_be_present_in_element((By.ID, "who"), "web:ada"))
        wait.until(seen.visibility_of_element_located((By.ID, "audit")))
        # Both workers busy, so the next job waits in the queue where the dashboard can see it.
        token = served.token("web:alice")
        post(served, token, "say busy")
        post(served, token, "say busy")
        WebDriverWait(runner, WAIT).until(lambda fake: len(fake.containers()) == 2)
        watched = post(served, token, "say watched")
        wait.until(lambda driver: state_of(driver, watched) == "queued")
        shoot(browser, "dashboard-queued")
        for busy in runner.containers():  # free the workers: the watched job runs
            runner.remove(busy.name)
        wait.until(lambda driver: state_of(driver, watched) == "succeeded")
        output = browser.find_element(By.CSS_SELECTOR, f"#job-{watched} pre").text
        shoot(browser, "dashboard")

        # A job that waits for an admin: Approve on the dashboard, and it runs.
        risky = post(served, served.token("web:olga"), "/risky")
        approve = (By.CSS_SELECTOR, f"#approval-{risky} button.approve")
        wait.until(seen.element_to_be_clickable(approve))
        assert state_of(browser, risky) == "awaiting_approval"
        shoot(browser, "dashboard-approval")
        browser.find_element(*approve).click()
        wait.until(lambda driver: state_of(driver, risky) == "succeeded")
        wait.until(seen.invisibility_of_element_located((By.ID, "approvals-section")))
        approved_by = served.bot.db.execute("SELECT decided_by FROM approvals WHERE job_id = ?", (risky,)).fetchone()[0]

        # The notice of one that pages the admin's web chat comes with buttons; Approve says `/approve ID` as typed.
        browser.get(f"{served.url}/chat")
        wait.until(lambda driver: driver.find_element(By.ID, "status").text == "")
        paged = post(served, served.token("web:olga"), "/paged")
        button = (By.XPATH, "//li[contains(@class, 'bot')]//div[@class='actions']/button[text()='Approve']")
        wait.until(seen.element_to_be_clickable(button)).click()
        wait.until(seen.text_to_be_present_in_element((By.CSS_SELECTOR, "#transcript li.me.acked"), f"/approve {paged}"))
        wait.until(
            lambda driver: any(p.text == f"job {paged} approved; queued: paged" for p in driver.find_elements(By.CSS_SELECTOR, "li.bot p"))
        )
        shoot(browser, "chat-approval")

        browser.get(f"{served.url}/login")  # a used link's page, without a code
        wait.until(seen.text_to_be_present_in_element((By.ID, "status"), "podbot web login"))
        shoot(browser, "login")
    assert output == "watched" and approved_by == "web:ada"
    shots = ("chat", "chat-phone", "dashboard", "dashboard-phone", "dashboard-approval", "chat-approval", "login")
    assert all((SHOTS / f"{name}.png").stat().st_size > 1000 for name in shots)
