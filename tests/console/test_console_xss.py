"""Stored XSS (Argo CD had it through app names, links and chart metadata): markup in every field
the console shows that the API accepts (labels, source path, the ComparisonError naming it,
repository name and username) is shown as text and never becomes an element."""

from __future__ import annotations

import yaml
from playwright.sync_api import expect

from local.story import DEPLOYMENT, LocalWorld, application
from tests.console.conftest import Page

PAYLOAD = '<img src=x onerror="window.__xss=(window.__xss||0)+1">'
INJECTED = "img, svg[onload], script:not([src]), [onerror], [onload]"


def _no_injection(tab: Page) -> None:
    assert tab.page.evaluate("window.__xss") is None
    assert tab.page.locator(INJECTED).count() == 0, tab.page.locator(INJECTED).evaluate_all("xs => xs.map(x => x.outerHTML)")


def test_markup_from_the_api_is_text(world: LocalWorld, tab: Page) -> None:
    server = world.register_cluster("local")
    repo = world.git.make_repo("xss", {"app/deployment.yaml": DEPLOYMENT.format(replicas=1, image="nginx:1.25")})
    doc = yaml.safe_load(application("xss", repo, server, automated=True, path=PAYLOAD, namespace="xss"))
    doc["metadata"]["labels"] = {"team": PAYLOAD}
    world.api_ok("POST", "/api/v1/applications", doc)
    # A repository is read before it is kept, so its URL must be a real one (the local git server's);
    # markup goes into what else the page shows of it, its name and username.
    world.api_ok("POST", "/api/v1/repositories", {"url": repo, "name": PAYLOAD, "username": PAYLOAD})
    world.until("the ComparisonError", lambda: any(PAYLOAD in c["message"] for c in world.status("xss").get("conditions") or []),
                tick=False, timeout=60)

    tab.sign_in()
    row = tab.page.locator('li.app-row[data-app="xss"]')
    expect(row).to_contain_text(PAYLOAD)  # the path, as text
    row.locator("details.conditions summary").click()
    expect(row.locator("details.conditions")).to_contain_text("ComparisonError")
    expect(row.locator("details.conditions pre")).to_contain_text(PAYLOAD)
    _no_injection(tab)
    tab.shot("xss-applications")

    row.get_by_role("link", name="xss").click()
    page = tab.page.locator("main.app-page")
    expect(page.locator("code.label")).to_have_text(f"team={PAYLOAD}")
    expect(page.locator("details.conditions")).to_contain_text(PAYLOAD)
    _no_injection(tab)
    tab.shot("xss-app")
    # the edit dialog shows the same fields as form values and as YAML text
    tab.page.get_by_role("button", name="Edit", exact=True).click()
    form = tab.page.locator("dialog[open] form.create")
    expect(form.get_by_label("Path", exact=True)).to_have_value(PAYLOAD)
    _no_injection(tab)
    form.get_by_role("button", name="Edit as YAML").click()
    assert PAYLOAD in form.locator("textarea[name=yaml]").input_value()
    _no_injection(tab)
    tab.page.keyboard.press("Escape")

    tab.page.get_by_role("link", name="Repositories").click()
    repo_row = tab.page.locator("tr[data-repo]").filter(has_text=repo)
    expect(repo_row).to_contain_text(PAYLOAD)
    _no_injection(tab)
    tab.shot("xss-repositories")
