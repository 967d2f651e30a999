// Stream analytics: click (or Enter/Space on) a column header of a table marked
// data-sortable to sort its rows; click again to reverse. Numbers sort as numbers
// ("12.5%" as 12.5, a cell's data-value before its text), everything else as text.
// A table wider than its box shows the "scroll sideways" hint placed before it.
(function () {
  "use strict";

  function cellValue(row, index, numeric) {
    var cell = row.cells[index];
    var text = cell ? (cell.dataset.value || cell.textContent).trim() : "";
    if (!numeric) return text.toLowerCase();
    var number = parseFloat(text.replace(/[^0-9.eE+-]/g, ""));
    return isNaN(number) ? -Infinity : number;
  }

  function sortBy(table, header) {
    var index = header.cellIndex;
    var numeric = header.dataset.sort === "number";
    var ascending = header.getAttribute("aria-sort") !== "ascending";
    var body = table.tBodies[0];
    var rows = Array.prototype.slice.call(body.rows);
    if (rows.length < 2 || rows[0].cells.length === 1) return;
    rows.sort(function (a, b) {
      var x = cellValue(a, index, numeric);
      var y = cellValue(b, index, numeric);
      var order = numeric ? x - y : x.localeCompare(y);
      return ascending ? order : -order;
    });
    rows.forEach(function (row) { body.appendChild(row); });
    table.querySelectorAll("th[data-sort]").forEach(function (th) {
      th.removeAttribute("aria-sort");
    });
    header.setAttribute("aria-sort", ascending ? "ascending" : "descending");
  }

  function markScrollable() {
    document.querySelectorAll(".stats-table-wrap").forEach(function (wrap) {
      var hint = wrap.previousElementSibling;
      if (!hint || !hint.classList.contains("stats-scroll-hint")) return;
      var scrollable = wrap.scrollWidth > wrap.clientWidth + 1;
      hint.classList.toggle("is-visible", scrollable);
      wrap.classList.toggle("is-scrollable", scrollable);
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    markScrollable();
    window.addEventListener("resize", markScrollable);
    var custom = document.querySelector('.stats-preset[data-preset="custom"]');
    var from = document.getElementById("stats-from");
    if (custom && from) {
      custom.addEventListener("click", function (event) {
        event.preventDefault();
        from.focus();
      });
    }
    document.querySelectorAll("table[data-sortable]").forEach(function (table) {
      table.querySelectorAll("th[data-sort]").forEach(function (header) {
        header.tabIndex = 0;
        header.title = "Sort by " + header.textContent.trim();
        header.addEventListener("click", function () { sortBy(table, header); });
        header.addEventListener("keydown", function (event) {
          if (event.key === "Enter" || event.key === " ") {
            event.preventDefault();
            sortBy(table, header);
          }
        });
      });
    });
  });
})();
