"""The search page in a real headless Chromium (selenium), against the real server and index.

Needs Debian's chromium and chromium-driver (`make browser`). Without them these tests skip,
except under CI (the CI environment variable set to anything but "", 0, false or no), where a missing
browser is a failure.
"""
from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
DESKTOP = (1280, 900)
PHONE = (375, 800)
WAIT = 30

CII_QUESTION = "How does China protect critical information infrastructure?"
CII_SECTION = "(IV) Enhancing the Protection of Critical Information Infrastructure"
AI_SECTION = "(V) Adhere to a People-Centered Approach"
OFF_TOPIC = "Who won the football world cup in 2022?"


def _unavailable(reason: str):
    message = f"{reason}: run `make browser` (apt-get install chromium chromium-driver) to run the browser tests"
    if os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no"):
        pytest.fail(f"{message} -- CI is set, so the browser tests must run", pytrace=False)
    pytest.skip(message)


try:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support import expected_conditions as EC
    from selenium.webdriver.support.ui import WebDriverWait
except ImportError:  # pragma: no cover - selenium is a dev requirement
    webdriver = None


@pytest.fixture(scope="module")
def driver():
    if webdriver is None:
        _unavailable("selenium is not installed")
    missing = [p for p in (CHROMIUM, CHROMEDRIVER) if not (os.path.isfile(p) and os.access(p, os.X_OK))]
    if missing:
        _unavailable(f"{' and '.join(missing)} not found")
    profile = tempfile.mkdtemp(prefix="reportqa-chromium-")
    options = webdriver.ChromeOptions()
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--no-first-run", f"--user-data-dir={profile}"):
        options.add_argument(arg)
    options.binary_location = CHROMIUM
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    drv = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    drv.set_page_load_timeout(WAIT)
    try:
        yield drv
    finally:
        drv.quit()
        shutil.rmtree(profile, ignore_errors=True)


# ------------------------------------------------------------------ helpers
def open_page(driver, server, fragment: str = "", size=DESKTOP):
    """A fresh document (so earlier tests leave nothing behind), at the given window size."""
    driver.set_window_size(*size)
    driver.get("about:blank")
    driver.get(server.url + "/" + fragment)
    wait(driver).until(lambda d: d.execute_script("return document.readyState") == "complete")
    # The table of contents has loaded once the section filter has more than "Whole report".
    wait(driver).until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#scope option")) > 1)


def wait(driver, timeout: float = WAIT):
    return WebDriverWait(driver, timeout)


def wait_for_results(driver):
    wait(driver).until(lambda d: d.find_element(By.ID, "results-view").is_displayed()
                       and d.find_element(By.ID, "results-view").get_attribute("aria-busy") == "false"
                       and d.find_elements(By.CSS_SELECTOR, "#results-list > li"))
    return driver.find_elements(By.CSS_SELECTOR, "#results-list > li")


def ask(driver, question: str):
    box = driver.find_element(By.ID, "question")
    box.clear()
    box.send_keys(question)
    box.send_keys(Keys.ENTER)


def wait_for_section(driver, title_start: str):
    wait(driver).until(lambda d: d.find_element(By.ID, "section-view").is_displayed()
                       and d.find_element(By.ID, "section-view").get_attribute("aria-busy") == "false"
                       and d.find_elements(By.ID, "section-title")
                       and d.find_element(By.ID, "section-title").text.startswith(title_start))
    return driver.find_element(By.ID, "section-view")


def no_horizontal_scroll(driver) -> bool:
    return driver.execute_script("return document.documentElement.scrollWidth <= window.innerWidth")


