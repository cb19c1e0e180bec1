"""The documentation site, built with warnings as errors and read in a real browser.

Builds docs/ with `python -m sphinx -W`, serves the result from 127.0.0.1 (a server this module starts
and stops) and opens every derivation page in headless Chromium: MathJax has typeset the mathematics
(no raw `$$` or `\\frac` left in the visible text), every "Implemented by" name shows a code block holding
that function's `def` (or `class`) line, internal links and images resolve, and the console is clean.
Screenshots of the dense backward, convolution and VAE pages go to a temporary folder and are copied to
docs/_build/screenshots/.

Needs the [docs] extra and Debian's chromium and chromium-driver; skipped with the install command
otherwise. Run: python -m pytest -m docs tests/test_docs_site.py
"""
import functools
import http.server
import importlib.util
import shutil
import subprocess
import sys
import threading
from pathlib import Path
from urllib.parse import urldefrag, urljoin, urlparse

import pytest

pytestmark = pytest.mark.docs

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
MISSING = [name for name in ("sphinx", "myst_nb", "selenium") if importlib.util.find_spec(name) is None]
if MISSING:
    pytest.skip(f"{', '.join(MISSING)} missing: pip install -e '.[docs]'", allow_module_level=True)
if not (CHROMIUM and CHROMEDRIVER):
    pytest.skip("headless Chromium missing: apt-get install -y chromium chromium-driver", allow_module_level=True)

from selenium import webdriver  # noqa: E402
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402

DERIVATIONS = sorted(p.stem for p in (ROOT / "derivations").glob("*.md") if p.name != "README.md")
SCREENSHOTS = {"dense-autoencoder": "#dense-backward", "convolution": "", "vae": ""}


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    out = tmp_path_factory.mktemp("site") / "html"
    run = subprocess.run([sys.executable, "-m", "sphinx", "-W", "-q", "-b", "html", "docs", str(out)],
                         cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert run.returncode == 0, f"sphinx -W failed:\n{run.stdout[-4000:]}\n{run.stderr[-4000:]}"
    return out


@pytest.fixture(scope="module")
def server(site):
    handler = functools.partial(_QuietHandler, directory=str(site))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/"
    httpd.shutdown()
    httpd.server_close()
    thread.join(timeout=10)


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def browser():
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--window-size=1400,1800"):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(60)
    driver.set_script_timeout(60)
    yield driver
    driver.quit()


@pytest.fixture(scope="module")
def screenshot_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("screenshots")


def _typeset(driver):
    """Wait for MathJax 3 to finish typesetting; fails if MathJax never loaded."""
    return driver.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "const start = Date.now();"
        "(function wait() {"
        "  if (window.MathJax && MathJax.startup && MathJax.startup.promise) {"
        "    MathJax.startup.promise.then(() => done(true), e => done('error: ' + e));"
        "  } else if (Date.now() - start > 30000) { done(false); } else { setTimeout(wait, 100); }"
        "})();")


@pytest.mark.parametrize("page", DERIVATIONS)
def test_derivation_page_reads_in_a_browser(page, site, server, browser, screenshot_dir):
    url = urljoin(server, f"derivations/{page}.html")
    browser.get_log("browser")  # drop what an earlier page left
    browser.get(url)
    assert _typeset(browser) is True, f"{page}: MathJax did not load or failed"

    source = (ROOT / "derivations" / f"{page}.md").read_text(encoding="utf-8")
    if "$" in source:
        assert browser.find_elements(By.CSS_SELECTOR, "mjx-container"), f"{page}: no MathJax output"
    text = browser.find_element(By.TAG_NAME, "body").text
    assert "$$" not in text, f"{page}: raw $$ in the visible text"
    assert "\\frac" not in text, f"{page}: raw \\frac in the visible text"

    # Every "Implemented by:" name has a live-code block showing its def/class line.
    blocks = browser.find_elements(By.CSS_SELECTOR, ".live-code")
    shown = [(b.find_element(By.CSS_SELECTOR, ".caption-text").text, b.find_element(By.TAG_NAME, "pre").text)
             for b in blocks]
    named = []
    for paragraph in browser.find_elements(By.TAG_NAME, "p"):
        if paragraph.text.startswith("Implemented by"):
            named += [c.text for c in paragraph.find_elements(By.TAG_NAME, "code")
                      if c.text.startswith("scratch_ae.")]
    if "Implemented by" in source:
        assert named, f"{page}: the source names implementations but the page shows none"
    for dotted in named:
        last = dotted.rsplit(".", 1)[-1]
        codes = [code for caption, code in shown if caption.split(",")[0].strip() == dotted]
        assert codes, f"{page}: no code block below 'Implemented by: {dotted}'"
        assert any(f"def {last}(" in code or f"class {last}" in code for code in codes), \
            f"{page}: the block for {dotted} lacks its def line"

    # Internal links land on a page that exists and, for a fragment, on an element with that id.
    own = urlparse(server).netloc
    hrefs = {a.get_attribute("href") for a in browser.find_elements(By.CSS_SELECTOR, "a[href]")}
    for href in sorted(h for h in hrefs if h and urlparse(h).netloc == own):
        target, fragment = urldefrag(href)
        path = site / urlparse(target).path.lstrip("/")
        if path.is_dir():
            path = path / "index.html"
        assert path.is_file(), f"{page}: broken link {href}"
        if fragment and path.suffix == ".html":
            html = path.read_text(encoding="utf-8")
            assert f'id="{fragment}"' in html, f"{page}: link {href} names a missing anchor"

    broken = browser.execute_script(
        "return [...document.images].filter(i => !(i.complete && i.naturalWidth > 0)).map(i => i.src);")
    assert not broken, f"{page}: images that did not load: {broken}"

    errors = [entry for entry in browser.get_log("browser") if entry["level"] == "SEVERE"]
    assert not errors, f"{page}: console errors: {errors}"

    if page in SCREENSHOTS:
        if SCREENSHOTS[page]:
            browser.get(url + SCREENSHOTS[page])
            _typeset(browser)
        shot = screenshot_dir / f"{page}.png"
        assert browser.save_screenshot(str(shot)), f"{page}: screenshot failed"
        keep = ROOT / "docs" / "_build" / "screenshots"
        keep.mkdir(parents=True, exist_ok=True)
        shutil.copy2(shot, keep / shot.name)
