"""One small driver-neutral way to work a page, so a cross-engine test is written once.

`Browser` is the interface the tests use (go to a page, fill, click, choose files, run a
script, wait for a condition, take a screenshot). Its two implementations drive WebKitGTK
through WebKitWebDriver with Selenium, under an Xvfb of its own, and Firefox ESR through
Marionette, headless with a temporary profile. Each starts its processes itself, on free
display numbers and ports, and stops them in `close()`.
"""

from __future__ import annotations

import base64
import gc
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import warnings
from abc import ABC, abstractmethod
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from tests.support import free_port

SCREENSHOTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "screenshots"
WEBKIT_DRIVER = shutil.which("WebKitWebDriver") or "/usr/bin/WebKitWebDriver"
FIREFOX = shutil.which("firefox-esr") or "/usr/bin/firefox-esr"
XVFB = shutil.which("Xvfb") or "/usr/bin/Xvfb"
#: Host names the browsers resolve to 127.0.0.1, as a home network's DNS would.
LAN_HOST = "movievault.lan.test"
#: Seconds a page script may take (hashing a file takes a while), and a single poll.
SCRIPT_TIMEOUT = 60
POLL_TIMEOUT = 5
#: Seconds a new WebKitGTK session may take to start (it takes about one).
SESSION_START_SECONDS = 60

T = TypeVar("T")

# Runs `body` (a function body reading `arguments`) and hands its value, awaited when it
# is a promise, to the WebDriver callback; a thrown error comes back as {error}.
ASYNC_WRAPPER = """
const done = arguments[arguments.length - 1];
const args = Array.prototype.slice.call(arguments, 0, -1);
Promise.resolve().then(() => (function () { %s }).apply(window, args)).then(
  (value) => done({ value: value === undefined ? null : value }),
  (error) => done({ error: String(error) + "\\n" + (error && error.stack) }));
"""


# Collects the page's uncaught errors, rejected promises and console.error calls in
# window.mvErrors. WebDriver classic has no console events and no way to run a script
# before the page's own, so this is installed once a page has loaded: what goes wrong
# while the page's scripts first run is not seen here (the tests see it as a broken page).
WATCH_ERRORS = """
if (window.mvErrors) return;
const errors = window.mvErrors = [];
window.addEventListener("error", (event) => errors.push(`error: ${event.message}`));
window.addEventListener("unhandledrejection",
  (event) => errors.push(`unhandled rejection: ${event.reason}`));
const consoleError = console.error;
console.error = (...args) => { errors.push(`console: ${args.join(" ")}`); consoleError(...args); };
"""


class ScriptError(AssertionError):
    """A script run in the page threw."""