# -------------------------------------------------------------------- tests
def test_question_to_cited_passage_in_its_section(driver, server):
    open_page(driver, server)
    # The question box is found through its visible label.
    label = driver.find_element(By.CSS_SELECTOR, "label[for='question']")
    assert label.text == "Your question"
    ask(driver, CII_QUESTION)
    results = wait_for_results(driver)

    first = results[0]
    assert CII_SECTION in first.find_element(By.CSS_SELECTOR, ".breadcrumb").text
    marks = first.find_elements(By.CSS_SELECTOR, ".passage mark")
    assert marks and marks[0].text.strip(), "the highlight sentence is marked in the passage"
    assert marks[0].text in first.find_element(By.CSS_SELECTOR, ".passage").text
    assert "Score" in first.find_element(By.CSS_SELECTOR, ".score").text
    assert "found" in driver.find_element(By.ID, "status").get_attribute("textContent")  # announced
    assert driver.find_elements(By.ID, "good-match")
    assert "q=" in driver.current_url  # the results are linkable

    shots = Path(tempfile.mkdtemp(prefix="reportqa-screenshots-"))
    shot = shots / "results.png"
    assert driver.save_screenshot(str(shot))
    print(f"screenshot of the results: {shot}")

    chunk_id = first.get_attribute("data-chunk")
    link = first.find_element(By.LINK_TEXT, "Read in section")
    link.click()
    view = wait_for_section(driver, CII_SECTION)
    assert "section=p2.iv" in driver.current_url and f"chunk={chunk_id}" in driver.current_url
    cited = view.find_element(By.CSS_SELECTOR, "mark.cited")
    assert cited.is_displayed()
    # The cited passage is the chunk the result quoted, and it was scrolled into view.
    assert marks[0].text in view.find_element(By.CSS_SELECTOR, ".section-text").text
    in_view = driver.execute_script(
        "const r = arguments[0].getBoundingClientRect(); return r.bottom > 0 && r.top < window.innerHeight;", cited)
    assert in_view
    # The table of contents marks where we are, and the way back to the results works.
    current = driver.find_element(By.CSS_SELECTOR, "#toc a[aria-current='location']")
    assert CII_SECTION.split(" ", 1)[1] in current.text
    driver.find_element(By.ID, "back-to-results").click()
    assert wait_for_results(driver)[0].get_attribute("data-chunk") == chunk_id


def test_table_of_contents_opens_a_section(driver, server):
    open_page(driver, server)
    toc = driver.find_element(By.CSS_SELECTOR, "nav#toc")
    assert toc.get_attribute("aria-labelledby") == "toc-heading"
    assert "PART 3" in toc.text
    toc.find_element(By.PARTIAL_LINK_TEXT, AI_SECTION).click()
    view = wait_for_section(driver, AI_SECTION)
    assert "section=p3.v" in driver.current_url
    assert "Artificial Intelligence" in view.find_element(By.ID, "section-title").text
    assert len(view.find_element(By.CSS_SELECTOR, ".section-text").text) > 200
    assert not view.find_elements(By.CSS_SELECTOR, "mark.cited")  # no passage was cited
    # Keyboard users land on the section heading.
    assert driver.execute_script("return document.activeElement.id") == "section-title"


def test_section_link_is_shareable(driver, server, client):
    chunk = client.get("/sections/p2.iv").json()["chunks"][1]
    open_page(driver, server, f"#section=p2.iv&chunk={chunk['chunk_id']}")
    view = wait_for_section(driver, CII_SECTION)
    cited = view.find_element(By.ID, "cited-passage")
    assert cited.is_displayed()
    assert chunk["text"][:60] in " ".join(m.text for m in view.find_elements(By.CSS_SELECTOR, "mark.cited"))


def test_unanswerable_question_says_no_good_match(driver, server):
    open_page(driver, server)
    ask(driver, OFF_TOPIC)
    results = wait_for_results(driver)
    notice = driver.find_element(By.ID, "no-match")
    assert notice.is_displayed()
    assert "No good match" in notice.text
    assert "football" in notice.find_element(By.ID, "no-match-reasons").text  # what the report lacks
    assert "No good match" in driver.find_element(By.ID, "status").get_attribute("textContent")
    # The passages are still shown, each labelled as a weak match.
    assert all("weak match" in r.text.lower() for r in results)
    assert not driver.find_elements(By.ID, "good-match")


