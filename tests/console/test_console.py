"""The console as a user meets it: token page, the guestbook created with the form, synced and
healthy in the topology, a bad image Degraded on the right nodes, a rollback from history, a dry
run that changes nothing, and the same pages readable on a phone."""

from __future__ import annotations

import re
import urllib.request

import yaml
from playwright.sync_api import expect

from local.story import DEPLOYMENT, SERVICE, LocalWorld, application
from tests.console.conftest import PHONE, Page

BAD = DEPLOYMENT.format(replicas=1, image="example/crashloop:1").replace(
    "spec:\n  replicas: 1\n", "spec:\n  replicas: 1\n  progressDeadlineSeconds: 3\n", 1)


def _get(world: LocalWorld, path: str) -> tuple[int, dict[str, str], str]:
    try:
        with urllib.request.urlopen(world.api.rstrip("/") + path, timeout=30) as resp:
            return resp.status, dict(resp.headers), resp.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, dict(err.headers), err.read().decode()


def test_pages_are_static_and_the_api_still_needs_the_token(world: LocalWorld) -> None:
    for path in ("/", "/applications", "/applications/guestbook", "/repositories", "/clusters", "/Prod/applications"):
        status, headers, body = _get(world, path)
        assert status == 200, (path, status, body)
        assert "script-src 'self'" in headers["Content-Security-Policy"]
        assert '<div id="root">' in body and "%GITFERRY_BASE%" not in body
        src = re.search(r'src="([^"]+\.js)"', body).group(1)
        status, headers, js = _get(world, src.removeprefix("/Prod"))
        assert status == 200 and headers["Content-Type"].startswith("text/javascript") and len(js) > 10_000
    assert _get(world, "/assets/nothing.js")[0] == 404
    assert _get(world, "/assets/..%2Fapp.py")[0] in (403, 404)
    status, _, body = _get(world, "/api/v1/applications")
    assert status == 401, body


def _wait_badge(tab: Page, kind: str, value: str, timeout: float = 90_000) -> None:
    expect(tab.page.locator(f".page-head [data-{kind}]")).to_have_attribute(f"data-{kind}", value, timeout=timeout)


def _node(tab: Page, kind: str, name: str | None = None):
    sel = f'.topology g.node[data-kind="{kind}"]' + (f'[data-name="{name}"]' if name else "")
    return tab.page.locator(sel)


def _all_nodes_health(tab: Page, kind: str, health: str, timeout: float = 90_000) -> None:
    nodes = _node(tab, kind)
    expect(nodes.first).to_be_visible(timeout=timeout)
    tab.page.wait_for_function(
        """([kind, health]) => { const n = [...document.querySelectorAll(`.topology g.node[data-kind="${kind}"]`)];
           return n.length > 0 && n.every((x) => x.dataset.health === health); }""",
        arg=[kind, health], timeout=timeout)


def _sync(tab: Page, *, dry_run: bool = False) -> None:
    tab.page.get_by_role("button", name="Sync", exact=True).click()
    dialog = tab.page.locator("dialog[open]")
    if dry_run:
        dialog.get_by_label("Dry run").check()
    dialog.locator('button[type="submit"]').click()
    expect(dialog).to_have_count(0)


def _history_ids(world: LocalWorld, name: str) -> list[int]:
    return [h["id"] for h in world.api_ok("GET", f"/api/v1/applications/{name}/history")["items"]]


