#!/usr/bin/env python3
"""The users service's page in two headless Chromium browsers, against a real users-server.

    python3 tests/browser/users_page_test.py --server PATH/users-server --screenshot PATH.png

Starts the server on a free port with a fresh SQLite database, opens the page in two separate browsers
(separate chromedriver sessions and profiles), and checks that a user created in one appears in the
other without a reload, that a deletion in the other disappears from the first, that a validation error
names its field, and that the server stops with status 0 on SIGTERM. Saves a screenshot of the first
browser with a few users in it.

Exit status: 0 passed, 1 failed, 77 skipped (no chromium, chromedriver or Selenium).
Needs Debian's chromium, chromium-driver and python3-selenium.
"""

import argparse
import os
import queue
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request

SKIP = 77
CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
SYSTEM_PYTHON = "/usr/bin/python3"
CHROMIUM_ARGS = [
    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--no-first-run", "--disable-quic", "--window-size=1100,800",
]

try:
    from selenium import webdriver
    from selenium.common.exceptions import TimeoutException, WebDriverException
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait
except ImportError:
    # Debian's python3-selenium lives in the system interpreter; another python3 (a pyenv one) may
    # come first on PATH.
    if os.path.exists(SYSTEM_PYTHON) and os.path.realpath(sys.executable) != os.path.realpath(SYSTEM_PYTHON) \
            and not os.environ.get("USERS_PAGE_TEST_REEXEC"):
        os.environ["USERS_PAGE_TEST_REEXEC"] = "1"
        os.execv(SYSTEM_PYTHON, [SYSTEM_PYTHON] + sys.argv)
    print("SKIP: Selenium for Python is not installed (Debian: apt-get install python3-selenium)", flush=True)
    sys.exit(SKIP)


class Failure(Exception):
    pass


START = time.monotonic()


def step(message):
    print(f"[{time.monotonic() - START:5.1f}s] {message}", flush=True)


def check(condition, message):
    if not condition:
        raise Failure(message)


# ---- the server


class Server:
    """users-server as a child process; its stdout is read by a thread, its stderr goes to a file."""

    def __init__(self, path, workdir):
        self.lines = queue.Queue()
        self.output = []
        self.stderr_path = os.path.join(workdir, "server.stderr")
        env = dict(os.environ, DATABASE_URL=f"sqlite://{os.path.join(workdir, 'users.db')}")
        with open(self.stderr_path, "wb") as stderr:
            self.process = subprocess.Popen(
                [path, "--listen", "127.0.0.1:0", "--workers", "1"], env=env, stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE, stderr=stderr)
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for raw in self.process.stdout:
            line = raw.decode("utf-8", "replace").rstrip("\n")
            self.output.append(line)
            self.lines.put(line)
        self.lines.put(None)

    def wait_listening(self, timeout):
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise Failure(f"the server did not print 'listening on 127.0.0.1:PORT' within {timeout} s")
            try:
                line = self.lines.get(timeout=left)
            except queue.Empty:
                continue
            if line is None:
                raise Failure(f"the server exited (status {self.process.wait()}) before it was listening")
            match = re.search(r"listening on 127\.0\.0\.1:(\d+)", line)
            if match:
                return int(match.group(1))

    def stderr_tail(self, lines=20):
        try:
            with open(self.stderr_path, "r", encoding="utf-8", errors="replace") as f:
                return f.read().splitlines()[-lines:]
        except OSError:
            return []

    def kill(self):
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()


def fetch(url):
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.headers.get("Content-Type", ""), response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.headers.get("Content-Type", ""), error.read()
    except OSError as error:
        raise Failure(f"GET {url}: {error}")


def check_assets(base):
    """The three files the page is made of, with the types a browser insists on for them."""
    for path, kind in (("/", "text/html"), ("/app.js", "javascript"), ("/style.css", "text/css")):
        status, content_type, body = fetch(base + path)
        check(status == 200, f"GET {path}: status {status}, expected 200")
        check(kind in content_type, f"GET {path}: Content-Type {content_type!r}, expected {kind}")
        check(len(body) > 0, f"GET {path}: empty body")


# ---- the browsers


