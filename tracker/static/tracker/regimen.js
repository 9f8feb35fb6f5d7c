// Prescribe and "change times or days": show only the fields the chosen regimen uses.
// Without JavaScript every field shows and the server ignores the ones that do not apply.
(function () {
  "use strict";
  var FIELDS = {
    times: ["times_of_day"],
    weekdays: ["times_of_day", "weekdays"],
    every_n_days: ["times_of_day", "interval_days"],
    prn: ["prn_max_doses_per_day"],
    esketamine_phases: ["times_of_day", "weekdays", "continuation_every_weeks"],
    ketamine_series: ["times_of_day", "weekdays", "infusions"]
  };
  var OPTIONAL = ["times_of_day", "weekdays", "interval_days", "prn_max_doses_per_day", "continuation_every_weeks", "infusions"];

  function update() {
    var chosen = document.querySelector('input[name="regimen"]:checked');
    var used = FIELDS[chosen ? chosen.value : "times"] || OPTIONAL;
    OPTIONAL.forEach(function (name) {
      var row = document.querySelector(".form-row.field-" + name);
      if (row) { row.hidden = used.indexOf(name) < 0; }
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    var radios = document.querySelectorAll('input[name="regimen"]');
    if (!radios.length) { return; }
    radios.forEach(function (radio) { radio.addEventListener("change", update); });
    update();
  });
}());
