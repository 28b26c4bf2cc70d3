"""The app page's actions in Chromium on the local stack: edit with the form and as YAML (the
API's problems on the fields they name), delete with and without cascade (what stays in the
cluster), and terminate a running operation."""

from __future__ import annotations

import re
from collections.abc import Callable

import yaml
from kubernetes import client
from playwright.sync_api import expect

from local.story import DEPLOYMENT, SERVICE, LocalWorld, application, synced_healthy
from tests.console.conftest import PHONE, Page

CONFIG_MAP = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\ndata:\n  k: v\n"


def _synced_app(world: LocalWorld, name: str, repo: str, path: str = "app") -> None:
    world.api_ok("POST", "/api/v1/applications", application(name, repo, world.kube.url, automated=False, path=path,
                                                              namespace=name))
    world.until(f"{name} compared", lambda: (world.status(name).get("sync") or {}).get("status") == "OutOfSync",
                tick=False)
    world.api_ok("POST", f"/api/v1/applications/{name}/sync", {})
    world.until(f"{name} synced", synced_healthy(world, name), tick=False)


def _services(world: LocalWorld, namespace: str) -> list[str]:
    return [s.metadata.name for s in client.CoreV1Api(world.k8s).list_namespaced_service(namespace).items]


def _gone(world: LocalWorld, name: str) -> Callable[[], bool]:
    return lambda: world.call("GET", f"/api/v1/applications/{name}")[0] == 404


def test_edit_with_the_form_and_as_yaml(world: LocalWorld, tab: Page) -> None:
    world.register_cluster("local")
    repo = world.git.make_repo("editable", {"app/service.yaml": SERVICE,
                                            "other/config.yaml": CONFIG_MAP.format(name="other")})
    _synced_app(world, "editme", repo)
    page = tab.page
    tab.sign_in("applications")
    tab.goto("/applications/editme")
    page.get_by_role("button", name="Edit", exact=True).click()
    form = page.locator("dialog[open] form.create")
    expect(page.locator("dialog[open]")).to_have_attribute("aria-label", "Edit editme")
    expect(form.get_by_label("Application name", exact=True)).to_have_value("editme")
    expect(form.get_by_label("Application name", exact=True)).to_have_attribute("readonly", "")
    expect(form.get_by_label("Path", exact=True)).to_have_value("app")
    # a problem the API names lands on its field
    form.get_by_label("Repository URL", exact=True).fill("")
    form.get_by_role("button", name="Save").click()
    expect(form.locator('[data-field="repoURL"] .field-error')).to_contain_text("spec.source.repoURL")
    form.get_by_label("Repository URL", exact=True).fill(repo)
    form.get_by_label("Path", exact=True).fill("other")
    form.get_by_label("Sync policy", exact=True).select_option("automated")
    tab.shot("20-edit-form")
    form.get_by_role("button", name="Save").click()
    expect(page.locator("dialog[open]")).to_have_count(0)
    expect(page.get_by_role("status")).to_contain_text("Saved.")
    spec = world.api_ok("GET", "/api/v1/applications/editme")["spec"]
    assert spec["source"]["path"] == "other" and spec["syncPolicy"]["automated"] is not None, spec
    expect(page.locator("section.summary")).to_contain_text("automated")

    # the same app as YAML: a label added in the text is saved
    page.get_by_role("button", name="Edit", exact=True).click()
    form = page.locator("dialog[open] form.create")
    form.get_by_role("button", name="Edit as YAML").click()
    text = form.locator("textarea[name=yaml]")
    doc = yaml.safe_load(text.input_value())
    assert doc["metadata"]["name"] == "editme" and doc["spec"]["source"]["path"] == "other" and "status" not in doc
    doc["metadata"]["labels"] = {"team": "web"}
    text.fill(yaml.safe_dump(doc))
    tab.shot("21-edit-yaml")
    form.get_by_role("button", name="Save").click()
    expect(page.locator("dialog[open]")).to_have_count(0)
    assert world.api_ok("GET", "/api/v1/applications/editme")["metadata"]["labels"] == {"team": "web"}
    expect(page.locator("section.summary")).to_contain_text("team=web")