def test_empty_question_shows_a_validation_message(driver, server):
    open_page(driver, server)
    ask(driver, "   ")
    message = wait(driver).until(EC.visibility_of_element_located((By.ID, "question-error")))
    assert "question" in message.text.lower()
    box = driver.find_element(By.ID, "question")
    assert box.get_attribute("aria-invalid") == "true"
    assert driver.execute_script("return document.activeElement.id") == "question"
    assert not driver.find_element(By.ID, "results-view").is_displayed()

    # A linked empty question reaches the API, whose 422 is shown with its error text.
    driver.get(server.url + "/#q=%20&k=5")
    error = wait(driver).until(EC.visibility_of_element_located((By.ID, "error")))
    assert "question is empty" in error.text
    assert "422" in error.text
    # So is a rejected option, with its detail.
    driver.get(server.url + "/#q=cybercrime&k=0")
    wait(driver).until(lambda d: "greater than or equal to 1" in d.find_element(By.ID, "error").text)
    assert driver.find_element(By.ID, "k").get_attribute("value") == "0"  # the form shows what was sent
    # And the page recovers once the option is fixed.
    driver.find_element(By.ID, "k").clear()
    driver.find_element(By.ID, "k").send_keys("5")
    ask(driver, CII_QUESTION)
    wait_for_results(driver)
    assert not driver.find_element(By.ID, "error").is_displayed()


def test_phone_width_without_horizontal_scroll_and_keyboard_use(driver, server):
    try:
        open_page(driver, server, size=PHONE)
        assert driver.execute_script("return window.innerWidth") <= PHONE[0]
        assert no_horizontal_scroll(driver), "home page scrolls sideways at phone width"

        # Keyboard only: TAB from the body reaches the question box.
        driver.execute_script("document.activeElement && document.activeElement.blur(); window.scrollTo(0, 0);")
        assert driver.execute_script("return document.activeElement === document.body")
        for _ in range(5):
            ActionChains(driver).send_keys(Keys.TAB).perform()
            if driver.execute_script("return document.activeElement.id") == "question":
                break
        assert driver.execute_script("return document.activeElement.id") == "question"
        outline = driver.execute_script("return getComputedStyle(document.activeElement).outlineStyle")
        assert outline != "none", "focused input has no visible focus style"

        ActionChains(driver).send_keys(CII_QUESTION, Keys.ENTER).perform()
        wait_for_results(driver)
        assert no_horizontal_scroll(driver), "results scroll sideways at phone width"

        # ... then TAB on to the first "Read in section" link and follow it with Enter.
        for _ in range(40):
            ActionChains(driver).send_keys(Keys.TAB).perform()
            if driver.execute_script("return document.activeElement.classList.contains('read-link')"):
                break
        else:
            pytest.fail("no 'Read in section' link reachable by TAB")
        ActionChains(driver).send_keys(Keys.ENTER).perform()
        wait_for_section(driver, "(")
        assert driver.find_element(By.CSS_SELECTOR, "mark.cited").is_displayed()
        assert no_horizontal_scroll(driver), "section view scrolls sideways at phone width"
    finally:
        driver.set_window_size(*DESKTOP)


def test_page_loads_nothing_from_other_hosts(driver, server):
    open_page(driver, server)
    ask(driver, CII_QUESTION)
    wait_for_results(driver)
    driver.find_element(By.LINK_TEXT, "Read in section").click()
    wait_for_section(driver, "(")
    urls = driver.execute_script("return performance.getEntriesByType('resource').map(e => e.name)")
    assert any("/query?" in u for u in urls) and any("/sections" in u for u in urls)
    outside = [u for u in urls if not u.startswith(server.url + "/")]
    assert not outside, f"requests outside the server: {outside}"
    # Nothing in the markup points elsewhere either (fonts, stylesheets, scripts, images).
    external = driver.execute_script("""
        return [...document.querySelectorAll('[src], link[href]')]
          .map(e => e.getAttribute('src') || e.getAttribute('href'))
          .filter(u => /^(https?:)?\\/\\//i.test(u));""")
    assert external == []
    # ... and the script ran without errors.
    errors = [e for e in driver.get_log("browser") if e["level"] == "SEVERE" and e.get("source") != "network"]
    assert not errors, errors


