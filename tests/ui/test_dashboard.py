"""The dashboard in a real browser, against a real ``taskgate serve`` with workers.

Each test acts as a user would: it opens a page, signs in with a key, and reads what
is on screen, while tasks run in the server's worker processes. Every page ends up as
a screenshot in ``test-artifacts/ui/``.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from acceptance.server import Server

from .app import HOSTILE
from .browsing import sign_in, submit, wait_ended
from .conftest import APP

pytestmark = pytest.mark.acceptance

NARROW = {"width": 390, "height": 844}


def shot(page: Page, artefacts: Path, name: str) -> None:
    page.screenshot(path=str(artefacts / f"{name}.png"), full_page=True)


# -- signing in ------------------------------------------------------------------------


def test_login_refuses_a_wrong_key_then_signs_in_and_out(
    page: Page, server: Server, artefacts: Path
) -> None:
    page.goto(server.url + "/ui/tasks")
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    shot(page, artefacts, "login")
    page.get_by_label("API key").fill("tgk_nope_nope")
    page.get_by_label("API key").press("Enter")  # the keyboard is enough
    expect(page.locator("#login-message")).to_contain_text("not accepted")
    assert "tgk_" not in page.url
    page.get_by_label("API key").fill(server.key or "")
    page.get_by_role("button", name="Sign in").click()
    # back where the user was going, and the key is nowhere in the address
    expect(page.get_by_role("heading", name="Tasks")).to_be_visible()
    assert page.url.endswith("/ui/tasks") and (server.key or "") not in page.url
    expect(page.locator("#who-name")).to_contain_text("admin")
    page.get_by_role("button", name="Log out").click()
    expect(page.locator("#login-message")).to_contain_text("logged out")
    assert page.evaluate("sessionStorage.length") == 0
    page.goto(server.url + "/ui/tasks")  # a reload is still signed out
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()


def test_an_expired_key_goes_back_to_login_with_a_message(page: Page, server: Server) -> None:
    short = server.make_key("read", expires="3s")
    sign_in(page, server, short)
    expect(page.get_by_role("heading", name="Overview")).to_be_visible()
    page.wait_for_timeout(3500)
    page.get_by_role("link", name="Tasks", exact=True).click()
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    expect(page.locator("#login-message")).to_contain_text("not accepted any more")


def test_the_skip_link_is_the_first_stop_of_the_keyboard(page: Page, server: Server) -> None:
    sign_in(page, server)
    page.reload()  # signed in still (the tab keeps its key), focus at the top
    expect(page.get_by_role("heading", name="Overview")).to_be_visible()
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent") == "Skip to content"


# -- the task list ---------------------------------------------------------------------


def test_the_list_shows_a_new_task_and_its_progress_live(
    page: Page, server: Server, artefacts: Path
) -> None:
    sign_in(page, server, path="/ui/tasks")
    expect(page.locator("#live")).to_have_text("● live")
    page.evaluate("window.__same_page = true")
    task = submit(server, "steps", params={"name": "vm-101", "count": 6, "pause": 0.6})
    row = page.locator(f'tr[data-id="{task["id"]}"]')
    expect(row).to_be_visible()
    expect(row.locator(".message")).to_contain_text(re.compile(r"step [1-5] of 6"))
    shot(page, artefacts, "tasks-running")
    expect(row.locator(".state")).to_have_text("succeeded", timeout=20_000)
    expect(row.locator(".message")).to_have_text("step 6 of 6")
    expect(row.locator(".percent")).to_have_text("100 %")
    assert page.evaluate("window.__same_page") is True  # no reload
    shot(page, artefacts, "tasks")


def test_filters_narrow_the_list_and_search_finds_an_object(page: Page, server: Server) -> None:
    failed = submit(server, "steps", params={"name": "db-7", "count": 1, "pause": 0, "fail": True})
    done = submit(server, "steps", params={"name": "db-8", "count": 1, "pause": 0})
    wait_ended(server, failed["id"])
    wait_ended(server, done["id"])
    sign_in(page, server, path="/ui/tasks")
    page.get_by_label("State").select_option("failed")
    page.get_by_role("button", name="Apply").click()
    expect(page.locator(f'tr[data-id="{failed["id"]}"]')).to_be_visible()
    expect(page.locator(f'tr[data-id="{done["id"]}"]')).to_have_count(0)
    assert "state=failed" in page.url
    page.get_by_role("link", name="Reset").click()
    page.get_by_label("Search").fill("db-8")
    page.get_by_label("Search").press("Enter")
    expect(page.locator("#task-rows tr")).to_have_count(1)
    expect(page.locator(f'tr[data-id="{done["id"]}"]')).to_be_visible()


def test_the_list_on_a_narrow_screen(page: Page, server: Server, artefacts: Path) -> None:
    submit(server, "steps", params={"name": "phone", "count": 1, "pause": 0})
    page.set_viewport_size(NARROW)
    sign_in(page, server, path="/ui/tasks")
    expect(page.locator("#task-rows tr").first).to_be_visible()
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= NARROW["width"], f"the page is {width}px wide on a {NARROW['width']}px screen"
    shot(page, artefacts, "tasks-narrow")


# -- one task --------------------------------------------------------------------------


def test_the_task_page_follows_the_log_live_then_shows_the_result(
    page: Page, server: Server, artefacts: Path
) -> None:
    task = submit(server, "steps", params={"name": "vm-102", "count": 8, "pause": 0.5})
    sign_in(page, server, path=f"/ui/tasks/{task['id']}")
    lines = page.locator("#log li")
    expect(lines.first).to_contain_text("step 1 of 8")
    assert lines.count() < 8  # it is still writing: these came live
    expect(page.locator("#task-message")).to_contain_text("of 8")
    shot(page, artefacts, "task-running")
    expect(lines).to_have_count(8, timeout=20_000)
    expect(page.locator("#log-state")).to_have_text("complete")
    expect(page.locator("#log li.level-warning").first).to_contain_text("step 3 of 8")
    expect(page.locator(".task-head .badge")).to_have_text("succeeded")
    expect(page.get_by_role("heading", name="Result")).to_be_visible()
    expect(page.locator(".outcome")).to_contain_text('"steps": 8')
    expect(page.get_by_role("heading", name="Created resources")).to_be_visible()
    with page.expect_download() as download:
        page.get_by_role("button", name="Download log").click()
    text = Path(download.value.path()).read_text()
    assert text.count("\n") == 8 and "WARNING step 3 of 8" in text
    shot(page, artefacts, "task")


def test_cancel_from_the_page(page: Page, server: Server, artefacts: Path) -> None:
    task = submit(server, "steps", params={"name": "long", "count": 100, "pause": 1})
    sign_in(page, server, path=f"/ui/tasks/{task['id']}")
    expect(page.locator(".task-head .badge")).to_have_text("running")
    page.get_by_role("button", name="Cancel").click()
    expect(page.locator(".task-head .badge")).to_have_text("canceled", timeout=20_000)
    expect(page.get_by_role("button", name="Cancel")).to_have_count(0)
    expect(page.locator("#log")).to_contain_text("asked to stop")
    assert wait_ended(server, task["id"])["state"] == "canceled"
    shot(page, artefacts, "task-canceled")


def test_a_failed_task_shows_its_traceback_and_can_be_retried(page: Page, server: Server) -> None:
    task = submit(server, "steps", params={"name": "bad", "count": 1, "pause": 0, "fail": True})
    wait_ended(server, task["id"])
    sign_in(page, server, path=f"/ui/tasks/{task['id']}")
    expect(page.get_by_role("heading", name="Error")).to_be_visible()
    expect(page.locator(".traceback")).to_contain_text("RuntimeError: step 1 of bad broke")
    page.get_by_role("button", name="Acknowledge").click()
    expect(page.get_by_role("button", name="Acknowledge")).to_have_count(0)
    page.get_by_role("button", name="Retry").click()
    expect(page).not_to_have_url(re.compile(task["id"]))
    expect(page.locator("#main")).to_contain_text(task["id"])  # "Retry of" links back
    retried = page.url.rsplit("/", 1)[1]
    assert wait_ended(server, retried)["labels"]["retry_of"] == task["id"]


def test_a_read_key_sees_no_buttons(page: Page, server: Server) -> None:
    task = submit(server, "steps", params={"name": "ro", "count": 50, "pause": 0.2})
    sign_in(page, server, server.make_key("read"), path=f"/ui/tasks/{task['id']}")
    expect(page.locator(".task-head .badge")).to_be_visible()
    expect(page.locator(".task-head button")).to_have_count(0)
    with server.client() as client:
        client.post(f"/v1/tasks/{task['id']}/cancel")


def test_html_from_a_task_is_shown_as_text(page: Page, server: Server) -> None:
    task = submit(server, "hostile", params={"fail": True}, labels={"note": HOSTILE})
    other = submit(server, "hostile")
    wait_ended(server, task["id"])
    wait_ended(server, other["id"])
    sign_in(page, server, path=f"/ui/tasks/{task['id']}")
    expect(page.locator("#log-state")).to_have_text("complete")
    for where in ("#log", ".task-head", ".error-box", ".labels"):
        expect(page.locator(where)).to_contain_text("<script>window.__pwned = 1</script>")
    page.goto(f"{server.url}/ui/tasks/{other['id']}")
    expect(page.locator(".outcome")).to_contain_text('<img src=\\"x\\"')
    page.goto(f"{server.url}/ui/tasks")
    expect(page.locator(f'tr[data-id="{task["id"]}"] .message')).to_contain_text("<script>")
    assert page.evaluate("window.__pwned") is None
    assert page.locator('img[src="x"]').count() == 0
    assert page.locator("main script").count() == 0


def test_an_unknown_task_is_a_not_found_page(page: Page, server: Server, artefacts: Path) -> None:
    sign_in(page, server, path="/ui/tasks/0190a8c4-0000-7000-8000-000000000000")
    expect(page.get_by_role("heading", name="Not found")).to_be_visible()
    expect(page.locator("#main")).to_contain_text("There is no task")
    shot(page, artefacts, "not-found")
    page.goto(server.url + "/ui/tasks/not-an-id")
    expect(page.get_by_role("heading", name="Not found")).to_be_visible()


# -- overview, schedules, workers ------------------------------------------------------


def test_the_overview_counts_and_charts(page: Page, server: Server, artefacts: Path) -> None:
    for _ in range(3):
        wait_ended(server, submit(server, "steps", params={"count": 1, "pause": 0})["id"])
    wait_ended(server, submit(server, "steps", params={"count": 1, "pause": 0, "fail": True})["id"])
    sign_in(page, server)
    expect(page.get_by_role("heading", name="Overview")).to_be_visible()
    expect(page.get_by_role("list", name="Tasks per state")).to_contain_text("succeeded")
    succeeded = page.get_by_role("link", name=re.compile(r"\d+\s*succeeded"))
    assert int(succeeded.locator(".count").inner_text()) >= 3
    expect(page.locator("#queue-depth")).to_have_text(re.compile(r"^\d+$"))
    expect(page.get_by_role("img", name=re.compile("Tasks ended per"))).to_be_visible()
    expect(page.locator("rect.fill-failed").first).to_be_attached()
    shot(page, artefacts, "overview")
    succeeded.click()
    expect(page).to_have_url(re.compile(r"/ui/tasks\?state=succeeded$"))


def test_schedules_pause_resume_and_run_now(page: Page, server: Server, artefacts: Path) -> None:
    with server.client() as client:
        created = client.post(
            "/v1/schedules",
            json={
                "name": "nightly",
                "type": "steps",
                "recurrence": "R/2030-01-01T02:00:00Z/P1D",
                "params": {"count": 1, "pause": 0},
            },
        )
    assert created.status_code == 201, created.text
    sign_in(page, server, path="/ui/schedules")
    row = page.locator(f'tr[data-id="{created.json()["id"]}"]')
    expect(row).to_contain_text("nightly")
    expect(row).to_contain_text("active")
    row.get_by_role("button", name="Pause").click()
    expect(row).to_contain_text("paused")
    row.get_by_role("button", name="Resume").click()
    expect(row).to_contain_text("active")
    row.get_by_role("button", name="Run now").click()
    expect(page.locator("#status")).to_contain_text("started task")
    shot(page, artefacts, "schedules")


def test_the_workers_page(page: Page, server: Server, artefacts: Path) -> None:
    sign_in(page, server, path="/ui/workers")
    rows = page.locator("tbody tr")
    expect(rows).to_have_count(2)  # the server's two worker processes
    pids = set(server.worker_pids())
    shown = {int(rows.nth(i).locator("td").nth(2).inner_text()) for i in range(2)}
    assert shown == pids
    expect(rows.first).to_contain_text("ago")
    shot(page, artefacts, "workers")


def test_a_write_key_is_told_workers_need_an_admin(page: Page, server: Server) -> None:
    sign_in(page, server, server.make_key("write"), path="/ui/workers")
    expect(page.locator("#main")).to_contain_text("only an admin key sees them")


def test_without_auth_there_is_no_login(
    page: Page, tmp_path_factory: pytest.TempPathFactory
) -> None:
    folder = tmp_path_factory.mktemp("dashboard-no-auth")
    open_server = Server(folder / "tasks.db", folder, app=APP, args=("--no-auth",)).start()
    try:
        page.goto(open_server.url + "/ui/tasks")
        expect(page.get_by_role("heading", name="Tasks")).to_be_visible()
        expect(page.locator("#who-name")).to_have_text("no authentication")
        expect(page.get_by_role("button", name="Log out")).to_be_hidden()
    finally:
        assert open_server.stop() == 0, open_server.log_text()


UNLABELLED = """() => [...document.querySelectorAll('input, select, button, progress, a')]
    .filter((el) => !el.hidden && el.offsetParent !== null)
    .filter((el) => !(el.labels && el.labels.length) && !el.getAttribute('aria-label')
                    && !el.textContent.trim())
    .map((el) => el.outerHTML.slice(0, 80))"""


def test_every_control_has_a_name(page: Page, server: Server) -> None:
    task = submit(server, "steps", params={"name": "a11y", "count": 1, "pause": 0})
    wait_ended(server, task["id"])
    page.goto(server.url + "/ui")
    expect(page.get_by_label("API key")).to_be_visible()
    assert page.evaluate(UNLABELLED) == []
    sign_in(page, server, path="/ui/tasks")
    loaded = {  # what each page shows once its data is in
        "/ui": "#queue-depth",
        "/ui/tasks": "#task-rows tr",
        f"/ui/tasks/{task['id']}": "#log-state:text('complete')",
        "/ui/schedules": "tbody tr",
        "/ui/workers": "tbody tr",
    }
    for path, ready in loaded.items():
        page.goto(server.url + path)
        expect(page.locator(ready).first).to_be_visible()
        assert page.evaluate(UNLABELLED) == [], path
        assert page.locator("main h1").count() == 1, path
