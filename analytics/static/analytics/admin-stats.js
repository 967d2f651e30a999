// The staff stats page (/admin/stats) keeps itself current: every
// data-refresh-seconds (30 by default) it fetches the page again and swaps in its
// #live-stats part, so the live counters move without a reload. It skips a round
// while the tab is hidden and says so when a refresh fails (then retries).
(function () {
  "use strict";

  function refresh(status) {
    var url = status.dataset.refreshUrl || window.location.pathname;
    return fetch(url, { credentials: "same-origin", headers: { Accept: "text/html" } })
      .then(function (response) {
        if (!response.ok || response.redirected) throw new Error("HTTP " + response.status);
        return response.text();
      })
      .then(function (html) {
        var fresh = new DOMParser().parseFromString(html, "text/html");
        var part = fresh.getElementById("live-stats");
        var current = document.getElementById("live-stats");
        if (!part || !current) throw new Error("no live stats in the answer");
        current.replaceWith(document.importNode(part, true));
        var asOf = fresh.getElementById("stats-as-of");
        var mine = document.getElementById("stats-as-of");
        if (asOf && mine) {
          mine.replaceWith(document.importNode(asOf, true));
        }
        status.classList.remove("is-stale");
        status.dataset.refreshed = String(Number(status.dataset.refreshed || 0) + 1);
      })
      .catch(function () {
        status.classList.add("is-stale");
        status.lastChild.textContent = " Refresh failed; trying again.";
      });
  }

  document.addEventListener("DOMContentLoaded", function () {
    var status = document.getElementById("stats-refresh");
    if (!status) return;
    var seconds = parseFloat(status.dataset.refreshSeconds);
    if (!(seconds > 0)) seconds = 30;
    status.appendChild(document.createTextNode(""));
    window.setInterval(function () {
      if (document.hidden) return;
      refresh(status);
    }, seconds * 1000);
  });
})();
