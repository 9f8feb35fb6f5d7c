// In-clinic session form: warn the moment a pre-dose blood pressure is above the label's threshold
// (§1 bp_threshold), before anything is saved. The server checks it again on save.
(function () {
  "use strict";
  document.addEventListener("DOMContentLoaded", function () {
    var box = document.getElementById("bp-live-warning");
    var sys = document.getElementById("id_bp_before_systolic");
    var dia = document.getElementById("id_bp_before_diastolic");
    if (!box || !sys || !dia) { return; }
    var maxSys = parseInt(box.getAttribute("data-systolic"), 10);
    var maxDia = parseInt(box.getAttribute("data-diastolic"), 10);
    function check() {
      var s = parseInt(sys.value, 10), d = parseInt(dia.value, 10);
      var high = (s > maxSys) || (d > maxDia);
      box.hidden = !high;
      if (high) {
        box.textContent = "Blood pressure " + (sys.value || "?") + "/" + (dia.value || "?") +
          " mmHg is above the label threshold of " + maxSys + "/" + maxDia +
          " mmHg: consider withholding the dose, and record a withhold/proceed decision before dosing.";
      }
    }
    sys.addEventListener("input", check);
    dia.addEventListener("input", check);
    check();
  });
}());