def test_guestbook_through_the_console(world: LocalWorld, tab: Page) -> None:
    server = world.register_cluster("local")
    repo = world.git.make_repo("guestbook", {"guestbook/deployment.yaml": DEPLOYMENT.format(replicas=2, image="nginx:1.25"),
                                             "guestbook/service.yaml": SERVICE})
    page = tab.page

    # No token stored: the token page comes first.
    tab.goto("/applications")
    expect(page.get_by_role("heading", name="API token")).to_be_visible()
    tab.shot("01-token")
    page.get_by_label("Token", exact=True).fill(world.api_token)
    page.get_by_role("button", name="Sign in").click()
    expect(page.locator("main#applications")).to_be_visible()
    assert world.api_token not in page.url

    # The create form: the API's problems appear on the fields they name.
    page.get_by_role("button", name="+ New app").click()
    form = page.locator("dialog[open] form.create")
    form.get_by_label("Application name", exact=True).fill("guestbook")
    form.get_by_label("Cluster URL", exact=True).fill(server)
    form.get_by_label("Namespace", exact=True).fill("guestbook")
    form.get_by_role("button", name="Create").click()
    expect(form.locator('[data-field="repoURL"] .field-error')).to_contain_text("spec.source.repoURL")
    expect(form.locator('[data-field="repoURL"] input')).to_have_attribute("aria-invalid", "true")
    tab.shot("02-create-errors")
    form.get_by_label("Repository URL", exact=True).fill(repo)
    form.get_by_label("Path", exact=True).fill("guestbook")
    form.get_by_label("Create the namespace").check()
    # The same manifest as YAML, and back.
    form.get_by_role("button", name="Edit as YAML").click()
    yaml_text = form.locator("textarea[name=yaml]").input_value()
    assert "repoURL: " + repo in yaml_text and "CreateNamespace=true" in yaml_text
    form.get_by_role("button", name="Form").click()
    expect(form.get_by_label("Repository URL", exact=True)).to_have_value(repo)
    form.get_by_role("button", name="Create").click()

    # The app page; a manual app: sync it, then Synced and Healthy with the topology.
    expect(page.locator("main.app-page h1")).to_have_text("guestbook")
    assert page.url.endswith("/applications/guestbook")
    _wait_badge(tab, "sync", "OutOfSync")
    _sync(tab)
    _wait_badge(tab, "sync", "Synced")
    _wait_badge(tab, "health", "Healthy")
    for kind in ("Deployment", "ReplicaSet", "Pod", "Service"):
        _all_nodes_health(tab, kind, "Healthy")
    assert _node(tab, "Pod").count() == 2
    assert _node(tab, "Application", "guestbook").count() == 1
    tab.shot("03-app-healthy")

    # A node's details: keyboard reachable (Enter on the focused node).
    _node(tab, "Deployment").focus()
    page.keyboard.press("Enter")
    details = page.locator("aside.node-details")
    expect(details).to_contain_text("guestbook-ui")
    expect(details).to_contain_text("No difference.")
    _node(tab, "Pod").first.click()
    expect(details).to_contain_text("nginx:1.25")  # a pod's images
    expect(details).to_contain_text("not in Git, no diff")

    # A bad image: OutOfSync, its diff in the Deployment's details, then Degraded after the sync.
    world.git.commit("guestbook", {"guestbook/deployment.yaml": BAD}, "a broken image")
    page.get_by_role("button", name="Refresh", exact=True).click()
    _wait_badge(tab, "sync", "OutOfSync")
    expect(_node(tab, "Deployment").locator("[data-out-of-sync]")).to_be_visible(timeout=30_000)
    _node(tab, "Deployment").click()  # the diff is compared anew for each node opened
    expect(details.locator("pre.diff")).to_contain_text("example/crashloop:1", timeout=30_000)
    details.get_by_role("button", name="Live manifest").click()
    expect(details.locator('pre[data-manifest="live"]')).to_contain_text("image: nginx:1.25")
    details.get_by_role("button", name="Desired manifest").click()
    expect(details.locator('pre[data-manifest="target"]')).to_contain_text("image: example/crashloop:1")
    expect(details.locator('pre[data-manifest="target"]')).to_contain_text("progressDeadlineSeconds: 3")
    details.get_by_role("button", name="Diff").click()
    tab.shot("04-app-out-of-sync-diff")
    _sync(tab)
    _wait_badge(tab, "health", "Degraded")
    _all_nodes_health(tab, "Deployment", "Degraded")
    expect(page.locator('.topology g.node[data-kind="Pod"][data-health="Degraded"]').first).to_be_visible(timeout=60_000)
    expect(_node(tab, "Service")).to_have_attribute("data-health", "Healthy")
    expect(page.locator("section.operation")).to_contain_text("Succeeded")
    expect(page.locator("section.operation table.results")).to_contain_text("Deployment")
    tab.shot("05-app-degraded")

    # Roll back to the first history entry: Healthy again.
    ids = _history_ids(world, "guestbook")
    assert len(ids) == 2, ids
    page.once("dialog", lambda d: d.accept())
    page.get_by_role("button", name=f"Rollback to {ids[0]}").click()
    _wait_badge(tab, "health", "Healthy", timeout=120_000)
    _all_nodes_health(tab, "Deployment", "Healthy")
    expect(page.locator(".topology g.node[data-kind=Pod]").first).to_be_visible()
    tab.page.wait_for_function("""() => [...document.querySelectorAll('.topology g.node[data-kind="Pod"]')]
                                         .every((x) => x.dataset.health === 'Healthy')""", timeout=90_000)
    tab.shot("06-app-rolled-back")
    after_rollback = _history_ids(world, "guestbook")
    assert len(after_rollback) == 3, after_rollback

    # A dry run changes nothing: no new history entry, the cluster keeps the rolled back image.
    revision = world.status("guestbook")["sync"]["revision"]
    started = (world.status("guestbook").get("operationState") or {}).get("startedAt")
    _sync(tab, dry_run=True)
    world.until("the dry run finished", lambda: (world.status("guestbook").get("operationState") or {}).get("startedAt")
                != started and world.status("guestbook")["operationState"]["phase"] in ("Succeeded", "Failed"),
                tick=False)
    status = world.status("guestbook")
    assert status["operationState"]["phase"] == "Succeeded", status["operationState"]
    assert _history_ids(world, "guestbook") == after_rollback
    assert status["sync"]["revision"] == revision and status["health"]["status"] == "Healthy"
    _all_nodes_health(tab, "Deployment", "Healthy")
    tab.shot("07-app-after-dry-run")

    # The list: counts, filters, the row and its badges.
    page.get_by_role("link", name="Applications").first.click()
    row = page.locator('li.app-row[data-app="guestbook"]')
    expect(row.locator("[data-health]")).to_have_attribute("data-health", "Healthy")
    expect(page.locator("section.counts")).to_contain_text("1 application")
    page.locator("form.filters select[name=health]").select_option("Degraded")
    expect(row).to_have_count(0)
    assert "health=Degraded" in page.url
    page.get_by_role("button", name="Clear filters").click()
    expect(row).to_have_count(1)
    tab.shot("08-applications")

    # Repositories and clusters pages.
    page.get_by_role("link", name="Clusters").click()
    expect(page.locator('tr[data-cluster="local"]')).to_contain_text(server)
    kubeconfig = open(world.kube.kubeconfig_path).read()
    page.get_by_label("Name", exact=True).fill("second")
    page.get_by_label("or paste it").fill(kubeconfig)
    page.get_by_role("button", name="Add cluster").click()
    second = page.locator('tr[data-cluster="second"]')
    expect(second).to_contain_text(server)
    assert yaml.safe_load(kubeconfig)["users"][0]["user"]["token"] not in page.content()  # never shown back
    tab.shot("09-clusters")
    page.once("dialog", lambda d: d.accept())
    second.get_by_role("button").click()
    expect(second).to_have_count(0)
    # a repository is read with its credentials before it is kept: a real one behind basic auth
    private = world.git.make_repo("private", {"README.md": "private\n"}, auth=("bot", "s3cret-token-value"))
    page.get_by_role("link", name="Repositories").click()
    page.get_by_label("URL").fill(private)
    page.get_by_label("Username").fill("bot")
    page.get_by_label("Secret").fill("s3cret-token-value")
    page.get_by_role("button", name="Add repository").click()
    repo_row = page.locator(f'tr[data-repo="{private}"]')
    expect(repo_row).to_contain_text("stored")
    assert "s3cret-token-value" not in page.content()
    tab.shot("10-repositories")
    page.once("dialog", lambda d: d.accept())
    repo_row.get_by_role("button").click()
    expect(repo_row).to_have_count(0)