class Browser(ABC):
    """A page in one browser engine, worked the way a person would where it matters."""

    name: str

    def goto(self, url: str) -> None:
        """Load `url`, wait for its load event, and start collecting its errors."""
        self._goto(url)
        self.watch_errors()

    @abstractmethod
    def _goto(self, url: str) -> None:
        """Load `url` and wait for its load event."""

    def watch_errors(self) -> None:
        """Collect the page's errors from now on (see WATCH_ERRORS)."""
        self.evaluate(WATCH_ERRORS)

    def errors(self) -> list[str]:
        """The errors collected on this page since `watch_errors`."""
        self._script_timeout(POLL_TIMEOUT)  # a page stuck navigating answers no script
        try:
            return list(self.evaluate("return window.mvErrors || []"))
        finally:
            self._script_timeout(SCRIPT_TIMEOUT)

    @abstractmethod
    def _reload(self) -> None:
        """Ask the browser to reload the page."""

    def reload(self) -> None:
        """Reload the page (a "leave the page?" question is accepted) and wait for the new one."""
        self.evaluate("window.mvBeforeReload = true")
        self._reload()
        self.wait_for("return !window.mvBeforeReload && document.readyState === 'complete'")

    @abstractmethod
    def _run(self, script: str, args: tuple[Any, ...]) -> Any:
        """Run an asynchronous WebDriver script in the page."""

    @abstractmethod
    def _script_timeout(self, seconds: float) -> None:
        """How long a script may run before the driver gives up on it."""

    @abstractmethod
    def _element(self, selector: str) -> Any:
        """The first element matching the CSS selector."""

    @abstractmethod
    def _png(self) -> bytes:
        """A PNG of what the window shows."""

    @abstractmethod
    def clear_cookies(self) -> None:
        """Forget the cookies of the current page's site."""

    @abstractmethod
    def close(self) -> None:
        """End the session and stop every process this browser started."""

    @property
    @abstractmethod
    def root_pid(self) -> int:
        """The process the browser's own processes descend from (for memory figures)."""

    def evaluate(self, body: str, *args: Any) -> Any:
        """The value of `body`, a function body (`return ...`) given `arguments`, awaited."""
        answer = self._run(ASYNC_WRAPPER % body, args)
        if answer is None or "error" in answer:
            raise ScriptError(f"{self.name}: {answer and answer['error']}\n{body}")
        return answer["value"]

    def wait_for(self, predicate: str, *args: Any, timeout: float = 30.0) -> Any:
        """Poll `predicate` (a function body) until it returns something truthy; that value."""
        deadline = time.monotonic() + timeout
        value = None
        # A poll that runs while the page navigates may never be answered (WebKitGTK drops
        # it): give each poll a few seconds and count an unanswered one as "not yet".
        self._script_timeout(POLL_TIMEOUT)
        try:
            while time.monotonic() < deadline:
                try:
                    value = self.evaluate(predicate, *args)
                except Exception as error:  # each driver has its own timeout error
                    # Marionette says "Document was unloaded" for a poll cut by navigation.
                    if "Timeout" not in type(error).__name__ and "unloaded" not in str(error):
                        raise
                    continue
                if value:
                    # A click may have brought a new page: watch its errors too.
                    self.watch_errors()
                    return value
                time.sleep(0.05)
        finally:
            self._script_timeout(SCRIPT_TIMEOUT)
        raise AssertionError(
            f"{self.name}: not true within {timeout} s: {predicate} ({value!r}); "
            f"the page: {self._describe()}"
        )

    def _describe(self) -> str:
        """Where the page is and what it says, for a failure's message."""
        try:
            return str(self.evaluate(
                "return `${location.href} (${document.readyState}): `"
                " + (document.body ? document.body.innerText.slice(0, 300) : '')"
            ))
        except Exception as error:  # a hung page cannot describe itself
            return f"no answer ({type(error).__name__}: {error})"

    def fill(self, selector: str, text: str) -> None:
        """Type `text` into an empty field, key by key."""
        field = self._element(selector)
        field.clear()
        field.send_keys(text)

    def click(self, selector: str) -> None:
        """Click the element, as a pointer would (found again if htmx swapped it meanwhile)."""
        for attempt in range(3):
            try:
                self._element(selector).click()
                return
            except Exception as error:  # each driver has its own stale-element error
                if "Stale" not in type(error).__name__ or attempt == 2:
                    raise

    def set_files(self, selector: str, paths: list[Path]) -> None:
        """Choose files in a file input, as its picker would."""
        self._element(selector).send_keys("\n".join(str(path) for path in paths))

    @property
    def url(self) -> str:
        """The address of the page shown."""
        return str(self.evaluate("return location.href"))

    def screenshot(self, name: str) -> Path:
        """Save the window as test-artifacts/screenshots/<engine>-<name>.png."""
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        path = SCREENSHOTS / f"{self.name}-{name}.png"
        path.write_bytes(self._png())
        return path


def _stop(process: subprocess.Popen[bytes] | None) -> None:
    """Stop a process this module started (and its children, in its process group)."""
    if process is None or process.poll() is not None:
        return
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(10)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(10)
    except ProcessLookupError:
        pass


class SessionHung(RuntimeError):
    """A browser session that did not start in time (its driver was stopped)."""


def _kill(process: subprocess.Popen[bytes] | None) -> None:
    """Kill a process another library started (not in a process group of its own)."""
    if process is not None and process.poll() is None:
        process.kill()
        process.wait(10)


