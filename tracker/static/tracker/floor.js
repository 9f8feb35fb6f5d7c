// The session floor refreshes its table body every N seconds, so nobody needs to reload.
(function () {
  "use strict";
  document.addEventListener("DOMContentLoaded", function () {
    var table = document.getElementById("floor");
    if (!table) { return; }
    var seconds = parseInt(table.getAttribute("data-interval"), 10) || 30;
    function refresh() {
      fetch(table.getAttribute("data-refresh"), {credentials: "same-origin"})
        .then(function (response) { return response.ok ? response.text() : null; })
        .then(function (html) {
          if (!html) { return; }
          var holder = document.createElement("table");
          holder.innerHTML = html;
          var body = holder.querySelector("tbody");
          if (body) { table.replaceChild(body, table.querySelector("tbody")); }
        })
        .catch(function () { /* offline for a moment: the next tick tries again */ });
    }
    window.setInterval(refresh, seconds * 1000);
    table.refreshFloor = refresh;  // for tests and a manual refresh
  });
}());