def test_text_from_the_api_is_escaped(driver, server):
    question = '<img src=x onerror="window.__pwned=1"> <b>critical</b> infrastructure'
    open_page(driver, server, "#q=" + quote(question) + "&k=3")
    wait_for_results(driver)
    assert question in driver.find_element(By.ID, "results-meta").text
    assert driver.find_element(By.ID, "question").get_attribute("value") == question
    assert not driver.find_elements(By.CSS_SELECTOR, "#results-view img, #results-view b")
    assert driver.execute_script("return window.__pwned") is None


def test_options_are_sent_and_kept_in_the_link(driver, server):
    open_page(driver, server)
    driver.find_element(By.ID, "k").clear()
    driver.find_element(By.ID, "k").send_keys("3")
    driver.find_element(By.CSS_SELECTOR, "#mode option[value='bm25']").click()
    driver.find_element(By.CSS_SELECTOR, "#scope option[value='p3']").click()
    driver.find_element(By.ID, "group").click()
    ask(driver, "data security")
    results = wait_for_results(driver)
    assert 1 <= len(results) <= 3
    crumbs = [r.find_element(By.CSS_SELECTOR, ".breadcrumb").text for r in results]
    assert all(c.startswith("PART 3") for c in crumbs), crumbs
    assert len(set(crumbs)) == len(crumbs), "grouped by section: one passage per section"
    chunks = [r.get_attribute("data-chunk") for r in results]
    url = driver.current_url
    for part in ("k=3", "mode=bm25", "scope=p3", "group=1"):
        assert part in url
    # Reloading the link restores the form and the same results.
    open_page(driver, server, "#" + url.split("#", 1)[1])
    again = wait_for_results(driver)
    assert [r.get_attribute("data-chunk") for r in again] == chunks
    assert driver.find_element(By.ID, "k").get_attribute("value") == "3"
    assert driver.find_element(By.ID, "mode").get_attribute("value") == "bm25"
    assert driver.find_element(By.ID, "scope").get_attribute("value") == "p3"
    assert driver.find_element(By.ID, "group").is_selected()


# ------------------------------------------------------------ the library
@pytest.fixture(scope="module")
def library_server(settings, embedder, passage_embedder, tmp_path_factory):
    """A library of three reports, one of them in two editions and one a PDF with printed page labels."""
    from index.library import Library
    from library_samples import RIVER, RIVER_NEXT, TRANSIT, pdf_report, report, serve

    folder = tmp_path_factory.mktemp("page-library")
    index_dir = tmp_path_factory.mktemp("page-library-index") / "index"
    library = Library(settings.model_copy(update={"index_dir": index_dir}), embedder=passage_embedder)
    (folder / "river-quality.md").write_bytes(report("River Water Quality Review", RIVER))
    (folder / "urban-transit.md").write_bytes(report("Urban Transit Plan", TRANSIT))
    pdf_report(folder / "harbour-works.pdf", "Harbour Works Programme", [
        ("1 Breakwater", "The breakwater will be raised by one metre against winter storm surges."),
        ("2 Quays", "Two quays will be rebuilt with piles driven into the bedrock."),
    ])
    assert not library.add([folder]).failures
    newer = tmp_path_factory.mktemp("page-library-next") / "river-quality.md"
    newer.write_bytes(report("River Water Quality Review", RIVER_NEXT))
    assert library.add([newer]).added
    live = serve(settings, embedder, passage_embedder, index_dir=index_dir)
    yield live
    live.stop()


def wait_for_documents(driver):
    wait(driver).until(lambda d: d.find_elements(By.CSS_SELECTOR, "#documents-list > li.doc-item"))
    return driver.find_elements(By.CSS_SELECTOR, "#documents-list > li.doc-item")


