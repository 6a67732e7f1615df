"""The service's web page in headless Chromium, as a receptionist uses it: enroll from a photo and
from the camera, add a photo, identify a known person and a stranger, move the threshold, rename,
delete. Uses the committed face model and real ORL photos of people it never trained on. Needs
Debian's `chromium` and `chromium-driver` (`.ci/run` installs them) and selenium.
`KSHOT_SCREENSHOT=docs/enrollment-page.png` also saves the page as the docs show it."""

import os
import shutil
import socket
import threading
import time
from pathlib import Path

import pytest

pytest.importorskip("fastapi")
webdriver = pytest.importorskip("selenium.webdriver")
import uvicorn  # noqa: E402
from selenium.common.exceptions import StaleElementReferenceException  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

from kshot.enroll import Enroller  # noqa: E402
from kshot.enroll.http import create_app  # noqa: E402

CHROMIUM, DRIVER = shutil.which("chromium"), shutil.which("chromedriver")
FACE_MODEL = Path(__file__).resolve().parents[1] / "checkpoints" / "protonet-orl-openset.safetensors"
pytestmark = pytest.mark.skipif(not (CHROMIUM and DRIVER), reason="needs Debian's chromium and chromium-driver")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def faces(data_dir):
    root = data_dir / "att_faces_orl"
    if not (root / "s31").is_dir():
        pytest.skip("ORL faces not in the data directory")
    return lambda person, n: str(root / f"s{person}" / f"{n}.pgm")


@pytest.fixture
def server(tmp_path):
    app = create_app(Enroller(tmp_path / "s.db", FACE_MODEL), "s3cret", "look")
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
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-dev-shm-usage",
        "--disable-gpu",
        "--use-fake-ui-for-media-stream",
        "--use-fake-device-for-media-stream",
        "--window-size=1280,1000",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
    ):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=webdriver.ChromeService(executable_path=DRIVER), options=options)
    yield driver
    driver.quit()


def test_a_receptionist_enrolls_identifies_renames_and_deletes(server, browser, faces):
    # The page re-renders its lists after each answer: an element found just before that goes
    # stale, and the condition is simply evaluated again.
    wait = WebDriverWait(browser, 30, ignored_exceptions=(StaleElementReferenceException,))
    field = lambda id_: browser.find_element(By.ID, id_)
    people = lambda: browser.execute_script(  # one read: the list may be re-rendering
        "return [...document.querySelectorAll('#people .person')].map((p) => p.dataset.name)"
    )
    browser.get(server + "/")

    # the read token lists and identifies but cannot enroll
    field("token").send_keys("look")
    field("connect").click()
    wait.until(lambda d: field("model").text.startswith("model: protonet"))
    field("enroll-name").send_keys("Ada")
    field("enroll-files").send_keys(faces(31, 1))
    field("enroll-button").click()
    wait.until(lambda d: "write token" in field("enroll-status").text)

    field("enroll-files").clear()  # the refused request's photo stays chosen otherwise
    field("token").clear()
    field("token").send_keys("s3cret")
    field("connect").click()
    for name, person in (("Ada", 31), ("Grace", 32), ("Alan", 33)):
        field("enroll-name").clear()
        field("enroll-name").send_keys(name)
        field("enroll-files").send_keys(faces(person, 1))
        field("enroll-button").click()
        wait.until(lambda d, name=name: field("enroll-status").text.startswith(f"enrolled {name}"))
    wait.until(lambda d: people() == ["Ada", "Alan", "Grace"])

    # the camera (Chromium's fake device) gives a photo that enrolls like a file
    field("camera-button").click()
    wait.until(lambda d: field("snap-button").is_displayed())
    wait.until(lambda d: d.execute_script("return document.getElementById('camera').videoWidth") > 0)
    field("snap-button").click()
    wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#snaps img")) == 1)
    field("enroll-name").send_keys("Camera visitor")
    field("enroll-button").click()
    wait.until(lambda d: field("enroll-status").text.startswith("enrolled Camera visitor (1 photo)"))
    wait.until(lambda d: people() == ["Ada", "Alan", "Camera visitor", "Grace"])

    # a second photo for Ada, through her card's button (which opens the page's file chooser)
    card = lambda name: browser.find_element(By.CSS_SELECTOR, f'#people .person[data-name="{name}"]')
    card("Ada").find_element(By.XPATH, ".//button[text()='Add photo']").click()
    browser.find_element(By.ID, "add-photo-input").send_keys(faces(31, 2))
    wait.until(lambda d: field("enroll-status").text == "added a photo to Ada (2 in all)")
    wait.until(lambda d: card("Ada").find_element(By.CLASS_NAME, "count").text == "2 photos")

    # a known face gets its name with a confidence bar; a stranger is "unknown"
    field("identify-file").send_keys(faces(33, 6))
    field("identify-button").click()
    wait.until(lambda d: field("verdict").text == "Alan")
    bars = browser.find_elements(By.CSS_SELECTOR, "#matches .match")
    assert len(bars) == 3 and bars[0].get_attribute("data-name") == "Alan"
    field("identify-file").send_keys(faces(40, 3))
    field("identify-button").click()
    wait.until(lambda d: field("verdict").text == "Unknown person")

    # the threshold control shows its effect at once: set it near 0, and the stranger gets a name
    browser.execute_script(
        "const s = document.getElementById('threshold'); s.value = 0.01; s.dispatchEvent(new Event('input'))"
    )
    wait.until(lambda d: field("verdict").text != "Unknown person")

    # rename and delete through the cards (prompt and confirm dialogs)
    card("Grace").find_element(By.XPATH, ".//button[text()='Rename']").click()
    alert = wait.until(lambda d: d.switch_to.alert)
    alert.send_keys("Grace Hopper")
    alert.accept()
    wait.until(lambda d: "Grace Hopper" in people())
    card("Camera visitor").find_element(By.XPATH, ".//button[text()='Delete']").click()
    wait.until(lambda d: d.switch_to.alert).accept()
    wait.until(lambda d: people() == ["Ada", "Alan", "Grace Hopper"])
    thumbs = browser.find_elements(By.CSS_SELECTOR, "#people img")
    assert thumbs and all(browser.execute_script("return arguments[0].naturalWidth", t) > 0 for t in thumbs)

    # back to the model's threshold, and the stranger is unknown again
    field("threshold-reset").click()
    wait.until(lambda d: "threshold saved" in field("identify-status").text)
    field("identify-button").click()
    wait.until(lambda d: field("verdict").text == "Unknown person")
    if os.environ.get("KSHOT_SCREENSHOT"):
        field("identify-file").send_keys(faces(31, 8))
        field("identify-button").click()
        wait.until(lambda d: field("verdict").text == "Ada")
        browser.save_screenshot(os.environ["KSHOT_SCREENSHOT"])
