// hyouka dashboard: leaderboard tabs and client-side sorting. No inline script, no remote code.
"use strict";

function showTab(button) {
  document.querySelectorAll(".tab").forEach(function (tab) {
    var selected = tab === button;
    tab.setAttribute("aria-selected", selected ? "true" : "false");
    var panel = document.getElementById(tab.dataset.tab);
    if (panel) { panel.hidden = !selected; }
  });
}

function cellKey(row, index, type) {
  var cell = row.children[index];
  var raw = cell ? (cell.dataset.value !== undefined ? cell.dataset.value : cell.textContent) : "";
  if (type === "number") {
    return raw === "" ? null : Number(raw);
  }
  return raw.toLowerCase();
}

// Sort a table by a header: the first click puts the best first (highest, or lowest where lower is
// better); the next reverses. Empty cells always go last.
function sortBy(th) {
  var table = th.closest("table");
  var index = Array.prototype.indexOf.call(th.parentNode.children, th);
  var type = th.dataset.type || "text";
  var bestFirst = th.dataset.better === "lower" ? 1 : -1;
  if (type === "text") { bestFirst = 1; }
  var direction = th.dataset.sorted === "best" ? -bestFirst : bestFirst;
  th.parentNode.querySelectorAll("th").forEach(function (other) { delete other.dataset.sorted; });
  th.dataset.sorted = direction === bestFirst ? "best" : "worst";
  var body = table.tBodies[0];
  var rows = Array.prototype.slice.call(body.rows);
  rows.sort(function (a, b) {
    var x = cellKey(a, index, type), y = cellKey(b, index, type);
    if (x === null && y === null) { return 0; }
    if (x === null) { return 1; }
    if (y === null) { return -1; }
    return x < y ? -direction : x > y ? direction : 0;
  });
  rows.forEach(function (row) { body.appendChild(row); });
}

document.addEventListener("DOMContentLoaded", function () {
  var tabs = document.querySelectorAll(".tab");
  tabs.forEach(function (tab) { tab.addEventListener("click", function () { showTab(tab); }); });
  if (tabs.length) { showTab(tabs[0]); }
  document.querySelectorAll("table.sortable th button").forEach(function (button) {
    button.addEventListener("click", function () { sortBy(button.closest("th")); });
  });
});
