/*!
 * EchoPilot telemetry SDK (SPEC §8) — product events for POST /api/analytics/event.
 *
 * Plain ES2017, no build step, no dependencies. Load it and it configures itself from
 * its own <script> tag's data- attributes and/or window.EchoPilotConfig; or call
 * EchoPilot.init({...}) yourself. docs/sdks.md lists every option.
 *
 * Delivery, in short: every tracked event gets a uuid and is written through to
 * IndexedDB; a 1 s debounce batches events into one POST; an event leaves the queue
 * (and IndexedDB) only once the server has answered 2xx (stored) or 4xx (refused, it
 * would never succeed). Network errors and 5xx are retried with exponential backoff and
 * jitter; on page hide the queue goes out through navigator.sendBeacon. Because the
 * server de-duplicates by uuid, resending an event that did arrive is harmless, so
 * whenever in doubt the SDK sends again rather than risk losing an event.
 */
(function (global) {
  "use strict";

  if (global.EchoPilot && global.EchoPilot.version) {
    return; // loaded twice: keep the first instance and its queue
  }

  var VERSION = "1.0.0";
  var DEFAULTS = {
    endpoint: "/api/analytics/event",
    debounceMs: 1000, // quiet time before a batch is sent
    maxWaitMs: 5000, // a steady stream of events still goes out at least this often
    maxQueue: 100, // events kept for delivery; the oldest are dropped beyond this
    maxBatch: 100, // events per request (the server's limit)
    retryBaseMs: 1000, // first retry delay; doubles per failure, with jitter
    retryMaxMs: 60000,
    autoPageView: true, // page_view on load and on SPA history changes
    autoClicks: true, // action events for clicks on [data-track]
    persist: true, // IndexedDB write-through (offline, reloads)
    dbName: "echopilot",
    userId: undefined, // default: the id stored by an earlier setUserId
    feature: undefined, // page_view feature; default <body data-feature> or the path
    debug: false,
  };
  var USER_ID_KEY = "echopilot.userId";
  var STORE = "events";
  var BEACON_MAX_BYTES = 60000; // browsers cap queued beacon data at 64 KiB

  var config = null;
  var queue = []; // events waiting for a 2xx/4xx answer, oldest first
  var inFlight = null; // uuids of the batch being sent by fetch
  var debounceTimer = null;
  var firstQueuedAt = 0;
  var retryTimer = null;
  var failures = 0;
  var userId = null;
  var lastPageKey = null;
  var stats = { sent: 0, retried: 0, dropped: 0, beacons: 0 };

  function log() {
    if (config && config.debug && global.console) {
      global.console.log.apply(global.console, ["[EchoPilot]"].concat([].slice.call(arguments)));
    }
  }

  function warn(message) {
    if (global.console) global.console.warn("[EchoPilot] " + message);
  }

  function uuid4() {
    var c = global.crypto;
    if (c && typeof c.randomUUID === "function") return c.randomUUID();
    var bytes = new Uint8Array(16);
    if (c && typeof c.getRandomValues === "function") {
      c.getRandomValues(bytes);
    } else {
      for (var i = 0; i < 16; i++) bytes[i] = Math.floor(Math.random() * 256);
    }
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    var hex = [];
    for (var j = 0; j < 16; j++) hex.push((bytes[j] + 0x100).toString(16).slice(1));
    return (
      hex.slice(0, 4).join("") + "-" + hex.slice(4, 6).join("") + "-" + hex.slice(6, 8).join("") +
      "-" + hex.slice(8, 10).join("") + "-" + hex.slice(10, 16).join("")
    );
  }

  function storageGet(key) {
    try {
      return global.localStorage.getItem(key);
    } catch (e) {
      return null;
    }
  }

  function storageSet(key, value) {
    try {
      if (value === null) global.localStorage.removeItem(key);
      else global.localStorage.setItem(key, value);
    } catch (e) {
      /* storage disabled: the id lives for this page only */
    }
  }

  // --- IndexedDB write-through ------------------------------------------------------

  var dbPromise = null;

  function db() {
    if (!config.persist || !global.indexedDB) return Promise.resolve(null);
    if (dbPromise) return dbPromise;
    dbPromise = new Promise(function (resolve) {
      var request;
      try {
        request = global.indexedDB.open(config.dbName, 1);
      } catch (e) {
        resolve(null);
        return;
      }
      request.onupgradeneeded = function () {
        request.result.createObjectStore(STORE, { keyPath: "uuid" });
      };
      request.onsuccess = function () {
        resolve(request.result);
      };
      request.onerror = function () {
        warn("IndexedDB unavailable; events are kept in memory only");
        resolve(null);
      };
      request.onblocked = function () {
        resolve(null);
      };
    });
    return dbPromise;
  }

  function dbWrite(fn) {
    return db().then(function (database) {
      if (!database) return;
      return new Promise(function (resolve) {
        try {
          var tx = database.transaction(STORE, "readwrite");
          fn(tx.objectStore(STORE));
          tx.oncomplete = resolve;
          tx.onerror = tx.onabort = function () {
            resolve();
          };
        } catch (e) {
          resolve();
        }
      });
    });
  }

  function dbPut(events) {
    return dbWrite(function (store) {
      events.forEach(function (event) {
        store.put(event);
      });
    });
  }

  function dbDelete(uuids) {
    if (!uuids.length) return Promise.resolve();
    return dbWrite(function (store) {
      uuids.forEach(function (id) {
        store["delete"](id);
      });
    });
  }

  function dbLoadAll() {
    return db().then(function (database) {
      if (!database) return [];
      return new Promise(function (resolve) {
        try {
          var request = database.transaction(STORE, "readonly").objectStore(STORE).getAll();
          request.onsuccess = function () {
            resolve(request.result || []);
          };
          request.onerror = function () {
            resolve([]);
          };
        } catch (e) {
          resolve([]);
        }
      });
    });
  }

  // --- the queue -------------------------------------------------------------------

  function enqueue(events) {
    var known = {};
    queue.forEach(function (event) {
      known[event.uuid] = true;
    });
    events.forEach(function (event) {
      if (!known[event.uuid]) {
        queue.push(event);
        known[event.uuid] = true;
      }
    });
    queue.sort(function (a, b) {
      return a.ts < b.ts ? -1 : a.ts > b.ts ? 1 : 0;
    });
    if (queue.length > config.maxQueue) {
      var dropped = queue.splice(0, queue.length - config.maxQueue);
      stats.dropped += dropped.length;
      warn("queue full: dropped the " + dropped.length + " oldest event(s)");
      dbDelete(
        dropped.map(function (event) {
          return event.uuid;
        })
      );
    }
  }

  function forget(uuids) {
    var gone = {};
    uuids.forEach(function (id) {
      gone[id] = true;
    });
    queue = queue.filter(function (event) {
      return !gone[event.uuid];
    });
    return dbDelete(uuids);
  }

  function scheduleFlush() {
    if (retryTimer) return; // a backoff is running; it flushes when it ends
    var now = Date.now();
    if (!firstQueuedAt) firstQueuedAt = now;
    clearTimeout(debounceTimer);
    var wait = queue.length >= config.maxBatch ? 0 : config.debounceMs;
    wait = Math.min(wait, Math.max(0, firstQueuedAt + config.maxWaitMs - now));
    debounceTimer = setTimeout(flush, wait);
  }

  function retryLater(retryAfterSeconds) {
    failures += 1;
    stats.retried += 1;
    var exponential = Math.min(config.retryMaxMs, config.retryBaseMs * Math.pow(2, failures - 1));
    // "Equal jitter": half fixed, half random, so clients that failed together spread out.
    var delay = exponential / 2 + Math.random() * (exponential / 2);
    if (retryAfterSeconds > 0) delay = Math.max(delay, Math.min(config.retryMaxMs, retryAfterSeconds * 1000));
    clearTimeout(retryTimer);
    log("retry in", Math.round(delay), "ms");
    retryTimer = setTimeout(function () {
      retryTimer = null;
      flush();
    }, delay);
  }

  function body(events) {
    return JSON.stringify({ events: events });
  }

  /**
   * Send what is queued now (one request of up to maxBatch events at a time).
   * Resolves once the queue is empty or a send failed and a retry is scheduled.
   */
  function flush() {
    clearTimeout(debounceTimer);
    debounceTimer = null;
    if (!config) return Promise.resolve();
    if (inFlight) return inFlight.promise;
    if (!queue.length) {
      firstQueuedAt = 0;
      return Promise.resolve();
    }
    if (global.navigator && global.navigator.onLine === false) {
      log("offline: waiting for the online event");
      return Promise.resolve();
    }
    firstQueuedAt = 0;
    var batch = queue.slice(0, config.maxBatch);
    var uuids = batch.map(function (event) {
      return event.uuid;
    });
    var promise = global
      .fetch(config.endpoint, {
        method: "POST",
        // text/plain keeps it a CORS "simple request" (no preflight); the server reads JSON.
        headers: { "Content-Type": "text/plain;charset=UTF-8" },
        body: body(batch),
        credentials: "omit",
        keepalive: true,
      })
      .then(
        function (response) {
          if (response.ok) {
            failures = 0;
            stats.sent += batch.length;
            return forget(uuids).then(function () {
              return "sent";
            });
          }
          if (response.status >= 400 && response.status < 500 && response.status !== 408 && response.status !== 429) {
            stats.dropped += batch.length;
            warn("server refused " + batch.length + " event(s) with " + response.status + "; dropped");
            return forget(uuids).then(function () {
              return "dropped";
            });
          }
          retryLater(parseFloat(response.headers.get("Retry-After")) || 0);
          return "retry";
        },
        function () {
          retryLater(0);
          return "retry";
        }
      )
      .then(function (outcome) {
        inFlight = null;
        if (outcome !== "retry" && queue.length) return flush();
      });
    inFlight = { uuids: uuids, promise: promise };
    return promise;
  }

  /** Page hide: hand everything queued to sendBeacon (falls back to fetch keepalive). */
  function flushWithBeacon() {
    if (!config || !queue.length) return;
    clearTimeout(debounceTimer);
    var offline = global.navigator && global.navigator.onLine === false;
    var events = queue.slice();
    var delivered = [];
    while (events.length) {
      var chunk = events.splice(0, config.maxBatch);
      var payload = body(chunk);
      while (payload.length > BEACON_MAX_BYTES && chunk.length > 1) {
        events.unshift.apply(events, chunk.splice(Math.ceil(chunk.length / 2)));
        payload = body(chunk);
      }
      var queued = false;
      if (!offline && global.navigator && typeof global.navigator.sendBeacon === "function") {
        try {
          queued = global.navigator.sendBeacon(
            config.endpoint,
            new Blob([payload], { type: "text/plain;charset=UTF-8" })
          );
        } catch (e) {
          queued = false;
        }
      }
      if (queued) {
        stats.beacons += 1;
        chunk.forEach(function (event) {
          delivered.push(event.uuid);
        });
      } else if (!offline) {
        try {
          global.fetch(config.endpoint, {
            method: "POST",
            headers: { "Content-Type": "text/plain;charset=UTF-8" },
            body: payload,
            credentials: "omit",
            keepalive: true,
          });
        } catch (e) {
          /* kept in IndexedDB; the next page load sends it */
        }
      }
    }
    // A beacon is fire-and-forget: whether it arrived is never known (and a browser that
    // believes it is online may be wrong). So its events leave the memory queue but stay
    // in IndexedDB; the next page load, or this page becoming visible again, sends them
    // once more and the server's uuid de-duplication answers without storing twice.
    if (delivered.length) {
      var gone = {};
      delivered.forEach(function (id) {
        gone[id] = true;
      });
      queue = queue.filter(function (event) {
        return !gone[event.uuid];
      });
    }
  }

  /** Queue what IndexedDB holds that memory does not (earlier pages, beaconed events). */
  function restore() {
    return dbLoadAll().then(function (events) {
      if (events.length) {
        log("restored", events.length, "event(s) from IndexedDB");
        enqueue(events);
        scheduleFlush();
      }
    });
  }

  // --- events ------------------------------------------------------------------------

  function pageUrl() {
    return global.location.pathname + global.location.search;
  }

  function makeEvent(type, feature, metadata) {
    var event = {
      uuid: uuid4(),
      event_type: String(type),
      ts: new Date().toISOString(),
      url: pageUrl().slice(0, 2048),
    };
    if (userId) event.user_id = userId;
    if (feature !== undefined && feature !== null && feature !== "") {
      event.feature = String(feature).slice(0, 128);
    }
    if (metadata && typeof metadata === "object" && !Array.isArray(metadata)) {
      event.metadata = metadata;
    }
    return event;
  }

  function track(type, feature, metadata) {
    if (!config) init({});
    if (!type) {
      warn("track() needs an event type");
      return null;
    }
    var event = makeEvent(type, feature, metadata);
    enqueue([event]);
    dbPut([event]);
    log("track", event);
    scheduleFlush();
    return event.uuid;
  }

  function pageFeature() {
    if (typeof config.feature === "function") return config.feature(global.location);
    if (config.feature) return config.feature;
    var body = global.document.body;
    if (body && body.getAttribute("data-feature")) return body.getAttribute("data-feature");
    return global.location.pathname;
  }

  function trackPageView(referrer) {
    var key = pageUrl();
    if (key === lastPageKey) return; // replaceState to the same URL, hash-only changes
    lastPageKey = key;
    var metadata = { title: global.document.title };
    if (referrer) metadata.referrer = referrer;
    track("page_view", pageFeature(), metadata);
  }

  // SPA navigations: pushState/replaceState (wrapped) and popstate (back/forward).
  function watchHistory() {
    var history = global.history;
    var currentHref = global.location.href;
    function navigated() {
      var from = currentHref;
      currentHref = global.location.href;
      trackPageView(from);
    }
    ["pushState", "replaceState"].forEach(function (name) {
      var original = history[name];
      if (typeof original !== "function") return;
      history[name] = function () {
        var result = original.apply(this, arguments);
        navigated();
        return result;
      };
    });
    global.addEventListener("popstate", navigated);
  }

  function onClick(domEvent) {
    var target = domEvent.target;
    if (target && target.nodeType !== 1) target = target.parentElement;
    if (!target || typeof target.closest !== "function") return;
    var element = target.closest("[data-track]");
    if (!element) return;
    var metadata = { action: element.getAttribute("data-action") || "click" };
    var label = element.getAttribute("data-track-label");
    if (label) metadata.label = label;
    track("action", element.getAttribute("data-track"), metadata);
  }

  function onHide() {
    flushWithBeacon();
  }

  // --- setup --------------------------------------------------------------------------

  function scriptConfig() {
    var script = global.document.currentScript;
    if (!script || !script.dataset) return {};
    var data = script.dataset;
    var out = {};
    var numbers = ["debounceMs", "maxWaitMs", "maxQueue", "maxBatch", "retryBaseMs", "retryMaxMs"];
    var flags = ["autoPageView", "autoClicks", "persist", "debug"];
    Object.keys(data).forEach(function (key) {
      if (numbers.indexOf(key) >= 0) out[key] = Number(data[key]);
      else if (flags.indexOf(key) >= 0) out[key] = data[key] !== "false";
      else out[key] = data[key];
    });
    return out;
  }

  function init(options) {
    if (config) {
      warn("init() was called again; the first configuration stays");
      return api;
    }
    config = {};
    Object.keys(DEFAULTS).forEach(function (key) {
      config[key] = DEFAULTS[key];
    });
    Object.keys(options || {}).forEach(function (key) {
      if (options[key] !== undefined) config[key] = options[key];
    });
    userId = config.userId !== undefined ? config.userId || null : storageGet(USER_ID_KEY);

    // Events an earlier page stored but never confirmed (offline, closed mid-retry, beacons).
    var restored = restore();

    global.addEventListener("online", function () {
      clearTimeout(retryTimer);
      retryTimer = null;
      failures = 0;
      flush();
    });
    global.document.addEventListener("visibilitychange", function () {
      if (global.document.visibilityState === "hidden") onHide();
      else restore();
    });
    global.addEventListener("pagehide", onHide);
    global.addEventListener("pageshow", function (event) {
      if (event.persisted) restore(); // back from the back/forward cache
    });
    if (config.autoClicks) global.document.addEventListener("click", onClick, true);
    if (config.autoPageView) {
      watchHistory();
      var domReady = new Promise(function (resolve) {
        if (global.document.readyState !== "loading") resolve();
        else global.document.addEventListener("DOMContentLoaded", resolve);
      });
      // After the restore, so the page's own events queue behind older ones.
      Promise.all([restored, domReady]).then(function () {
        trackPageView(global.document.referrer || undefined);
      });
    }
    return api;
  }

  function setUserId(id) {
    userId = id === null || id === undefined || id === "" ? null : String(id).slice(0, 128);
    storageSet(USER_ID_KEY, userId);
  }

  var api = {
    version: VERSION,
    init: init,
    track: track,
    setUserId: setUserId,
    getUserId: function () {
      return userId;
    },
    flush: function () {
      clearTimeout(retryTimer);
      retryTimer = null;
      return flush();
    },
    pending: function () {
      return queue.length;
    },
    stats: function () {
      return {
        queued: queue.length,
        sent: stats.sent,
        retried: stats.retried,
        dropped: stats.dropped,
        beacons: stats.beacons,
        failures: failures,
      };
    },
    uuid: uuid4,
  };
  global.EchoPilot = api;

  // Auto-configuration: <script src=".../telemetry.js" data-endpoint="/api/analytics/event">
  // and/or window.EchoPilotConfig = {...} set before the script loads.
  var fromScript = scriptConfig();
  var fromGlobal = global.EchoPilotConfig || null;
  if (fromScript.endpoint || fromGlobal) {
    var merged = {};
    [fromScript, fromGlobal || {}].forEach(function (source) {
      Object.keys(source).forEach(function (key) {
        merged[key] = source[key];
      });
    });
    init(merged);
  }
})(window);