def _within(seconds: float, start: Callable[[], T], *, give_up: Callable[[], None]) -> T:
    """`start()` in a thread; after `seconds`, `give_up()` (which must end it) and raise
    SessionHung. Its own errors are raised as they are."""
    done: list[T] = []
    failed: list[BaseException] = []

    def run() -> None:
        """Start, keeping the result or the error for the caller."""
        try:
            done.append(start())
        except BaseException as error:
            failed.append(error)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(seconds)
    if thread.is_alive():
        give_up()
        thread.join(30)
        raise SessionHung(f"the session did not start in {seconds:g} s")
    if failed:
        raise failed[0]
    return done[0]


def start_xvfb() -> tuple[subprocess.Popen[bytes], str]:
    """An Xvfb on a display number it picks itself (free); the process and its DISPLAY."""
    read, write = os.pipe()
    process = subprocess.Popen(
        [XVFB, "-displayfd", str(write), "-screen", "0", "1280x900x24", "-nolisten", "tcp"],
        pass_fds=(write,), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    os.close(write)
    with os.fdopen(read) as answer:
        number = answer.readline().strip()
    if not number:
        _stop(process)
        raise RuntimeError("Xvfb did not start")
    return process, f":{number}"


class WebKit(Browser):
    """WebKitGTK (Safari's engine) through WebKitWebDriver and Selenium, under Xvfb."""

    name = "webkit"

    def __init__(self, proxy_port: int | None = None) -> None:
        # Once in a while (under load) WebKitWebDriver never answers the new session: its
        # browser did not come up, and Selenium's request has no time limit. Such a start
        # is stopped and made again, once; a second one is a failure.
        try:
            self._start(proxy_port)
        except SessionHung as hung:
            print(f"webkit: {hung}; starting it again", file=sys.stderr)
            self._start(proxy_port)

    def _start(self, proxy_port: int | None) -> None:
        """Start Xvfb, WebKitWebDriver and a session; stop them all if the session fails."""
        from selenium import webdriver
        from selenium.webdriver.webkitgtk.service import Service

        self._xvfb, display = start_xvfb()
        try:
            options = webdriver.WebKitGTKOptions()
            options.set_capability("webkitgtk:browserOptions", {"args": ["--automation"]})
            options.set_capability("unhandledPromptBehavior", "accept")
            if proxy_port is not None:
                # WebKitGTK has no host-resolver rules: the LAN name is reached through a
                # proxy that is the app's own server (it takes absolute request targets).
                options.set_capability("proxy", {
                    "proxyType": "manual", "httpProxy": f"127.0.0.1:{proxy_port}",
                    "noProxy": ["127.0.0.1", "localhost"],
                })
            service = Service(executable_path=WEBKIT_DRIVER, port=free_port(),
                              env={**os.environ, "DISPLAY": display})
            self.driver = _within(
                SESSION_START_SECONDS,
                lambda: webdriver.WebKitGTK(service=service, options=options),
                give_up=lambda: _kill(getattr(service, "process", None)),
            )
            self.driver.set_window_rect(0, 0, 1280, 900)
            self.driver.set_script_timeout(SCRIPT_TIMEOUT)
        except BaseException:
            _stop(self._xvfb)
            raise

    def _goto(self, url: str) -> None:
        self.driver.get(url)

    def _reload(self) -> None:
        self.driver.refresh()

    def _run(self, script: str, args: tuple[Any, ...]) -> Any:
        return self.driver.execute_async_script(script, *args)

    def _script_timeout(self, seconds: float) -> None:
        self.driver.set_script_timeout(seconds)

    def _element(self, selector: str) -> Any:
        from selenium.webdriver.common.by import By

        # find_element answers "no such element" in WebKitWebDriver where find_elements
        # finds it.
        found = self.driver.find_elements(By.CSS_SELECTOR, selector)
        assert found, f"webkit: nothing matches {selector!r}"
        return found[0]

    def _png(self) -> bytes:
        return bytes(self.driver.get_screenshot_as_png())

    def clear_cookies(self) -> None:
        self.driver.delete_all_cookies()

    @property
    def root_pid(self) -> int:
        return int(self.driver.service.process.pid)  # WebKitWebDriver

    def close(self) -> None:
        try:
            self.driver.quit()
        finally:
            _stop(self._xvfb)


FIREFOX_PREFS = {
    "browser.shell.checkDefaultBrowser": False,
    "browser.aboutwelcome.enabled": False,
    "browser.startup.homepage_override.mstone": "ignore",
    "datareporting.policy.dataSubmissionEnabled": False,
    "toolkit.telemetry.reportingpolicy.firstRun": False,
    "app.update.disabledForTesting": True,
    # A blank first window and no fetches of remote settings: a session starts sooner.
    "browser.startup.page": 0,
    "browser.startup.homepage": "about:blank",
    "browser.newtabpage.enabled": False,
    "services.settings.server": "data:,#remote-settings-off",
    "network.connectivity-service.enabled": False,
    "browser.discovery.enabled": False,
    # The LAN name resolves to this machine, as a home network's DNS would answer.
    "network.dns.localDomains": LAN_HOST,
}


class Firefox(Browser):
    """Firefox ESR (Gecko) through Marionette, headless, with a temporary profile."""

    name = "firefox"

    def __init__(self, profile: Path) -> None:
        with warnings.catch_warnings():
            # Its helper packages import telnetlib and ask distro for the old platform tuple.
            warnings.simplefilter("ignore", DeprecationWarning)
            from marionette_driver.marionette import Marionette

        port = free_port()
        profile.mkdir(parents=True, exist_ok=True)
        prefs = {**FIREFOX_PREFS, "marionette.port": port}
        (profile / "user.js").write_text(
            "".join(f'user_pref("{k}", {_js(v)});\n' for k, v in prefs.items())
        )
        self._process: subprocess.Popen[bytes] | None = subprocess.Popen(
            [FIREFOX, "--marionette", "--headless", "--no-remote", "--profile", str(profile)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
            env={**os.environ, "MOZ_HEADLESS_WIDTH": "1280", "MOZ_HEADLESS_HEIGHT": "900"},
        )
        try:
            self.client = Marionette(host="127.0.0.1", port=port, socket_timeout=120)
            with warnings.catch_warnings():
                # Its wait for the port leaves its probing sockets to the garbage collector.
                warnings.simplefilter("ignore", ResourceWarning)
                self.client.start_session(
                    {"strictFileInteractability": False, "unhandledPromptBehavior": "accept"},
                    timeout=90,
                )
                gc.collect()
            self.client.timeout.script = SCRIPT_TIMEOUT
        except BaseException:
            _stop(self._process)
            raise

    def _goto(self, url: str) -> None:
        self.client.navigate(url)

    def _reload(self) -> None:
        self.client.refresh()

    def _run(self, script: str, args: tuple[Any, ...]) -> Any:
        # In the page itself, not a sandbox: the tests read what the page's scripts set.
        return self.client.execute_async_script(
            script, script_args=list(args), new_sandbox=False, sandbox=None
        )

    def _script_timeout(self, seconds: float) -> None:
        self.client.timeout.script = seconds

    def _element(self, selector: str) -> Any:
        found = self.client.find_elements("css selector", selector)
        assert found, f"firefox: nothing matches {selector!r}"
        return found[0]

    def _png(self) -> bytes:
        return base64.b64decode(self.client.screenshot(full=False))

    def clear_cookies(self) -> None:
        self.client.delete_all_cookies()

    @property
    def root_pid(self) -> int:
        assert self._process is not None
        return self._process.pid

    def close(self) -> None:
        try:
            self.client.delete_session()
        finally:
            _stop(self._process)
            self._process = None


def _js(value: object) -> str:
    """A pref's value as user.js writes it."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    return f'"{value}"'


def missing(engine: str) -> str:
    """Why `engine` cannot run here ("" when it can)."""
    needs = {"webkit": [WEBKIT_DRIVER, XVFB], "firefox": [FIREFOX]}[engine]
    absent = [path for path in needs if not os.path.exists(path)]
    if absent:
        script = {"webkit": "scripts/install-webkit", "firefox": "scripts/install-firefox"}
        return f"{', '.join(absent)} not installed ({script[engine]} installs it)"
    return ""
