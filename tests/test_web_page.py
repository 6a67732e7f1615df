"""The service's web page in headless Chromium: enroll a person from a photo, then identify one.
Needs Debian's `chromium` and `chromium-driver` (`.ci/run` installs them) and selenium."""

import shutil
import socket
import threading
import time

import pytest

pytest.importorskip("fastapi")
webdriver = pytest.importorskip("selenium.webdriver")
import uvicorn  # noqa: E402
from enroll_fixtures import face_png, save_model  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

from kshot.enroll import Enroller  # noqa: E402
from kshot.enroll.http import create_app  # noqa: E402

CHROMIUM, DRIVER = shutil.which("chromium"), shutil.which("chromedriver")
pytestmark = pytest.mark.skipif(not (CHROMIUM and DRIVER), reason="needs Debian's chromium and chromium-driver")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def server(tmp_path):
    app = create_app(Enroller(tmp_path / "s.db", save_model(tmp_path / "m")), "s3cret")
    port = free_port()
    srv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not srv.started:
        if time.monotonic() > deadline:
            pytest.fail("the service did not start within 20 s")
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    srv.should_exit = True
    thread.join(10)


@pytest.fixture
def browser():
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=webdriver.ChromeService(executable_path=DRIVER), options=options)
    yield driver
    driver.quit()


def test_enroll_and_identify_through_the_page(server, browser, tmp_path):
    alice, bob = tmp_path / "alice.png", tmp_path / "bob.png"
    alice.write_bytes(face_png(1))
    bob.write_bytes(face_png(2))
    wait = WebDriverWait(browser, 20)
    browser.get(server + "/")
    field = lambda id_: browser.find_element(By.ID, id_)

    # without the token the page shows the service's refusal
    field("enroll-name").send_keys("alice")
    field("enroll-files").send_keys(str(alice))
    field("enroll-button").click()
    wait.until(lambda d: "Bearer" in field("enroll-status").text)

    field("token").send_keys("s3cret")
    field("enroll-button").click()
    wait.until(lambda d: field("enroll-status").text.startswith("enrolled alice"))
    assert field("enroll-name").get_attribute("value") == ""  # the form is reset for the next person
    field("enroll-name").send_keys("bob")
    field("enroll-files").send_keys(str(bob))
    field("enroll-button").click()
    wait.until(lambda d: field("enroll-status").text.startswith("enrolled bob"))

    # the class list shows both, each with a thumbnail that loaded
    wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#classes .class")) == 2)
    thumbs = browser.find_elements(By.CSS_SELECTOR, "#classes .class img")
    assert len(thumbs) == 2 and all(browser.execute_script("return arguments[0].naturalWidth", t) > 0 for t in thumbs)

    field("identify-file").send_keys(str(bob))
    field("identify-button").click()
    wait.until(lambda d: field("result").text.startswith("bob "))
