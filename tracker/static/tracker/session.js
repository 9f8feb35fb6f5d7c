// In-clinic session form: warn the moment a pre-dose blood pressure is above the label's threshold
// (§1 bp_threshold), before anything is saved. The server checks it again on save.
(function () {
  "use strict";
  // "Now" beside each time: the clinic's wall clock (sent with the page), moved on by the time since.
  function pad(n) { return (n < 10 ? "0" : "") + n; }
  function addNowButtons() {
    var clock = document.getElementById("clinic-clock");
    if (!clock || !clock.getAttribute("data-now")) { return; }
    var served = clock.getAttribute("data-now").split(/[-T:]/).map(Number);
    var base = Date.UTC(served[0], served[1] - 1, served[2], served[3], served[4]);
    var loaded = Date.now();
    document.querySelectorAll('input[type="datetime-local"]').forEach(function (input) {
      var button = document.createElement("button");
      button.type = "button";
      button.className = "button now-button";
      button.textContent = "Now";
      var label = document.querySelector('label[for="' + input.id + '"]');
      button.setAttribute("aria-label", "Now: " + (label ? label.textContent.replace(/:$/, "") : input.name));
      button.addEventListener("click", function () {
        var t = new Date(base + (Date.now() - loaded));
        input.value = t.getUTCFullYear() + "-" + pad(t.getUTCMonth() + 1) + "-" + pad(t.getUTCDate()) +
          "T" + pad(t.getUTCHours()) + ":" + pad(t.getUTCMinutes());
        input.dispatchEvent(new Event("input", {bubbles: true}));
      });
      input.insertAdjacentElement("afterend", button);
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    addNowButtons();
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
