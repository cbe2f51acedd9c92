#!/usr/bin/env python3
"""The admin console in a real browser: Playwright driving Debian's Chromium, headless.

usage: admin-console-browser.py BASE_URL ADMIN_PASSWORD SCREENSHOT_DIR

Before it runs, the test has held a message with a hostile subject in the quarantine and
queued one for an unreachable domain. Any JavaScript dialog (an `alert` from injected
markup) fails the run. Prints "browser ok" when every flow passed; a screenshot of each
page lands in SCREENSHOT_DIR.
"""
import re
import sys

from playwright.sync_api import expect, sync_playwright

BASE, PASSWORD, SHOTS = sys.argv[1], sys.argv[2], sys.argv[3]
dialogs = []


def shot(page, name):
    page.screenshot(path=f"{SHOTS}/{name}.png", full_page=True)


with sync_playwright() as p:
    browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=["--no-sandbox"])
    page = browser.new_page()
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    page.set_default_timeout(15000)

    # Every page sends a visitor without a session to the login page.
    page.goto(BASE + "/accounts")
    expect(page).to_have_url(re.compile(r"/login$"))
    shot(page, "login")

    # A wrong password is refused; the right one opens the dashboard.
    page.fill("input[name=name]", "admin")
    page.fill("input[name=password]", "Not-the-password1")
    page.click("button")
    expect(page.locator(".error")).to_contain_text("Wrong name or password")
    page.fill("input[name=name]", "admin")
    page.fill("input[name=password]", PASSWORD)
    page.click("button")
    expect(page.locator("h1")).to_have_text("Dashboard")
    expect(page.locator("[data-stat=held]")).to_have_text("1")
    # Two messages accepted, one held: a third of the arrivals quarantined, no spam.
    expect(page.locator(".tiles")).to_contain_text("33.3 % of arrivals quarantined")
    expect(page.locator(".tiles")).to_contain_text("0.0 % of accepted copies filed as spam")
    expect(page.locator(".tiles")).to_contain_text(re.compile(r"[0-9.]+ [KMG]iB data on disk"))
    expect(page.locator(".tiles")).to_contain_text(re.compile(r"[0-9.]+ [KMG]iB disk free of [0-9.]+ [KMG]iB"))
    # The charts are drawn, and the messages accepted a moment ago are bars in theirs.
    charts = page.locator(".charts img")
    expect(charts).to_have_count(6)
    page.wait_for_function(
        "() => [...document.querySelectorAll('.charts img')].every(i => i.complete && i.naturalWidth > 0)")
    accepted = page.request.get(BASE + "/charts/messages_accepted.svg")
    if accepted.status != 200 or 'fill="#2a6fb0"' not in accepted.text() or "2 in 3 h" not in accepted.text():
        raise SystemExit(f"FAILED: the accepted chart: {accepted.status} {accepted.text()[:300]}")
    shot(page, "dashboard")

    # A domain, then an account: a weak password shows the policy.
    page.click("nav >> text=Domains")
    page.fill("input[name=name]", "browser.test")
    page.click("form[action='/domains'] button")
    expect(page.locator(".ok")).to_contain_text("domain browser.test added")
    expect(page.locator("table")).to_contain_text("browser.test")
    shot(page, "domains")
    page.click("nav >> text=Accounts")
    page.fill("input[name=address]", "web@browser.test")
    page.fill("input[name=password]", "weak")
    page.click("form[action='/accounts'] button")
    expect(page.locator(".error")).to_contain_text("8")
    page.fill("input[name=address]", "web@browser.test")
    page.fill("input[name=password]", "Browser123")
    page.click("form[action='/accounts'] button")
    expect(page.locator(".ok")).to_contain_text("account web@browser.test added")
    shot(page, "accounts")

    # Its spam level and whitelist.
    page.click("table a >> text=web@browser.test")
    expect(page.locator("h1")).to_have_text("web@browser.test")
    page.select_option("select[name=spam_level]", "high")
    page.click("form[action$='/settings'] button")
    expect(page.locator(".ok")).to_contain_text("spam level high")
    expect(page.locator("select[name=spam_level]")).to_have_value("high")
    page.fill("form[action$='/whitelist-add'] input[name=value]", "*@partner.test")
    page.click("form[action$='/whitelist-add'] button")
    expect(page.locator(".ok")).to_contain_text("*@partner.test")
    expect(page.locator("main ul").first).to_contain_text("*@partner.test")
    shot(page, "account")

    # The message swaks sent is in the trace with its score and folder; the held one
    # with its hostile subject, as text.
    page.click("nav >> text=Trace")
    page.fill("input[name=recipient]", "alice@example.test")
    page.click("form.search button")
    expect(page.locator("main")).to_contain_text("Subject: traced by swaks")
    expect(page.locator("main")).to_contain_text("filed in INBOX for alice@example.test")
    expect(page.locator("main")).to_contain_text("spam score")
    expect(page.locator("main")).to_contain_text("held in quarantine: invoice.pdf.exe")
    expect(page.locator("main")).to_contain_text("<script>alert(1)</script>")
    shot(page, "trace")

    # The quarantine shows the hostile subject as text, and releases the message.
    page.click("nav >> text=Quarantine")
    expect(page.locator("table")).to_contain_text("<script>alert(1)</script>")
    shot(page, "quarantine")
    page.click("table td a")
    expect(page.locator("pre")).to_contain_text("Subject: <script>alert(1)</script>")
    expect(page.locator("pre")).to_contain_text("invoice.pdf.exe")
    shot(page, "held-message")
    page.click("nav >> text=Quarantine")
    page.click("table >> text=Release")
    expect(page.locator(".ok")).to_contain_text("released")

    # The spam page: the rules' status, and a reload.
    page.click("nav >> text=Spam")
    expect(page.locator("main")).to_contain_text("rules loaded")
    expect(page.locator("main")).to_contain_text("not used until 200 spam and 200 ham")
    page.click("text=Reload the rules")
    expect(page.locator(".ok")).to_contain_text("rules reloaded")
    shot(page, "spam")

    # The queue: retry, then bounce.
    page.click("nav >> text=Queue")
    expect(page.locator("table")).to_contain_text("someone@unreachable.test")
    shot(page, "queue")
    page.click("table >> text=Retry now")
    expect(page.locator(".ok")).to_be_visible()
    page.click("table >> text=Bounce")
    expect(page.locator(".ok")).to_contain_text("returned to")

    # Settings: a blocklist added on the page is saved and applied at once.
    page.click("nav >> text=Settings")
    expect(page.locator("h1")).to_have_text("Settings")
    page.fill("textarea[name=dnsbl]", "bl.browser.test reject 127.0.0.2\nscore.browser.test score 2.5")
    page.fill("input[name='limits.max_recipients']", "30")
    page.click("form[action='/settings'] button")
    expect(page.locator(".ok")).to_contain_text("saved and applied")
    expect(page.locator("textarea[name=dnsbl]")).to_have_value(
        "bl.browser.test reject 127.0.0.2\nscore.browser.test score 2.5")
    expect(page.locator("textarea[name='relay.trusted_networks']")).to_have_value("127.0.0.1/32\n::1/128")
    expect(page.locator("input[name='limits.max_recipients']")).to_have_value("30")
    shot(page, "settings")

    # Logging out: every page refuses again.
    page.click("nav >> text=Log out")
    expect(page).to_have_url(re.compile(r"/login$"))
    for path in ["/", "/domains", "/accounts", "/trace", "/spam", "/quarantine", "/queue", "/settings"]:
        page.goto(BASE + path)
        expect(page).to_have_url(re.compile(r"/login$"))
    browser.close()

if dialogs:
    raise SystemExit(f"FAILED: script ran in the page: {dialogs}")
print("browser ok")