class Browser:
    def __init__(self, label, workdir):
        self.label = label
        self.profile = tempfile.mkdtemp(prefix=f"profile-{label}-", dir=workdir)
        options = webdriver.ChromeOptions()
        options.binary_location = CHROMIUM
        for argument in CHROMIUM_ARGS:
            options.add_argument(argument)
        options.add_argument(f"--user-data-dir={self.profile}")
        options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
        self.driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
        self.driver.set_window_size(1100, 800)
        self.console = []

    def wait(self, timeout, condition, what):
        try:
            return WebDriverWait(self.driver, timeout, poll_frequency=0.05).until(lambda _: condition())
        except TimeoutException:
            raise Failure(f"browser {self.label}: {what} (waited {timeout} s)") from None

    def text(self, selector):
        return self.driver.execute_script(
            "const e = document.querySelector(arguments[0]); return e ? e.textContent : null;", selector)

    def rows(self):
        """The table's rows: [(id, [cell texts])], in page order."""
        return self.driver.execute_script(
            "return [...document.querySelectorAll('#users > tr')]"
            ".map(tr => [tr.dataset.id ?? null, [...tr.cells].map(td => td.textContent.trim())]);")

    def form_idle(self):
        return self.driver.execute_script(
            "const b = document.querySelector('#create-form [type=submit]'); return !!b && !b.disabled;")

    def fill_and_submit(self, name, email):
        self.wait(5, self.form_idle, "the form's submit button stays disabled")
        for field, value in (("name", name), ("email", email)):
            element = self.driver.find_element(By.ID, field)
            element.clear()
            element.send_keys(value)
        self.driver.find_element(By.CSS_SELECTOR, "#create-form [type=submit]").click()

    def read_console(self):
        try:
            self.console.extend(self.driver.get_log("browser"))
        except WebDriverException:
            pass
        return self.console

    def quit(self):
        try:
            self.driver.quit()
        except Exception:
            pass


def row_with(rows, name, email):
    """The id of the one row showing this name and email; None if there is none."""
    found = [row_id for row_id, cells in rows if name in cells and email in cells]
    return found[0] if len(found) == 1 else None


def create(browser, name, email, others=()):
    """Creates a user through the form and waits for its row in every browser; its id."""
    browser.fill_and_submit(name, email)
    browser.wait(5, lambda: row_with(browser.rows(), name, email), f"no row for {email} after submitting it")
    browser.wait(5, browser.form_idle, "the form's submit button stays disabled after a create")
    user_id = row_with(browser.rows(), name, email)
    for other in others:
        other.wait(5, lambda: row_with(other.rows(), name, email) == user_id, f"no row {user_id} for {email}")
    return user_id


def javascript_errors(browser):
    """Console errors other than the network ones the test causes on purpose (the 422 and 409)."""
    return [entry["message"] for entry in browser.read_console()
            if entry.get("level") == "SEVERE" and "Failed to load resource" not in entry.get("message", "")]


# ---- the test