def test_delete_without_and_with_cascade(world: LocalWorld, tab: Page) -> None:
    world.register_cluster("local")
    repo = world.git.make_repo("deletable", {"app/service.yaml": SERVICE})
    _synced_app(world, "keepobjects", repo)
    _synced_app(world, "cascading", repo)
    page = tab.page
    tab.sign_in("applications")

    tab.goto("/applications/keepobjects")
    page.get_by_role("button", name="Delete", exact=True).click()
    dialog = page.locator("dialog[open]")
    dialog.get_by_label("Cascade", exact=False).uncheck()
    expect(dialog.get_by_role("button", name="Delete")).to_be_disabled()  # until the name is typed
    dialog.get_by_label("Type the application name to confirm").fill("keepobjects")
    dialog.get_by_role("button", name="Delete").click()
    expect(page.locator("main#applications")).to_be_visible()
    assert world.call("GET", "/api/v1/applications/keepobjects")[0] == 404  # forgotten at once
    assert _services(world, "keepobjects") == ["guestbook-ui"]  # its objects stay

    tab.goto("/applications/cascading")
    page.get_by_role("button", name="Delete", exact=True).click()
    dialog = page.locator("dialog[open]")
    expect(dialog.get_by_label("Cascade", exact=False)).to_be_checked()  # the default, as argocd app delete
    dialog.get_by_label("Type the application name to confirm").fill("cascading")
    dialog.get_by_role("button", name="Delete").click()
    expect(page.locator("main#applications")).to_be_visible()
    world.until("the cascading app gone", _gone(world, "cascading"), tick=False)
    assert _services(world, "cascading") == []  # its objects deleted first


def test_terminate_a_running_operation(world: LocalWorld, tab: Page) -> None:
    world.register_cluster("local")
    stuck = yaml.safe_load(DEPLOYMENT.format(replicas=1, image="nginx:neverready"))
    stuck["metadata"]["annotations"] = {"argocd.argoproj.io/sync-wave": "0"}
    later = yaml.safe_load(CONFIG_MAP.format(name="wave-one"))
    later["metadata"]["annotations"] = {"argocd.argoproj.io/sync-wave": "1"}
    repo = world.git.make_repo("stuck", {"app/deployment.yaml": yaml.safe_dump(stuck),
                                         "app/config.yaml": yaml.safe_dump(later)})
    world.api_ok("POST", "/api/v1/applications", application("stuck", repo, world.kube.url, automated=False,
                                                              path="app", namespace="stuck"))
    world.until("stuck compared", lambda: (world.status("stuck").get("sync") or {}).get("status") == "OutOfSync",
                tick=False)
    page = tab.page
    tab.sign_in("applications")
    tab.goto("/applications/stuck")
    expect(page.get_by_role("button", name="Terminate")).to_have_count(0)  # nothing runs
    world.api_ok("POST", "/api/v1/applications/stuck/sync", {})
    world.until("stuck waits at wave 0", lambda: "waiting for" in (
        (world.status("stuck").get("operationState") or {}).get("message") or ""), tick=False)
    page.once("dialog", lambda d: d.accept())
    page.get_by_role("button", name="Terminate").click()  # shown by the 2 s poll of a running operation
    # ended by the apply's next look (each second while it waits in its invocation, else at its
    # follow-up, which is delayed while a wave is unhealthy): seconds, not the 5 s default
    expect(page.locator("section.operation")).to_contain_text("terminated by", timeout=60_000)
    tab.shot("22-terminated")
    op = world.status("stuck")["operationState"]
    assert op["phase"] == "Failed" and op["message"].startswith("terminated by"), op
    expect(page.get_by_role("button", name="Terminate")).to_have_count(0)
    assert [c.metadata.name for c in client.CoreV1Api(world.k8s).list_namespaced_config_map("stuck").items
            if c.metadata.name == "wave-one"] == []  # wave 1 never applied


FOCUSED = "(() => { const e = document.activeElement; return (e.getAttribute('aria-label') || e.textContent || '').trim().slice(0, 80); })()"


def test_keyboard_reaches_every_action_and_the_topology(world: LocalWorld, tab: Page) -> None:
    server = world.register_cluster("local")
    repo = world.git.make_repo("keys", {"app/deployment.yaml": DEPLOYMENT.format(replicas=1, image="nginx:1.25")})
    world.api_ok("POST", "/api/v1/applications", application("keys", repo, server, automated=True, path="app",
                                                             namespace="keys"))
    world.until("keys healthy", synced_healthy(world, "keys"), tick=False, timeout=90)
    page = tab.page
    tab.sign_in("applications")
    # the list at 1280x800: the fleet's counts at the top, nothing wider than the screen
    expect(page.locator('section.counts[data-scope="fleet"]')).to_be_visible()
    assert page.evaluate("document.documentElement.scrollWidth") <= 1280
    tab.goto("/applications/keys")
    page.wait_for_selector('.topology g.node[data-kind="Pod"]')
    assert page.evaluate("document.documentElement.scrollWidth") <= 1280
    seen: list[str] = []
    for _ in range(80):  # Tab from the top of the page until a topology node has the focus
        page.keyboard.press("Tab")
        seen.append(page.evaluate(FOCUSED))
        if seen[-1].startswith("Deployment guestbook-ui"):
            break
    for action in ("Sync", "Refresh", "Hard refresh", "Edit", "Delete"):
        assert action in seen, (action, seen)
    assert seen[-1].startswith("Deployment guestbook-ui, Healthy"), seen
    page.keyboard.press("Enter")
    expect(page.locator("aside.node-details")).to_be_visible()
    # an action's dialog by keyboard, closed by Escape
    page.get_by_role("button", name="Edit", exact=True).focus()
    page.keyboard.press("Enter")
    expect(page.locator("dialog[open]")).to_have_attribute("aria-label", "Edit keys")
    page.keyboard.press("Escape")
    expect(page.locator("dialog[open]")).to_have_count(0)