def test_readable_on_a_phone(browser: object, world: LocalWorld) -> None:
    server = world.register_cluster("local")
    repo = world.git.make_repo("phone", {"app/deployment.yaml": DEPLOYMENT.format(replicas=1, image="nginx:1.25")})
    name = "a-rather-long-application-name-for-a-small-screen"
    world.api_ok("POST", "/api/v1/applications", application(name, repo, server, automated=True, path="app",
                                                             namespace="phone"))
    world.until("phone app healthy", lambda: (world.status(name).get("health") or {}).get("status") == "Healthy",
                tick=False, timeout=90)
    tab = Page(browser, world, PHONE)
    try:
        tab.sign_in()
        for path, shot in (("/applications", "phone-applications"), (f"/applications/{name}", "phone-app")):
            tab.goto(path)
            tab.page.wait_for_selector("main.page")
            tab.page.wait_for_timeout(300)
            width = tab.page.evaluate("document.documentElement.scrollWidth")
            assert width <= PHONE["width"], f"{path}: the page is {width}px wide on a {PHONE['width']}px screen"
            tab.shot(shot)
        tab.page.locator('.topology g.node[data-kind="Deployment"]').click()
        expect(tab.page.locator("aside.node-details")).to_be_visible()
        assert tab.page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
        tab.shot("phone-node-details")
    finally:
        tab.close()
    assert not tab.errors, tab.errors


def test_fragment_token_is_stored_and_dropped(world: LocalWorld, tab: Page) -> None:
    tab.sign_in()
    assert "token" not in tab.page.url
    assert tab.page.evaluate("localStorage.getItem('gitferry-token')") == world.api_token
    tab.page.get_by_role("button", name="Sign out").click()
    expect(tab.page.get_by_role("heading", name="API token")).to_be_visible()
    assert tab.page.evaluate("localStorage.getItem('gitferry-token')") is None
