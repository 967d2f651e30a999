// The telemetry.js demo page (templates/analytics/demo.html): a tiny single-page app.
// A static file, not an inline script, so the Content-Security-Policy needs no unsafe-inline.
(function () {
  "use strict";
  // A tiny single-page app: tabs change the URL with pushState (tracked as page views).
  document.querySelectorAll("[data-spa-tab]").forEach(function (link) {
    link.addEventListener("click", function (event) {
      event.preventDefault();
      history.pushState({}, "", link.getAttribute("href"));
      document.getElementById("tab").textContent = link.dataset.spaTab;
    });
  });
  window.addEventListener("popstate", function () {
    document.getElementById("tab").textContent =
      new URLSearchParams(location.search).get("tab") || "home";
  });
  document.getElementById("login").addEventListener("click", function () {
    EchoPilot.setUserId(document.getElementById("user-id").value);
    EchoPilot.track("login", "auth", { method: "demo" });
  });
  document.getElementById("logout").addEventListener("click", function () {
    EchoPilot.track("logout", "auth");
    EchoPilot.setUserId(null);
  });
  document.getElementById("convert").addEventListener("click", function () {
    EchoPilot.track("conversion", "checkout", { plan: "pro" });
  });
  setInterval(function () {
    document.getElementById("sdk-stats").textContent = JSON.stringify(EchoPilot.stats());
  }, 500);
})();
