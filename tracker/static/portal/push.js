/* "Notifications on this device" on the reminders page (issue 15; templates/portal/_push.html).
 *
 * Turn on: register the portal's service worker (/sw.js, which shows the notifications), ask
 * PushManager.subscribe with the clinic's public VAPID key, and POST the subscription as JSON
 * with the page's CSRF token to /reminders/push/; the server stores it for the signed-in
 * patient. Turn off: unsubscribe in the browser and POST the endpoint to /reminders/push/off/,
 * which ends it on the server (kept, never deleted).
 *
 * Whether this browser's subscription is this patient's is answered by SHA-256 digests of
 * their live endpoints in data-mine, so the page never holds the endpoints themselves and a
 * second person on a shared phone sees "off" until they turn it on for themselves.
 * Every sentence shown comes from the template's data-say-* attributes (translated there).
 */
(function () {
  "use strict";

  var panel = document.getElementById("push-panel");
  if (!panel) {
    return;
  }
  var status = document.getElementById("push-status");
  var onBox = document.getElementById("push-turn-on");
  var offBox = document.getElementById("push-turn-off");

  function show(box, visible) {
    box.hidden = !visible;
  }

  function say(key) {
    status.textContent = panel.dataset[key] || "";
  }

  function state(on) {
    show(onBox, !on);
    show(offBox, on);
  }

  function keyBytes(base64url) {
    var padded = (base64url + "===".slice((base64url.length + 3) % 4)).replace(/-/g, "+").replace(/_/g, "/");
    var raw = window.atob(padded);
    var bytes = new Uint8Array(raw.length);
    for (var i = 0; i < raw.length; i += 1) {
      bytes[i] = raw.charCodeAt(i);
    }
    return bytes;
  }

  function digest(text) {
    return window.crypto.subtle.digest("SHA-256", new TextEncoder().encode(text)).then(function (buffer) {
      return Array.prototype.map
        .call(new Uint8Array(buffer), function (b) { return (b + 0x100).toString(16).slice(1); })
        .join("");
    });
  }

  function csrfToken() {
    var field = document.querySelector("input[name=csrfmiddlewaretoken]");
    return field ? field.value : "";
  }

  function post(url, body) {
    return fetch(url, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRFToken": csrfToken(), Accept: "application/json" },
      body: JSON.stringify(body),
    }).then(function (response) {
      if (!response.ok) {
        throw new Error("server answered " + response.status);
      }
      return response.json();
    });
  }

  function registration() {
    return navigator.serviceWorker.register(panel.dataset.worker, { scope: "/" }).then(function () {
      return navigator.serviceWorker.ready;
    });
  }

  function turnOn() {
    onBox.querySelector("button").disabled = true;
    registration()
      .then(function (reg) {
        return reg.pushManager.subscribe({ userVisibleOnly: true, applicationServerKey: keyBytes(panel.dataset.key) });
      })
      .then(function (subscription) {
        return post(panel.dataset.subscribeUrl, subscription.toJSON());
      })
      .then(function () {
        state(true);
        say("sayOn");
      })
      .catch(function () {
        say(window.Notification && Notification.permission === "denied" ? "sayDenied" : "sayFailed");
      })
      .then(function () {
        onBox.querySelector("button").disabled = false;
      });
  }

  function turnOff() {
    offBox.querySelector("button").disabled = true;
    registration()
      .then(function (reg) { return reg.pushManager.getSubscription(); })
      .then(function (subscription) {
        if (!subscription) {
          return null;
        }
        var endpoint = subscription.endpoint;
        return post(panel.dataset.unsubscribeUrl, { endpoint: endpoint }).then(function () {
          return subscription.unsubscribe();
        });
      })
      .then(function () {
        state(false);
        say("sayOff");
      })
      .catch(function () { say("sayFailed"); })
      .then(function () {
        offBox.querySelector("button").disabled = false;
      });
  }

  if (!("serviceWorker" in navigator) || !("PushManager" in window) || !window.crypto || !window.crypto.subtle) {
    say("sayUnsupported");
    return;
  }
  onBox.querySelector("button").addEventListener("click", turnOn);
  offBox.querySelector("button").addEventListener("click", turnOff);
  var mine = (panel.dataset.mine || "").split(" ").filter(Boolean);
  registration()
    .then(function (reg) { return reg.pushManager.getSubscription(); })
    .then(function (subscription) {
      return subscription ? digest(subscription.endpoint) : null;
    })
    .then(function (hex) {
      var on = hex !== null && mine.indexOf(hex) !== -1;
      state(on);
      say(on ? "sayOn" : "sayOff");
    })
    .catch(function () { state(false); });
})();
