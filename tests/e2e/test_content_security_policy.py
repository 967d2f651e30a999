"""The Content-Security-Policy (SPEC §10) keeps every page working: each page loads in
Chromium with the policy enforced and reports no violation, and an injected inline
script is refused."""

from __future__ import annotations

import pytest

from streams.models import Organizer, Stream, StreamProvider

pytestmark = pytest.mark.django_db(transaction=True)

# Every violation the page sees, from the moment the document starts.
_VIOLATION_SPY = """
window.__csp = [];
document.addEventListener("securitypolicyviolation", (e) => {
  window.__csp.push(e.violatedDirective + " " + (e.blockedURI || "inline"));
});
"""

PAGES = {
    "/": "body",
    "/admin/": "#content-main",
    "/admin/streams/stream/": "#result_list",
    "/admin/streams/stream/add/": "#stream_form",
    "/admin/analytics/streams": "#live-viewers",
    "/admin/analytics/streams/csp-hls": "#live-viewers",
    "/admin/stats": "#content",
    "/api/docs/": ".swagger-ui .info",
    "/analytics/demo": "#cta",
    "/streams/csp-hls/watch": "#player[data-ready]",
}


@pytest.fixture
def csp_stream(db, hls_video_url):
    organizer = Organizer.objects.create(name="CSP", slug="csp")
    stream = Stream.objects.create(key="csp-hls", title="CSP", organizer=organizer)
    StreamProvider.objects.create(
        stream=stream, provider="hls", external_id=hls_video_url, is_primary=True
    )


def test_every_page_loads_without_a_policy_violation(page, live_server, staff_login, csp_stream):
    page.add_init_script(_VIOLATION_SPY)
    staff_login()
    for path, selector in PAGES.items():
        response = page.goto(f"{live_server.url}{path}")
        assert response.status == 200, path
        policy = response.headers["content-security-policy"]
        assert (
            "script-src 'self'" in policy
            and "unsafe-inline' " not in policy.split("script-src")[1].split(";")[0]
        )
        page.wait_for_selector(selector, state="attached", timeout=15_000)
        page.wait_for_timeout(300)
        assert page.evaluate("window.__csp") == [], path
    assert page.get_attribute("#player", "data-ready") == "hls"


def test_an_injected_inline_script_is_refused(page, live_server):
    page.add_init_script(_VIOLATION_SPY)
    page.goto(f"{live_server.url}/analytics/demo")
    page.evaluate(
        """() => { const s = document.createElement("script");
                   s.textContent = "window.__ran = true"; document.body.appendChild(s); }"""
    )
    page.wait_for_timeout(200)
    assert page.evaluate("window.__ran === undefined")
    assert any(v.startswith("script-src") for v in page.evaluate("window.__csp"))
