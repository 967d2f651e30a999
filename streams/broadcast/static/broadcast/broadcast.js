// Broadcast station pages: the listener graph re-fetches its JSON every
// data-refresh-seconds and redraws; the event log polls its JSON every
// data-poll-seconds and adds new entries on top. No inline script (CSP).
(function () {
  "use strict";
  var SVG = "http://www.w3.org/2000/svg";

  function text(value, digits) {
    if (value === null || value === undefined) return "\u2014";
    return digits ? Number(value).toFixed(digits) : String(value);
  }

  function drawGraph(box, points) {
    var width = 640, height = 220, left = 48, right = 16, top = 10, bottom = 28;
    var plotW = width - left - right, plotH = height - top - bottom, base = top + plotH;
    var svg = document.createElementNS(SVG, "svg");
    svg.setAttribute("viewBox", "0 0 " + width + " " + height);
    svg.setAttribute("width", "100%");
    svg.setAttribute("class", "stats-chart broadcast-lines");
    svg.setAttribute("role", "img");
    svg.setAttribute("aria-label", "Listeners");
    var largest = 0;
    points.forEach(function (p) { largest = Math.max(largest, p.listeners); });
    var topValue = largest > 0 ? Math.pow(10, Math.ceil(Math.log10(largest + 1))) : 1;
    [1, 2, 2.5, 5].some(function (f) {
      var candidate = topValue / 10 * f;
      if (largest <= candidate) { topValue = candidate; return true; }
      return false;
    });
    [0, 0.5, 1].forEach(function (f) {
      var y = base - f * plotH;
      var line = document.createElementNS(SVG, "line");
      line.setAttribute("x1", left); line.setAttribute("x2", width - right);
      line.setAttribute("y1", y); line.setAttribute("y2", y);
      line.setAttribute("stroke", "var(--hairline-color, #e8e8e8)");
      svg.appendChild(line);
      var label = document.createElementNS(SVG, "text");
      label.setAttribute("x", left - 6); label.setAttribute("y", y + 4);
      label.setAttribute("text-anchor", "end"); label.setAttribute("font-size", "12");
      label.setAttribute("fill", "var(--body-quiet-color, #666)");
      label.textContent = String(Math.round(topValue * f));
      svg.appendChild(label);
    });
    if (points.length) {
      var first = Date.parse(points[0].timestamp), last = Date.parse(points[points.length - 1].timestamp);
      var span = Math.max(last - first, 1000);
      var coords = points.map(function (p) {
        var x = left + (Date.parse(p.timestamp) - first) / span * plotW;
        var y = base - p.listeners / topValue * plotH;
        return x.toFixed(1) + "," + y.toFixed(1);
      }).join(" ");
      var poly = document.createElementNS(SVG, "polyline");
      poly.setAttribute("points", coords);
      poly.setAttribute("fill", "none");
      poly.setAttribute("stroke", "#2e86de");
      poly.setAttribute("stroke-width", "2");
      poly.setAttribute("class", "chart-line");
      svg.appendChild(poly);
    }
    box.replaceChildren(svg);
  }

  function startListeners(section) {
    var seconds = parseFloat(section.dataset.refreshSeconds) || 30;
    var url = section.dataset.listenersUrl;
    function refresh() {
      fetch(url, { headers: { Accept: "application/json" }, credentials: "same-origin" })
        .then(function (r) { return r.ok ? r.json() : Promise.reject(r.status); })
        .then(function (data) {
          section.querySelector('[data-field="peak"]').textContent = text(data.peak);
          section.querySelector('[data-field="average"]').textContent = text(data.average, 1);
          section.querySelector('[data-field="now"]').textContent = text(data.now);
          section.dataset.pointCount = String(data.points.length);
          drawGraph(section.querySelector('[data-field="chart"]'), data.points);
          section.querySelector('[data-field="updated"]').textContent =
            "(updated " + new Date().toLocaleTimeString() + ")";
        })
        .catch(function () { /* the next round tries again */ });
    }
    window.setInterval(refresh, seconds * 1000);
  }

  function logRow(entry) {
    var row = document.createElement("tr");
    row.dataset.id = entry.id;
    row.className = "level-" + entry.level + " log-new";
    var time = entry.timestamp.replace("T", " ").slice(0, 19);
    [time, null, entry.category, null, entry.message].forEach(function (value, i) {
      var cell = document.createElement("td");
      if (i === 1) {
        var badge = document.createElement("span");
        badge.className = "log-level log-level-" + entry.level;
        badge.textContent = entry.level;
        cell.appendChild(badge);
      } else if (i === 3) {
        var code = document.createElement("code");
        code.textContent = entry.event;
        cell.appendChild(code);
      } else {
        cell.textContent = value;
      }
      row.appendChild(cell);
    });
    return row;
  }

  function startLog(table) {
    if (table.dataset.live !== "1") return;
    var seconds = parseFloat(table.dataset.pollSeconds) || 5;
    var body = table.tBodies[0];
    function newest() {
      var ids = Array.prototype.map.call(body.querySelectorAll("tr[data-id]"), function (r) {
        return parseInt(r.dataset.id, 10);
      });
      return ids.length ? Math.max.apply(null, ids) : 0;
    }
    function poll() {
      fetch(table.dataset.logUrl, { headers: { Accept: "application/json" }, credentials: "same-origin" })
        .then(function (r) { return r.ok ? r.json() : Promise.reject(r.status); })
        .then(function (data) {
          var known = newest();
          var fresh = data.events.filter(function (e) { return e.id > known; });
          if (!fresh.length) return;
          var empty = body.querySelector(".log-empty");
          if (empty) empty.remove();
          fresh.reverse().forEach(function (e) { body.insertBefore(logRow(e), body.firstChild); });
          var total = document.querySelector('[data-field="total"]');
          if (total) total.textContent = String(data.total);
        })
        .catch(function () { /* the next round tries again */ });
    }
    window.setInterval(poll, seconds * 1000);
  }

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("[data-listeners-url]").forEach(startListeners);
    document.querySelectorAll("table[data-log-url]").forEach(startLog);
  });
})();
