// Live viewers now (templates/streams/_live_viewers.html, SPEC §6.5). Every
// data-refresh-seconds (15 by default) it reads data-live-url (the staff live API, JSON)
// and updates the figure, the time it was read and, on the dashboard, the streams being
// watched, without reloading the page. It skips a round while the tab is hidden; when a
// read fails it keeps the last figure, marks it stale and says so, and tries again.
(function () {
  "use strict";

  function two(n) {
    return (n < 10 ? "0" : "") + n;
  }

  function clock(iso) {
    var when = new Date(iso);
    if (isNaN(when.getTime())) return "";
    return two(when.getUTCHours()) + ":" + two(when.getUTCMinutes()) + ":" + two(when.getUTCSeconds());
  }

  function part(panel, name) {
    return panel.querySelector('[data-live="' + name + '"]');
  }

  function streamsList(panel, list, streams) {
    while (list.firstChild) list.removeChild(list.firstChild);
    streams.slice(0, 5).forEach(function (stream) {
      var item = document.createElement("li");
      var link = document.createElement("a");
      link.href = panel.dataset.streamBase + encodeURIComponent(stream.stream_id);
      link.textContent = stream.title;
      var count = document.createElement("span");
      count.className = "live-count";
      count.textContent = String(stream.viewers);
      item.appendChild(link);
      item.appendChild(document.createTextNode(" "));
      item.appendChild(count);
      list.appendChild(item);
    });
  }

  function show(panel, live) {
    var viewers = typeof live.viewers === "number" ? live.viewers : null;
    part(panel, "viewers").textContent = viewers === null ? "\u2014" : String(viewers);
    part(panel, "unit").textContent =
      viewers === null
        ? "unknown"
        : "viewer" + (viewers === 1 ? "" : "s") +
          (panel.dataset.scope === "overview" ? " on all matching streams" : "");
    var asOf = part(panel, "as_of");
    asOf.setAttribute("datetime", live.as_of);
    asOf.textContent = clock(live.as_of);
    part(panel, "status").textContent =
      viewers === null ? " \u00b7 live figures unavailable (Redis)" : "";
    panel.classList.toggle("is-unknown", viewers === null);
    panel.classList.remove("is-stale");
    var list = part(panel, "streams");
    if (list && Array.isArray(live.streams)) streamsList(panel, list, live.streams);
    panel.dataset.refreshed = String(Number(panel.dataset.refreshed || 0) + 1);
  }

  function refresh(panel) {
    return fetch(panel.dataset.liveUrl, {
      credentials: "same-origin",
      headers: { Accept: "application/json" },
    })
      .then(function (response) {
        if (!response.ok || response.redirected) throw new Error("HTTP " + response.status);
        return response.json();
      })
      .then(function (live) {
        show(panel, live);
      })
      .catch(function () {
        panel.classList.add("is-stale");
        part(panel, "status").textContent = " \u00b7 refresh failed; trying again";
      });
  }

  document.addEventListener("DOMContentLoaded", function () {
    var panel = document.getElementById("live-viewers");
    if (!panel || !panel.dataset.liveUrl) return;
    var seconds = parseFloat(panel.dataset.refreshSeconds);
    if (!(seconds > 0)) seconds = 15;
    window.setInterval(function () {
      if (document.hidden) return;
      refresh(panel);
    }, seconds * 1000);
  });
})();
