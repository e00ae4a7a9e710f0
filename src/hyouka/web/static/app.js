// hyouka dashboard: leaderboard tabs, client-side sorting, and the rater page's keyboard shortcuts.
// No inline script, no remote code.
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

// Rater page: a key presses the button whose data-keys lists it (1-4 or a/b/t/x, 1-5 for scores, s to
// skip). The button submits the form, so the vote is written before the next item is shown; one
// submission per item (a second key press while the page changes is ignored).
function rateShortcuts(form) {
  var sent = false;
  form.addEventListener("submit", function (event) {
    if (sent) { event.preventDefault(); }
    sent = true;
  });
  document.addEventListener("keydown", function (event) {
    if (event.ctrlKey || event.metaKey || event.altKey || event.repeat) { return; }
    var target = event.target;
    if (target && (target.tagName === "INPUT" || target.tagName === "TEXTAREA" || target.isContentEditable)) { return; }
    var key = event.key.toLowerCase();
    var buttons = form.querySelectorAll("button[data-keys]");
    for (var i = 0; i < buttons.length; i++) {
      if (buttons[i].dataset.keys.split(" ").indexOf(key) >= 0) {
        event.preventDefault();
        if (!sent) { form.requestSubmit(buttons[i]); }
        return;
      }
    }
  });
}

document.addEventListener("DOMContentLoaded", function () {
  var rateForm = document.getElementById("rate-form");
  if (rateForm) { rateShortcuts(rateForm); }
  var tabs = document.querySelectorAll(".tab");
  tabs.forEach(function (tab) { tab.addEventListener("click", function () { showTab(tab); }); });
  if (tabs.length) { showTab(tabs[0]); }
  document.querySelectorAll("table.sortable th button").forEach(function (button) {
    button.addEventListener("click", function () { sortBy(button.closest("th")); });
  });
});