def test_documents_are_listed_and_a_filter_searches_one_with_its_edition_cited(driver, library_server):
    listed = httpx.get(library_server.url + "/documents", timeout=30).json()["documents"]
    current = {d["key"]: d for d in listed if d["current"]}
    older = [d for d in listed if not d["current"]]
    open_page(driver, library_server)
    items = wait_for_documents(driver)
    # One entry per document (key), titled as the API lists it; the older edition under its document.
    keys = list(dict.fromkeys(d["key"] for d in listed))  # in the order the library first got them
    assert [i.find_element(By.CSS_SELECTOR, ".doc-name").text for i in items] == [current[k]["title"] for k in keys]
    (old,) = older
    river = next(i for i in items if i.get_attribute("data-doc") == current[old["key"]]["id"])
    assert current[old["key"]]["edition"] in river.find_element(By.CSS_SELECTOR, ".doc-facts").text
    assert old["edition"] in river.find_element(By.CSS_SELECTOR, ".editions").text

    transit = current["urban-transit"]
    item = next(i for i in items if i.get_attribute("data-doc") == transit["id"])
    item.find_element(By.CSS_SELECTOR, "button.search-in").click()
    assert driver.find_element(By.ID, "document").get_attribute("value") == transit["id"]
    assert driver.execute_script("return document.activeElement.id") == "question"
    assert "selected" in item.get_attribute("class")
    ask(driver, "How often do the night buses run?")
    results = wait_for_results(driver)
    assert f"doc={transit['id']}" in driver.current_url
    shot = Path(tempfile.mkdtemp(prefix="reportqa-screenshots-")) / "library.png"
    assert driver.save_screenshot(str(shot))
    print(f"screenshot of a search within one document: {shot}")
    for r in results:  # every passage from that document, its edition shown in the citation
        cite = r.find_element(By.CSS_SELECTOR, ".cite-doc")
        assert transit["title"] in cite.text
        assert cite.find_element(By.CSS_SELECTOR, ".edition-id").text == transit["edition"]

    # An older edition is searched by its own button; its citations name that edition.
    river = next(i for i in wait_for_documents(driver) if i.get_attribute("data-doc") == current[old["key"]]["id"])
    river.find_element(By.CSS_SELECTOR, ".editions button").click()  # re-searches the typed question
    wait(driver).until(lambda d: f"edition={old['edition']}" in d.current_url)
    ask(driver, "What happened to nitrate concentrations?")
    wait(driver).until(lambda d: "nitrate" in d.find_element(By.ID, "results-meta").text.lower()
                       and d.find_element(By.ID, "results-view").get_attribute("aria-busy") == "false")
    editions = {e.text for e in driver.find_elements(By.CSS_SELECTOR, "#results-list .cite-doc .edition-id")}
    assert editions == {old["edition"]}
    assert "fell" in driver.find_element(By.CSS_SELECTOR, "#results-list .passage").text  # the old text


def test_a_pdf_citation_shows_the_printed_page(driver, library_server):
    listed = httpx.get(library_server.url + "/documents", timeout=30).json()["documents"]
    harbour = next(d for d in listed if d["format"] == "pdf")
    question = "How much will the breakwater be raised?"
    api = httpx.get(library_server.url + "/query", params={"q": question, "k": 3, "document": harbour["id"]},
                    timeout=30).json()
    top = api["passages"][0]["citation"]
    assert top["page_label"] and top["page_label"] != str(top["page"])  # the test needs a label that differs
    open_page(driver, library_server, "#" + "&".join([f"q={quote(question)}", "k=3", f"doc={quote(harbour['id'])}"]))
    first = wait_for_results(driver)[0]
    assert first.get_attribute("data-chunk") == api["passages"][0]["chunk_id"]
    page = first.find_element(By.CSS_SELECTOR, ".page").text
    assert page == f"Page {top['page_label']} (PDF page {top['page']})"
    assert harbour["edition"] in first.find_element(By.CSS_SELECTOR, ".cite-doc").text