def run(args, workdir, state):
    step(f"starting {args.server}")
    server = state["server"] = Server(args.server, workdir)
    port = server.wait_listening(10)
    base = f"http://127.0.0.1:{port}"
    step(f"server listening on port {port}")
    check_assets(base)
    step("GET /, /app.js and /style.css answer with the right types")

    a = Browser("A", workdir)
    state["browsers"].append(a)
    b = Browser("B", workdir)
    state["browsers"].append(b)
    for browser in (a, b):
        browser.driver.get(base + "/")
    for browser in (a, b):
        browser.wait(10, lambda: browser.text("#status") == "live",
                     f"#status is {browser.text('#status')!r}, not 'live'")
    step("both browsers show #status 'live'")

    # 1. A creates; B sees it without a reload.
    name, email = "Ada Lovelace", "ada@example.com"
    a.fill_and_submit(name, email)
    sent = time.monotonic()
    b.wait(5, lambda: row_with(b.rows(), name, email), f"no row for {name} <{email}> created in A")
    user_id = row_with(b.rows(), name, email)
    step(f"B shows user {user_id} created in A after {time.monotonic() - sent:.2f} s")
    a.wait(5, lambda: row_with(a.rows(), name, email) == user_id, f"A shows no row {user_id} for its own user")
    time.sleep(0.5)  # both the POST answer and the event have arrived by now: still one row each
    for browser in (a, b):
        ids = [row_id for row_id, _ in browser.rows()]
        check(ids.count(user_id) == 1, f"browser {browser.label}: row ids {ids}, expected {user_id} once")
        check(all(row_id is not None for row_id in ids), f"browser {browser.label}: a row without data-id")
    check(b.driver.find_elements(By.CSS_SELECTOR, f'#users tr[data-id="{user_id}"] button.delete'),
          f"B's row {user_id} has no button.delete")
    step("A and B show the user once each")

    # 2. B deletes; it disappears from A.
    b.driver.find_element(By.CSS_SELECTOR, f'#users tr[data-id="{user_id}"] button.delete').click()
    sent = time.monotonic()
    a.wait(5, lambda: all(row_id != user_id for row_id, _ in a.rows()), f"row {user_id} deleted in B stays")
    step(f"A lost user {user_id} deleted in B after {time.monotonic() - sent:.2f} s")
    b.wait(5, lambda: all(row_id != user_id for row_id, _ in b.rows()), f"row {user_id} stays in B")

    # 3. A validation error names its field.
    a.fill_and_submit("Bob", "not-an-email")
    a.wait(5, lambda: (a.text("#error") or "").strip(), "#error stays empty after an invalid email")
    message = a.text("#error").strip()
    check(a.driver.find_element(By.ID, "error").is_displayed(), "#error has a message but is not displayed")
    check("email" in message.lower(), f"#error says {message!r}, which does not name the field email")
    check(not a.rows(), f"the invalid user shows in the table: {a.rows()}")
    step(f"#error after an invalid email: {message!r}")

    # 4. A few users for the screenshot (and a duplicate email, which must show an error too).
    people = [("Grace Hopper", "grace@example.com"), ("Alan Turing", "alan.turing@example.org"),
              ("Edsger W. Dijkstra", "ewd@example.net")]
    for person_name, person_email in people:
        create(a, person_name, person_email, others=(b,))
    check(not a.driver.find_element(By.ID, "error").is_displayed(), "#error still shows after a good create")
    a.fill_and_submit("Grace Again", "grace@example.com")
    a.wait(5, lambda: (a.text("#error") or "").strip(), "#error stays empty after a duplicate email")
    step(f"#error after a duplicate email: {a.text('#error').strip()!r}")
    a.fill_and_submit("Barbara Liskov", "barbara@example.com")
    a.wait(5, lambda: row_with(a.rows(), "Barbara Liskov", "barbara@example.com"), "no row for Barbara Liskov")
    a.wait(5, lambda: not a.driver.find_element(By.ID, "error").is_displayed(), "#error stays after a create")
    b.wait(5, lambda: len(b.rows()) == 4, f"B shows {len(b.rows())} rows, expected 4")
    check([cells[1] for _, cells in a.rows()] == [cells[1] for _, cells in b.rows()],
          f"A and B differ: {a.rows()} vs {b.rows()}")
    ids = [int(row_id) for row_id, _ in a.rows()]
    check(ids == sorted(ids), f"rows not in id order: {ids}")
    summary = (a.text("#summary") or "").strip()
    check("4 of 4" in summary, f"#summary says {summary!r}, expected 'showing 4 of 4'")
    for browser in (a, b):
        errors = javascript_errors(browser)
        check(not errors, f"browser {browser.label}: console errors: {errors}")
    a.driver.execute_script("document.activeElement?.blur()")  # no focus ring in the picture
    screenshot = os.path.abspath(args.screenshot)
    os.makedirs(os.path.dirname(screenshot), exist_ok=True)
    check(a.driver.save_screenshot(screenshot), f"could not save the screenshot to {screenshot}")
    step(f"screenshot of A with {len(ids)} users: {screenshot}")

    # 5. SIGTERM stops the server, with both pages still connected.
    server.process.send_signal(signal.SIGTERM)
    sent = time.monotonic()
    try:
        status = server.process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        raise Failure("the server still runs 15 s after SIGTERM") from None
    check(status == 0, f"the server exited with status {status} after SIGTERM, expected 0")
    step(f"the server exited with status 0 {time.monotonic() - sent:.2f} s after SIGTERM")
    a.wait(5, lambda: a.text("#status") != "live", "#status still says 'live' with the server gone")
    step(f"A's #status after the server stopped: {a.text('#status')!r}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--server", required=True, help="path to the users-server binary")
    parser.add_argument("--screenshot", required=True, help="where to save a PNG of the page")
    args = parser.parse_args()

    missing = [path for path in (CHROMIUM, CHROMEDRIVER) if not os.access(path, os.X_OK)]
    if missing:
        print(f"SKIP: {' and '.join(missing)} not found (Debian: apt-get install chromium chromium-driver)",
              flush=True)
        return SKIP
    if not os.access(args.server, os.X_OK):
        print(f"FAIL: --server {args.server}: no such executable", flush=True)
        return 1

    workdir = tempfile.mkdtemp(prefix="users-page-test-")
    state = {"server": None, "browsers": []}
    try:
        run(args, workdir, state)
        step("PASS")
        return 0
    except Exception as error:  # any failure, with what helps to see why
        reason = str(error) if isinstance(error, Failure) else f"{type(error).__name__}: {error}"
        print(f"FAIL: {reason}", flush=True)
        server = state["server"]
        if server is not None:
            if server.output:
                print("server stdout (tail):\n  " + "\n  ".join(server.output[-10:]), flush=True)
            tail = server.stderr_tail()
            if tail:
                print("server stderr (tail):\n  " + "\n  ".join(tail), flush=True)
        for browser in state["browsers"]:
            entries = browser.read_console()
            if entries:
                print(f"browser {browser.label} console:", flush=True)
                for entry in entries[-15:]:
                    print(f"  {entry.get('level')}: {entry.get('message')}", flush=True)
        return 1
    finally:
        for browser in state["browsers"]:
            browser.quit()
        if state["server"] is not None:
            state["server"].kill()
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