def test_edit_dialog_and_counts_readable_on_a_phone(browser: object, world: LocalWorld) -> None:
    server = world.register_cluster("local")
    repo = world.git.make_repo("phoneedit", {"app/service.yaml": SERVICE})
    world.api_ok("POST", "/api/v1/applications", application("phone-edit", repo, server, automated=False, path="app",
                                                             namespace="phone-edit"))
    tab = Page(browser, world, PHONE)
    try:
        tab.sign_in()
        expect(tab.page.locator('section.counts[data-scope="fleet"]')).to_be_visible()
        assert tab.page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
        tab.goto("/applications/phone-edit")
        tab.page.get_by_role("button", name="Edit", exact=True).click()
        expect(tab.page.locator("dialog[open] form.create")).to_be_visible()
        assert tab.page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
        box = tab.page.locator("dialog[open]").bounding_box()
        assert box and box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"], box
        tab.shot("phone-edit")
    finally:
        tab.close()
    assert not tab.errors, tab.errors


def test_children_of_an_app_of_apps_name_their_parent(world: LocalWorld, tab: Page) -> None:
    """The list row and the app page of a child say which app of apps renders it, linked."""
    world.register_cluster("local")
    workloads = world.git.make_repo("owned-workloads", {"app/config.yaml": CONFIG_MAP.format(name="owned")})
    child = yaml.safe_load(application("owned-child", workloads, world.kube.url, automated=False, path="app",
                                       namespace="owned-child"))
    parent_repo = world.git.make_repo("owned-apps", {"apps/child.yaml": yaml.safe_dump(child)})
    world.api_ok("POST", "/api/v1/applications", application("owned-parent", parent_repo, world.kube.url,
                                                              automated=True, path="apps", namespace="argocd"))
    world.until("the child registered", lambda: world.call("GET", "/api/v1/applications/owned-child")[0] == 200,
                tick=False)
    page = tab.page
    tab.sign_in("applications")
    row = page.locator('li.app-row[data-app="owned-child"]')
    expect(row.locator(".owner")).to_contain_text("from owned-parent")
    expect(page.locator('li.app-row[data-app="owned-parent"] .owner')).to_have_count(0)
    tab.shot("26-owned-child-row")
    row.locator(".owner a").click()
    expect(page).to_have_url(re.compile(r"/applications/owned-parent$"))
    tab.goto("/applications/owned-child")
    expect(page.locator("dl.facts")).to_contain_text("Rendered by")
    page.locator("dl.facts").get_by_role("link", name="owned-parent").click()
    expect(page).to_have_url(re.compile(r"/applications/owned-parent$"))
    assert not tab.errors, tab.errors


def test_many_pods_of_one_replica_set_are_one_node(world: LocalWorld, tab: Page) -> None:
    """Eight replicas: the topology shows one "8 Pods" node under the ReplicaSet, with the worst
    health of its members; its details list every Pod with its health."""
    world.register_cluster("local")
    repo = world.git.make_repo("replicas", {"app/deployment.yaml": DEPLOYMENT.format(replicas=8, image="nginx:1.25")})
    _synced_app(world, "replicas", repo)
    world.until("8 pods ready", lambda: (world.deployment("replicas", "guestbook-ui").status.ready_replicas or 0) == 8,
                tick=False)
    page = tab.page
    tab.sign_in("applications")
    tab.goto("/applications/replicas")
    group = page.locator('g.node[data-kind="Pod"]')
    expect(group).to_have_count(1, timeout=30_000)
    expect(group).to_have_attribute("data-name", "8 Pods")
    expect(group).to_have_attribute("data-health", "Healthy")
    tab.shot("27-grouped-pods")
    group.click()
    details = page.locator("aside.node-details")
    expect(details.locator("ul.members li")).to_have_count(8)
    expect(details.locator("span.count")).to_have_count(1)  # one health among them
    expect(details.locator("span.count")).to_contain_text("8")
    expect(details.locator("span.count")).to_contain_text("Healthy")
    assert not tab.errors, tab.errors
