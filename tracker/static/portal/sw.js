/* The portal's service worker, served at /sw.js (tracker.portal.views.service_worker).
 *
 * It lets the portal open without a connection: portal pages are fetched from the network
 * first and the last copy is kept for when there is none; static files come from the cache
 * first. It never touches a POST: a dose tapped offline is kept by offline.js, which sends it
 * itself when the connection returns. Signing out empties the page cache, so the next person
 * on a shared phone does not see the last patient's pages offline.
 */
"use strict";

var PAGES = "portal-pages-v1";
var ASSETS = "portal-assets-v1";
var KEEP = [PAGES, ASSETS];
// Paths that are not the patient's portal pages: never cached.
var NOT_PAGES = ["/admin/", "/api/", "/accounts/", "/health/"];

self.addEventListener("install", function () {
  self.skipWaiting();
});

self.addEventListener("activate", function (event) {
  event.waitUntil(
    caches
      .keys()
      .then(function (names) {
        return Promise.all(
          names.filter(function (name) { return KEEP.indexOf(name) === -1; }).map(function (name) {
            return caches.delete(name);
          })
        );
      })
      .then(function () { return self.clients.claim(); })
  );
});

function isPortalPage(url) {
  return !NOT_PAGES.some(function (prefix) { return url.pathname.indexOf(prefix) === 0; });
}

function fromNetworkKeepingCopy(request) {
  return fetch(request).then(function (response) {
    // Only a page that really is the patient's (not a redirect to sign in, not an error).
    if (response.ok && !response.redirected && response.type === "basic") {
      var copy = response.clone();
      caches.open(PAGES).then(function (cache) { cache.put(request, copy); });
    }
    return response;
  });
}

function offlinePage() {
  var body =
    '<!doctype html><html lang="en-GB"><head><meta charset="utf-8">' +
    '<meta name="viewport" content="width=device-width, initial-scale=1"><title>Offline – My treatment</title></head>' +
    "<body><main><h1>You are offline</h1><p>This page has not been opened on this phone before, " +
    "so it cannot be shown without a connection. Doses you tap on Today are kept on the phone " +
    "and sent when you are back online.</p><p><a href=\"/\">Go to Today</a></p></main></body></html>";
  return new Response(body, { status: 503, headers: { "Content-Type": "text/html; charset=utf-8" } });
}

self.addEventListener("fetch", function (event) {
  var request = event.request;
  var url = new URL(request.url);
  if (url.origin !== self.location.origin) {
    return;
  }
  if (request.method === "POST" && url.pathname === "/accounts/logout/") {
    // Signing out on a shared phone: forget the pages, and stop this browser's notifications,
    // so the next person to hold it does not see the last patient's reminders. The server's
    // row is ended at the next send, when the push service answers 410 for it.
    event.waitUntil(
      Promise.all([
        caches.delete(PAGES),
        self.registration.pushManager
          ? self.registration.pushManager
              .getSubscription()
              .then(function (subscription) {
                return subscription && subscription.unsubscribe();
              })
              .catch(function () {}) // signing out goes on whatever the push service says
          : null,
      ])
    );
    return;
  }
  if (request.method !== "GET") {
    return;
  }
  if (url.pathname.indexOf("/static/") === 0) {
    event.respondWith(
      caches.open(ASSETS).then(function (cache) {
        return cache.match(request).then(function (hit) {
          return (
            hit ||
            fetch(request).then(function (response) {
              if (response.ok) {
                cache.put(request, response.clone());
              }
              return response;
            })
          );
        });
      })
    );
    return;
  }
  if (request.mode === "navigate" && isPortalPage(url)) {
    event.respondWith(
      fromNetworkKeepingCopy(request).catch(function () {
        return caches.match(request).then(function (hit) { return hit || offlinePage(); });
      })
    );
  }
});

/* Dose reminders by Web Push (issue 15; tracker/services/push.py sends them). The payload is
 * small JSON: {title, body, url, tag}, with no medicine named (a lock screen is public). A tap
 * opens the dose's card on Today, where "Taken" is one tap, in an open portal tab if there is one.
 */
self.addEventListener("push", function (event) {
  var message = {};
  try {
    message = event.data ? event.data.json() : {};
  } catch (error) {
    message = {};
  }
  var title = message.title || "Dose reminder";
  event.waitUntil(
    self.registration.showNotification(title, {
      body: message.body || "",
      tag: message.tag || "dose-reminder",
      icon: "/static/portal/icon-192.png",
      data: { url: message.url || "/" },
    })
  );
});

self.addEventListener("notificationclick", function (event) {
  event.notification.close();
  var target = new URL((event.notification.data && event.notification.data.url) || "/", self.location.origin);
  if (target.origin !== self.location.origin) {
    target = new URL("/", self.location.origin); // only ever this site
  }
  event.waitUntil(
    self.clients.matchAll({ type: "window" }).then(function (windows) {
      var open = windows[0]; // a portal tab this worker controls: reuse it
      if (!open) {
        return self.clients.openWindow(target.href);
      }
      return open
        .navigate(target.href)
        .then(function (client) { return (client || open).focus(); })
        .catch(function () { return self.clients.openWindow(target.href); });
    })
  );
});
