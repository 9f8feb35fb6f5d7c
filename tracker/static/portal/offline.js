/* Offline-safe dose taps for the patient portal (issue 15).
 *
 * 1. Every "Taken" form gets a key made on the phone, so a double tap, a resend or a replay
 *    is one dose on the server (DoseEvent.client_key, unique per patient).
 * 2. A "Taken" tap with no connection is kept in this phone's localStorage with the time it
 *    was tapped, and the page says it is waiting to send.
 * 3. When the connection returns (and on every page load, and every 30 s while something
 *    waits) each kept tap is sent to /doses/<id>/offline-tap/ with its key, the tap's time and
 *    the send time, both from the phone's clock: the server stores it at its own now minus the
 *    wait, so the original moment is kept even on a phone whose clock is wrong.
 * 4. A tap leaves the phone only when the server has answered it (saved, or refused with a
 *    reason, both in JSON). A lost connection, a sign-in page or an error page keeps it.
 *
 * The queue is kept per patient (data-patient on this script), so a second person signing in
 * on the same phone never sends the first person's doses.
 */
(function () {
  "use strict";

  var script = document.currentScript;
  var patient = script && script.dataset.patient;
  if (!patient) {
    return;
  }
  var STORE = "portal.offlineTaps." + patient;
  var RETRY_MS = 30000;
  var sending = false;

  if ("serviceWorker" in navigator && script.dataset.worker) {
    navigator.serviceWorker.register(script.dataset.worker, { scope: "/" }).catch(function () {
      /* Without a worker the portal still works online; taps are still kept offline. */
    });
  }

  function newKey() {
    if (window.crypto && typeof window.crypto.randomUUID === "function") {
      return window.crypto.randomUUID();
    }
    var bytes = new Uint8Array(16);
    window.crypto.getRandomValues(bytes);
    bytes[6] = (bytes[6] & 0x0f) | 0x40; // version 4
    bytes[8] = (bytes[8] & 0x3f) | 0x80; // RFC 4122 variant
    var hex = Array.prototype.map.call(bytes, function (b) { return (b + 0x100).toString(16).slice(1); }).join("");
    return [hex.slice(0, 8), hex.slice(8, 12), hex.slice(12, 16), hex.slice(16, 20), hex.slice(20)].join("-");
  }

  function load() {
    try {
      var queue = JSON.parse(window.localStorage.getItem(STORE) || "[]");
      return Array.isArray(queue) ? queue : [];
    } catch (error) {
      return [];
    }
  }

  function save(queue) {
    if (queue.length) {
      window.localStorage.setItem(STORE, JSON.stringify(queue));
    } else {
      window.localStorage.removeItem(STORE);
    }
  }

  function statusBox() {
    var box = document.getElementById("offline-status");
    if (!box) {
      box = document.createElement("div");
      box.id = "offline-status";
      box.className = "card card-notice offline-status";
      box.setAttribute("role", "status");
      box.hidden = true;
      var main = document.getElementById("main");
      main.insertBefore(box, main.firstChild);
    }
    return box;
  }

  function say(lines) {
    var box = statusBox();
    box.textContent = "";
    lines.forEach(function (line) {
      var p = document.createElement("p");
      p.textContent = line;
      box.appendChild(p);
    });
    box.hidden = lines.length === 0;
    box.style.display = box.hidden ? "none" : ""; // portal.css gives cards a display that beats [hidden]
  }

  function clock(iso) {
    var when = new Date(iso);
    return ("0" + when.getHours()).slice(-2) + ":" + ("0" + when.getMinutes()).slice(-2);
  }

  /* The page's words in its language (base.html embeds them as JSON, tracker/portal/language.py);
     the English here is the fallback, and %(name)s is filled in from ``values``. */
  var strings = (function () {
    var node = document.getElementById("offline-strings");
    try {
      return node ? JSON.parse(node.textContent) || {} : {};
    } catch (error) {
      return {};
    }
  })();

  function say_(key, english, values) {
    var text = strings[key] || english;
    Object.keys(values || {}).forEach(function (name) {
      text = text.split("%(" + name + ")s").join(String(values[name]));
    });
    return text;
  }

  function waitingLine(count) {
    return count === 1
      ? say_("waiting_one", "%(count)s dose waiting to send — it will be sent when you are back online.", { count: 1 })
      : say_(
          "waiting_many",
          "%(count)s doses waiting to send — they will be sent when you are back online.",
          { count: count }
        );
  }

  /* Show each waiting tap on its dose card, in place of the buttons. */
  function render(extra) {
    var queue = load();
    queue.forEach(function (tap) {
      var card = document.getElementById("dose-" + tap.dose);
      if (!card || card.querySelector(".state-waiting")) {
        return;
      }
      Array.prototype.forEach.call(card.querySelectorAll("form, details, .state-missed"), function (node) {
        node.hidden = true;
        node.style.display = "none"; // .dose-form is display: inline in portal.css, which beats [hidden]
      });
      var note = document.createElement("p");
      note.className = "state state-waiting";
      note.textContent = say_("taken_waiting", "Taken at %(time)s — waiting to send.", { time: clock(tap.tapped_at) });
      card.appendChild(note);
    });
    var lines = queue.length ? [waitingLine(queue.length)] : [];
    say(lines.concat(extra || []));
  }

  function csrfToken() {
    var field = document.querySelector("input[name=csrfmiddlewaretoken]");
    return field ? field.value : "";
  }

  function keyField(form) {
    var field = form.querySelector("input[name=client_key]");
    if (!field) {
      field = document.createElement("input");
      field.type = "hidden";
      field.name = "client_key";
      form.appendChild(field);
    }
    if (!field.value) {
      field.value = newKey();
    }
    return field;
  }

  function keepTap(form) {
    var queue = load();
    var key = keyField(form).value;
    if (!queue.some(function (tap) { return tap.key === key; })) {
      queue.push({ key: key, dose: form.dataset.dose, url: form.dataset.offlineUrl, tapped_at: new Date().toISOString() });
      save(queue);
    }
    render();
  }

  function sendOne(tap, token) {
    var body = new URLSearchParams({ client_key: tap.key, tapped_at: tap.tapped_at, sent_at: new Date().toISOString() });
    return fetch(tap.url, {
      method: "POST",
      credentials: "same-origin",
      headers: { "X-CSRFToken": token, Accept: "application/json" },
      body: body,
    }).then(function (response) {
      var type = response.headers.get("Content-Type") || "";
      if (response.redirected || type.indexOf("application/json") !== 0) {
        return { kept: true, signIn: response.redirected };
      }
      return response.json().then(function (answer) {
        return { kept: false, lines: answer.saved ? [answer.message] : answer.errors };
      });
    });
  }

  function sendAll() {
    var queue = load();
    if (sending || !queue.length || !navigator.onLine) {
      return;
    }
    sending = true;
    var token = csrfToken();
    var answered = [];
    var trouble = [];
    var chain = Promise.resolve();
    queue.forEach(function (tap) {
      chain = chain.then(function () {
        return sendOne(tap, token).then(function (result) {
          if (result.kept) {
            trouble.push(
              result.signIn
                ? say_("sign_in_again", "Please sign in again to send the waiting dose; it is kept on this phone.")
                : say_(
                    "not_sent_yet",
                    "The waiting dose could not be sent yet; it is kept on this phone and will be tried again."
                  )
            );
            return;
          }
          save(load().filter(function (other) { return other.key !== tap.key; }));
          answered = answered.concat(result.lines);
        });
      });
    });
    chain
      .catch(function () {
        /* The connection dropped again: what was not answered stays on the phone. */
      })
      .then(function () {
        sending = false;
        if (answered.length && document.getElementById("doses-heading")) {
          window.location.reload(); // the page as the server now has it, with the saved messages
          return;
        }
        render(answered.concat(trouble.slice(0, 1)));
      });
  }

  document.addEventListener(
    "submit",
    function (event) {
      var form = event.target;
      if (form.classList.contains("dose-form")) {
        keyField(form);
        if (!navigator.onLine) {
          event.preventDefault();
          keepTap(form);
        }
        return;
      }
      if (!navigator.onLine && (form.method || "").toLowerCase() === "post") {
        event.preventDefault();
        render([
          say_("offline_post", "You are offline, so this was not sent. Please try again when you are back online.")
        ]);
      }
    },
    true
  );

  Array.prototype.forEach.call(document.querySelectorAll("form.dose-form"), keyField);
  window.addEventListener("online", sendAll);
  window.addEventListener("offline", function () { render(); });
  window.setInterval(sendAll, RETRY_MS);
  render();
  sendAll();
})();
