/*!
 * EchoNest player tracking (SPEC §8) — playback events for POST /analytics/events.
 *
 * Plain ES2017, no build step. Exposes window.EchoNestPlayer:
 *   createTracker(options)                 the batching sender and player-state machine
 *   attachVideo(video, tracker, options)   HTML5 <video>; HLS natively or through hls.js
 *   attachBunny(iframe, tracker)           Bunny Stream embed through player.js (playerjs.Player)
 *   attachYouTube(element, videoId, tracker, options)  YouTube IFrame API
 *   mount(container, options)              asks GET /api/streams/<key> which provider to use,
 *                                          builds that player and tracks it
 * docs/sdks.md has the embedding snippets and every option.
 *
 * Each adapter only translates its player's events into tracker calls (requestPlay, play,
 * pause, bufferStart, bufferEnd, ended, error); the tracker owns the state, so every player
 * produces the same event grammar: heartbeats only while playing, no pause after ended,
 * no buffer events before playback has started.
 *
 * Video quality (SPEC §6.5): requestPlay() marks the play request and play() the first
 * frame, so the first play of a view carries extra.startupMs (request to first frame) and
 * extra.duration (the video's length, when finite: on-demand). A view left before its
 * first frame still sends its play (on page hide, with no startupMs), so it counts as an
 * exit before video start; errors that stop playback carry extra.fatal: true.
 *
 * Delivery: events collect in a buffer that is sealed into a batch with a batchId (UUID)
 * every flushInterval seconds, on ended, and on page hide (sendBeacon, text/plain JSON).
 * A batch that fails (network error, 5xx) is retried with the same batchId, so the server
 * stores it exactly once; a 4xx batch is dropped (it can never succeed).
 *
 * Offline safety, as telemetry.js does it: every batch, the one still filling included,
 * is written through to IndexedDB under its batchId, and leaves it only once the server
 * has answered 2xx or 4xx. The next page (after a reload, a crash or a closed tab) sends
 * what an earlier page left there, with the same batchId, so nothing is lost and nothing
 * is stored twice. A batch still filling in another live tab is left to that tab (its
 * Web Lock says it is alive); once the tab is gone the batch is taken over as it stands.
 */
(function (global) {
  "use strict";

  if (global.EchoNestPlayer && global.EchoNestPlayer.version) return;

  var VERSION = "1.1.0";
  var CLIENT_ID_KEY = "echonest.clientId";
  var STORE = "batches";
  var LOCK_PREFIX = "echonest-player:";
  // Without Web Locks, a batch left filling is taken over once untouched this long.
  var ABANDONED_AFTER_MS = 60000;
  var IDLE = "idle";
  var PLAYING = "playing";
  var PAUSED = "paused";
  var BUFFERING = "buffering";
  var ENDED = "ended";

  function warn(message) {
    if (global.console) global.console.warn("[EchoNestPlayer] " + message);
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

  /** The anonymous viewer id, kept in localStorage ("c-" + 16 hex characters). */
  function clientId() {
    var id = null;
    try {
      id = global.localStorage.getItem(CLIENT_ID_KEY);
    } catch (e) {
      /* storage disabled */
    }
    if (id && /^[A-Za-z0-9_.:-]{1,64}$/.test(id)) return id;
    id = "c-" + uuid4().replace(/-/g, "").slice(0, 16);
    try {
      global.localStorage.setItem(CLIENT_ID_KEY, id);
    } catch (e) {
      /* a new id per page load then */
    }
    return id;
  }

  function seconds(value) {
    var n = Number(value);
    return isFinite(n) && n >= 0 ? Math.round(n * 1000) / 1000 : null;
  }

  // --- the tracker ------------------------------------------------------------------

  var TRACKER_DEFAULTS = {
    endpoint: "/analytics/events",
    streamId: null,
    clientId: null, // default: the localStorage id
    heartbeatInterval: 15, // seconds, SPEC §6.2 (the watch page passes HEARTBEAT_INTERVAL)
    flushInterval: 5, // seconds between sends while events are waiting
    maxBatch: 100, // events per batch (the server's limit)
    maxPendingBatches: 50, // sealed batches kept for retry; the oldest are dropped beyond
    retryBaseMs: 1000,
    retryMaxMs: 60000,
    persist: true, // IndexedDB write-through of unsent batches (offline, reloads, crashes)
    dbName: "echonest-player",
    restoreRetryMs: 5000, // look again for batches another tab was still filling
    onEvent: null, // function (event) called for every tracked event (debugging, UIs)
  };

  // --- IndexedDB write-through (the shape of telemetry.js's queue) --------------------

  var databases = {};

  function openDb(name) {
    if (!global.indexedDB) return Promise.resolve(null);
    if (databases[name]) return databases[name];
    databases[name] = new Promise(function (resolve) {
      var request;
      try {
        request = global.indexedDB.open(name, 1);
      } catch (e) {
        resolve(null);
        return;
      }
      request.onupgradeneeded = function () {
        request.result.createObjectStore(STORE, { keyPath: "batchId" });
      };
      request.onsuccess = function () {
        resolve(request.result);
      };
      request.onerror = function () {
        warn("IndexedDB unavailable; unsent batches are kept in memory only");
        resolve(null);
      };
      request.onblocked = function () {
        resolve(null);
      };
    });
    return databases[name];
  }

  /** Batch stores of one tracker: put, delete and read all; each never rejects. */
  function batchStore(config) {
    function database() {
      return config.persist ? openDb(config.dbName) : Promise.resolve(null);
    }
    function write(fn) {
      return database().then(function (db) {
        if (!db) return;
        return new Promise(function (resolve) {
          try {
            var tx = db.transaction(STORE, "readwrite");
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
    return {
      put: function (record) {
        return write(function (store) {
          store.put(record);
        });
      },
      remove: function (batchIds) {
        if (!batchIds.length) return Promise.resolve();
        return write(function (store) {
          batchIds.forEach(function (id) {
            store["delete"](id);
          });
        });
      },
      all: function () {
        return database().then(function (db) {
          if (!db) return [];
          return new Promise(function (resolve) {
            try {
              var request = db.transaction(STORE, "readonly").objectStore(STORE).getAll();
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
      },
    };
  }

  /** Owners (tracker ids) alive in some tab of this origin, or null when unknown. */
  function liveOwners() {
    var locks = global.navigator && global.navigator.locks;
    if (!locks || typeof locks.query !== "function") return Promise.resolve(null);
    return locks.query().then(
      function (snapshot) {
        var owners = {};
        (snapshot.held || []).forEach(function (lock) {
          if (lock.name && lock.name.indexOf(LOCK_PREFIX) === 0) {
            owners[lock.name.slice(LOCK_PREFIX.length)] = true;
          }
        });
        return owners;
      },
      function () {
        return null;
      }
    );
  }

  /** Hold a Web Lock named after the tracker while its page lives; returns a release. */
  function holdLiveLock(trackerId) {
    var locks = global.navigator && global.navigator.locks;
    var release = function () {};
    if (!locks || typeof locks.request !== "function") return release;
    try {
      locks
        .request(LOCK_PREFIX + trackerId, function () {
          return new Promise(function (resolve) {
            release = resolve;
          });
        })
        .catch(function () {});
    } catch (e) {
      /* no locks: other tabs fall back to ABANDONED_AFTER_MS */
    }
    return function () {
      release();
    };
  }

  function createTracker(options) {
    var config = {};
    Object.keys(TRACKER_DEFAULTS).forEach(function (key) {
      config[key] = TRACKER_DEFAULTS[key];
    });
    Object.keys(options || {}).forEach(function (key) {
      if (options[key] !== undefined && options[key] !== null) config[key] = options[key];
    });
    if (!config.streamId) throw new Error("EchoNestPlayer: streamId is required");
    config.clientId = config.clientId || clientId();

    var state = IDLE;
    var buffer = []; // events not yet sealed into a batch
    var bufferBatchId = null; // the batchId the buffer will be sealed under
    var pending = []; // sealed batches {batchId, events, streamId, clientId}, oldest first
    var trackerId = uuid4();
    var store = batchStore(config);
    var releaseLock = holdLiveLock(trackerId);
    var restoreTimer = null;
    var sending = null;
    var failures = 0;
    var retryTimer = null;
    var heartbeatTimer = null;
    var flushTimer = null;
    var timeSource = function () {
      return null;
    };
    var durationSource = function () {
      return null;
    };
    var playRequestedAt = null; // performance.now() of a play request not yet playing
    var stats = { events: 0, batchesSent: 0, retries: 0, dropped: 0, beacons: 0, restored: 0 };

    function record(batch, open) {
      return {
        batchId: batch.batchId,
        endpoint: config.endpoint,
        streamId: batch.streamId,
        clientId: batch.clientId,
        events: batch.events,
        open: open,
        owner: trackerId,
        updatedAt: Date.now(),
      };
    }

    function emit(type, extra, ts) {
      var event = { type: type, ts: ts || new Date().toISOString() };
      var videoTime = null;
      try {
        videoTime = seconds(timeSource());
      } catch (e) {
        videoTime = null;
      }
      if (videoTime !== null) event.videoTime = videoTime;
      if (extra && typeof extra === "object") event.extra = extra;
      if (!buffer.length) bufferBatchId = uuid4();
      buffer.push(event);
      stats.events += 1;
      // Written through at once: a crash before the next flush loses nothing either.
      store.put(
        record(
          {
            batchId: bufferBatchId,
            streamId: config.streamId,
            clientId: config.clientId,
            events: buffer.slice(),
          },
          true
        )
      );
      if (typeof config.onEvent === "function") {
        try {
          config.onEvent(event);
        } catch (e) {
          /* a UI callback must not break tracking */
        }
      }
      if (buffer.length >= config.maxBatch) flush();
      else if (!flushTimer) flushTimer = setTimeout(flush, config.flushInterval * 1000);
    }

    function startHeartbeat() {
      stopHeartbeat();
      heartbeatTimer = setInterval(function () {
        if (state === PLAYING) emit("heartbeat");
      }, config.heartbeatInterval * 1000);
    }

    function stopHeartbeat() {
      if (heartbeatTimer) clearInterval(heartbeatTimer);
      heartbeatTimer = null;
    }

    function seal() {
      while (buffer.length) {
        var batch = {
          batchId: bufferBatchId || uuid4(),
          streamId: config.streamId,
          clientId: config.clientId,
          events: buffer.splice(0, config.maxBatch),
        };
        bufferBatchId = null;
        pending.push(batch);
        store.put(record(batch, false));
      }
      bufferBatchId = buffer.length ? uuid4() : null;
      dropOverflow();
    }

    function dropOverflow() {
      if (pending.length > config.maxPendingBatches) {
        var dropped = pending.splice(0, pending.length - config.maxPendingBatches);
        stats.dropped += dropped.length;
        warn("too many unsent batches: dropped the " + dropped.length + " oldest");
        store.remove(
          dropped.map(function (batch) {
            return batch.batchId;
          })
        );
      }
    }

    function offline() {
      return global.navigator && global.navigator.onLine === false;
    }

    /** Take over what IndexedDB holds that memory does not (earlier pages, beacons). */
    function restore() {
      if (restoreTimer) clearTimeout(restoreTimer);
      restoreTimer = null;
      return Promise.all([store.all(), liveOwners()]).then(function (found) {
        var records = found[0];
        var owners = found[1];
        var known = {};
        pending.forEach(function (batch) {
          known[batch.batchId] = true;
        });
        if (bufferBatchId) known[bufferBatchId] = true;
        var waiting = 0;
        records.forEach(function (saved) {
          if (known[saved.batchId] || saved.endpoint !== config.endpoint) return;
          if (!saved.events || !saved.events.length || !saved.streamId || !saved.clientId) return;
          if (saved.open && saved.owner !== trackerId) {
            var alive = owners
              ? owners[saved.owner]
              : Date.now() - (saved.updatedAt || 0) < ABANDONED_AFTER_MS;
            if (alive) {
              waiting += 1; // another tab is still filling it
              return;
            }
          }
          var batch = {
            batchId: saved.batchId,
            streamId: saved.streamId,
            clientId: saved.clientId,
            events: saved.events,
          };
          pending.push(batch);
          known[batch.batchId] = true;
          stats.restored += 1;
          if (saved.open || saved.owner !== trackerId) store.put(record(batch, false));
        });
        dropOverflow();
        if (waiting) restoreTimer = setTimeout(restore, config.restoreRetryMs);
        return sendNext();
      });
    }

    function payload(batch) {
      return JSON.stringify({
        streamId: batch.streamId || config.streamId,
        clientId: batch.clientId || config.clientId,
        sentAt: new Date().toISOString(), // the send time, for the server's skew correction
        batchId: batch.batchId,
        events: batch.events,
      });
    }

    function retryLater(retryAfterSeconds) {
      failures += 1;
      stats.retries += 1;
      var exponential = Math.min(config.retryMaxMs, config.retryBaseMs * Math.pow(2, failures - 1));
      var delay = exponential / 2 + Math.random() * (exponential / 2);
      if (retryAfterSeconds > 0) {
        delay = Math.max(delay, Math.min(config.retryMaxMs, retryAfterSeconds * 1000));
      }
      retryTimer = setTimeout(function () {
        retryTimer = null;
        sendNext();
      }, delay);
    }

    function sendNext() {
      if (sending || retryTimer || !pending.length) return sending || Promise.resolve();
      if (offline()) return Promise.resolve(); // the online event sends
      var batch = pending[0];
      sending = global
        .fetch(config.endpoint, {
          method: "POST",
          headers: { "Content-Type": "text/plain;charset=UTF-8" },
          body: payload(batch),
          credentials: "omit",
          keepalive: true,
        })
        .then(
          function (response) {
            if (response.ok || (response.status >= 400 && response.status < 500 &&
                response.status !== 408 && response.status !== 429)) {
              if (!response.ok) {
                stats.dropped += 1;
                warn("server refused a batch with " + response.status + "; dropped");
              } else {
                stats.batchesSent += 1;
              }
              failures = 0;
              if (pending[0] === batch) pending.shift();
              store.remove([batch.batchId]);
              return true;
            }
            retryLater(parseFloat(response.headers.get("Retry-After")) || 0);
            return false;
          },
          function () {
            retryLater(0);
            return false;
          }
        )
        .then(function (more) {
          sending = null;
          if (more && pending.length) return sendNext();
        });
      return sending;
    }

    /** Seal what is buffered into a batch and send (in order, one request at a time). */
    function flush() {
      if (flushTimer) clearTimeout(flushTimer);
      flushTimer = null;
      seal();
      return sendNext();
    }

    /** Page hide: every unsent batch goes out through sendBeacon, with its own batchId. */
    function flushWithBeacon() {
      if (flushTimer) clearTimeout(flushTimer);
      flushTimer = null;
      seal();
      if (offline()) return; // kept in memory and IndexedDB for later
      if (typeof global.navigator.sendBeacon !== "function") return flush();
      var left = [];
      pending.forEach(function (batch) {
        var queued = false;
        try {
          queued = global.navigator.sendBeacon(
            config.endpoint,
            new Blob([payload(batch)], { type: "text/plain;charset=UTF-8" })
          );
        } catch (e) {
          queued = false;
        }
        if (queued) stats.beacons += 1;
        else left.push(batch);
      });
      // A batch a fetch is sending right now may go out twice (fetch and beacon): both
      // carry its batchId, so the server keeps one copy. Whether a beacon arrived is never
      // known, so a beaconed batch stays in IndexedDB: the next page, or this one shown
      // again, sends it once more and the server answers without storing it twice.
      pending = left;
    }

    function clock() {
      var p = global.performance;
      return p && typeof p.now === "function" ? p.now() : Date.now();
    }

    /** extra of a play event: the video's duration when it is finite (on-demand). */
    function playExtra() {
      var extra = {};
      var duration = null;
      try {
        duration = seconds(durationSource());
      } catch (e) {
        duration = null;
      }
      if (duration) extra.duration = duration;
      return extra;
    }

    /** A play requested and never started: send its play (no playing time follows). */
    function sendUnstartedPlay(ts) {
      if (playRequestedAt === null || (state !== IDLE && state !== ENDED)) return;
      playRequestedAt = null;
      var extra = playExtra();
      emit("play", Object.keys(extra).length ? extra : null, ts);
    }

    var tracker = {
      config: config,
      setTimeSource: function (fn) {
        timeSource = fn;
      },
      setDurationSource: function (fn) {
        durationSource = fn;
      },
      /** The viewer (or autoplay) asked to play; play() at the first frame ends the wait. */
      requestPlay: function () {
        if ((state === IDLE || state === ENDED) && playRequestedAt === null) {
          playRequestedAt = clock();
        }
      },
      state: function () {
        return state;
      },
      play: function () {
        if (state === PLAYING) return;
        if (state === BUFFERING) return tracker.bufferEnd();
        var extra = null;
        if (state === IDLE || state === ENDED) {
          extra = playExtra();
          if (playRequestedAt !== null) {
            extra.startupMs = Math.max(0, Math.round(clock() - playRequestedAt));
          }
          if (!Object.keys(extra).length) extra = null;
        }
        playRequestedAt = null;
        state = PLAYING;
        emit("play", extra);
        startHeartbeat();
      },
      pause: function () {
        if (state !== PLAYING && state !== BUFFERING) return;
        state = PAUSED;
        stopHeartbeat();
        emit("pause");
      },
      bufferStart: function () {
        if (state !== PLAYING) return; // startup loading is not rebuffering
        state = BUFFERING;
        stopHeartbeat();
        emit("buffer_start");
      },
      bufferEnd: function () {
        if (state !== BUFFERING) return;
        state = PLAYING;
        emit("buffer_end");
        startHeartbeat();
      },
      ended: function () {
        if (state === ENDED || state === IDLE) return;
        state = ENDED;
        stopHeartbeat();
        emit("ended");
        flush();
      },
      /** extra.fatal: true for an error that stopped playback (SPEC §6.5). */
      error: function (extra) {
        // The unstarted play and its fatal error share one instant: no playing time
        // lies between them, so the session reads as an exit before video start.
        var ts = new Date().toISOString();
        if (extra && extra.fatal) sendUnstartedPlay(ts);
        emit("error", extra || {}, ts);
      },
      flush: flush,
      flushWithBeacon: flushWithBeacon,
      pendingBatches: function () {
        return pending.length + (buffer.length ? 1 : 0);
      },
      stats: function () {
        return {
          events: stats.events,
          batchesSent: stats.batchesSent,
          retries: stats.retries,
          dropped: stats.dropped,
          beacons: stats.beacons,
          restored: stats.restored,
          pending: pending.length,
          buffered: buffer.length,
        };
      },
      restore: restore,
      destroy: function () {
        stopHeartbeat();
        sendUnstartedPlay();
        flushWithBeacon();
        if (restoreTimer) clearTimeout(restoreTimer);
        releaseLock();
        global.removeEventListener("pagehide", onHide);
        global.removeEventListener("pageshow", onShow);
        global.removeEventListener("online", onOnline);
        global.document.removeEventListener("visibilitychange", onVisibility);
      },
    };

    function onHide() {
      sendUnstartedPlay(); // the page goes away before the first frame: an exit before start
      flushWithBeacon();
    }

    function onVisibility() {
      if (global.document.visibilityState === "hidden") flushWithBeacon();
      else restore();
    }

    function onShow(event) {
      if (event.persisted) restore(); // back from the back/forward cache
    }

    function onOnline() {
      if (retryTimer) clearTimeout(retryTimer);
      retryTimer = null;
      failures = 0;
      sendNext();
    }

    global.addEventListener("pagehide", onHide);
    global.addEventListener("pageshow", onShow);
    global.addEventListener("online", onOnline);
    global.document.addEventListener("visibilitychange", onVisibility);
    // Batches an earlier page stored but never had confirmed (offline, crashed, beacons).
    restore();
    return tracker;
  }

  // --- HTML5 <video> (native HLS or hls.js) -----------------------------------------

  var HLS_TYPE = "application/vnd.apple.mpegurl";

  function loadScript(src) {
    return new Promise(function (resolve, reject) {
      var script = global.document.createElement("script");
      script.src = src;
      script.async = true;
      script.onload = resolve;
      script.onerror = function () {
        reject(new Error("could not load " + src));
      };
      global.document.head.appendChild(script);
    });
  }

  /**
   * Track an HTML5 video. With options.src, also load it: an HLS URL (.m3u8) plays
   * natively where the browser can (canPlayType), else through hls.js (window.Hls, or
   * loaded from options.hlsJsUrl). options.hls = "auto" | "native" | "hlsjs".
   * Returns a promise of {engine: "native" | "hls.js" | "file", hls}.
   */
  function attachVideo(video, tracker, options) {
    options = options || {};
    var hls = null;
    tracker.setTimeSource(function () {
      return video.currentTime;
    });
    tracker.setDurationSource(function () {
      return isFinite(video.duration) ? video.duration : null; // Infinity: live
    });

    video.addEventListener("play", function () {
      tracker.requestPlay(); // the play request; "playing" below is the first frame
    });
    video.addEventListener("playing", function () {
      tracker.play(); // also ends a buffering spell
    });
    video.addEventListener("pause", function () {
      if (!video.ended) tracker.pause(); // browsers fire pause right before ended
    });
    video.addEventListener("ended", function () {
      tracker.ended();
    });
    video.addEventListener("waiting", function () {
      tracker.bufferStart();
    });
    video.addEventListener("stalled", function () {
      // stalled only means the download is slow; it is buffering once playback can't go on.
      if (!video.paused && video.readyState < 3) tracker.bufferStart();
    });
    video.addEventListener("error", function () {
      var error = video.error;
      tracker.error({
        source: "video",
        code: error ? error.code : null,
        message: error && error.message ? String(error.message).slice(0, 200) : "",
        fatal: true, // a media element error stops playback
      });
    });

    var src = options.src;
    if (!src) return Promise.resolve({ engine: "file", hls: null });
    var isHls = /\.m3u8(\?|#|$)/i.test(src) || options.type === HLS_TYPE;
    if (!isHls) {
      video.src = src;
      return Promise.resolve({ engine: "file", hls: null });
    }
    var mode = options.hls || "auto";
    var native = !!video.canPlayType(HLS_TYPE);
    if (mode === "native" || (mode === "auto" && native)) {
      video.src = src;
      return Promise.resolve({ engine: "native", hls: null });
    }
    var ready = global.Hls
      ? Promise.resolve()
      : options.hlsJsUrl
        ? loadScript(options.hlsJsUrl)
        : Promise.reject(new Error("hls.js is not loaded and no hlsJsUrl was given"));
    return ready.then(function () {
      var Hls = global.Hls;
      if (!Hls || !Hls.isSupported()) {
        if (native) {
          video.src = src;
          return { engine: "native", hls: null };
        }
        tracker.error({ source: "hls", code: "UNSUPPORTED", message: "no HLS support", fatal: true });
        throw new Error("this browser cannot play HLS");
      }
      hls = new Hls(options.hlsConfig || {});
      hls.on(Hls.Events.ERROR, function (name, data) {
        if (data && data.fatal) {
          tracker.error({
            source: "hls.js",
            code: data.type,
            message: String(data.details || ""),
            fatal: true,
          });
        }
      });
      hls.loadSource(src);
      hls.attachMedia(video);
      return { engine: "hls.js", hls: hls };
    });
  }

  // --- Bunny Stream embed (player.js) --------------------------------------------------

  function bunnyEmbedUrl(libraryId, videoGuid, params) {
    var query = [];
    Object.keys(params || {}).forEach(function (key) {
      query.push(encodeURIComponent(key) + "=" + encodeURIComponent(String(params[key])));
    });
    return (
      "https://iframe.mediadelivery.net/embed/" + encodeURIComponent(libraryId) + "/" +
      encodeURIComponent(videoGuid) + (query.length ? "?" + query.join("&") : "")
    );
  }

  /**
   * Track a Bunny Stream iframe through player.js (window.playerjs, which the page loads).
   * Bunny emits ready, play, pause, ended, timeupdate ({seconds, duration}), seeked and
   * error; "buffering" is used when the player supports it, and the next play or
   * advancing timeupdate ends the buffering spell.
   */
  function attachBunny(iframe, tracker, options) {
    options = options || {};
    var playerjs = options.playerjs || global.playerjs;
    if (!playerjs || typeof playerjs.Player !== "function") {
      throw new Error("player.js (window.playerjs) is needed to track a Bunny Stream embed");
    }
    // Created before the iframe finishes loading, so it sees the "ready" message.
    var player = new playerjs.Player(iframe);
    var lastSeconds = null;
    var lastDuration = null;
    var bufferedAt = null;
    tracker.setTimeSource(function () {
      return lastSeconds;
    });
    tracker.setDurationSource(function () {
      return lastDuration;
    });
    player.on("ready", function () {
      player.on("play", function () {
        bufferedAt = null;
        tracker.play();
      });
      player.on("pause", function () {
        tracker.pause();
      });
      player.on("ended", function () {
        tracker.ended();
      });
      player.on("timeupdate", function (data) {
        if (data && data.seconds !== undefined) lastSeconds = data.seconds;
        if (data && data.duration !== undefined) lastDuration = data.duration;
        if (bufferedAt !== null && lastSeconds !== null && lastSeconds > bufferedAt) {
          bufferedAt = null;
          tracker.bufferEnd();
        }
      });
      player.on("error", function (data) {
        tracker.error({ source: "bunny", code: (data && data.code) || null,
          message: data && data.message ? String(data.message).slice(0, 200) : "" });
      });
      if (typeof player.supports !== "function" || player.supports("event", "buffering")) {
        player.on("buffering", function () {
          bufferedAt = lastSeconds === null ? 0 : lastSeconds;
          tracker.bufferStart();
        });
      }
    });
    return player;
  }

  // --- YouTube IFrame API ----------------------------------------------------------

  var YT_STATES = { UNSTARTED: -1, ENDED: 0, PLAYING: 1, PAUSED: 2, BUFFERING: 3, CUED: 5 };
  var youTubeApi = null;

  function loadYouTubeApi(url) {
    if (global.YT && typeof global.YT.Player === "function") return Promise.resolve(global.YT);
    if (youTubeApi) return youTubeApi;
    youTubeApi = new Promise(function (resolve, reject) {
      var previous = global.onYouTubeIframeAPIReady;
      global.onYouTubeIframeAPIReady = function () {
        if (typeof previous === "function") previous();
        resolve(global.YT);
      };
      loadScript(url || "https://www.youtube.com/iframe_api").catch(reject);
    });
    return youTubeApi;
  }

  /** Map one YouTube onStateChange state onto the tracker. */
  function youTubeState(tracker, state) {
    if (state === YT_STATES.PLAYING) tracker.play(); // also ends buffering
    else if (state === YT_STATES.PAUSED) tracker.pause();
    else if (state === YT_STATES.BUFFERING) {
      tracker.requestPlay(); // before the first frame, buffering is the play request
      tracker.bufferStart();
    }
    else if (state === YT_STATES.ENDED) tracker.ended();
    // -1 (unstarted) and 5 (cued) are before playback: nothing to record.
  }

  /**
   * Track a YouTube video: builds a YT.Player in `element` (an element or its id) and maps
   * onStateChange (-1 unstarted, 0 ended, 1 playing, 2 paused, 3 buffering, 5 cued) and
   * onError onto the tracker; videoTime comes from getCurrentTime(), polled every second
   * so the last position is known even after the player is gone.
   * Returns a promise of the YT.Player.
   */
  function attachYouTube(element, videoId, tracker, options) {
    options = options || {};
    var lastSeconds = null;
    var player = null;
    tracker.setTimeSource(function () {
      if (player && typeof player.getCurrentTime === "function") {
        var now = player.getCurrentTime();
        if (typeof now === "number" && isFinite(now)) lastSeconds = now;
      }
      return lastSeconds;
    });
    tracker.setDurationSource(function () {
      if (!player || typeof player.getDuration !== "function") return null;
      // A live video has no fixed length; getDuration() is 0 before the metadata.
      var data = typeof player.getVideoData === "function" ? player.getVideoData() : null;
      if (data && data.isLive) return null;
      return player.getDuration() || null;
    });
    return loadYouTubeApi(options.apiUrl).then(function (YT) {
      return new Promise(function (resolve) {
        player = new YT.Player(element, {
          videoId: videoId,
          playerVars: options.playerVars || { playsinline: 1, rel: 0 },
          events: {
            onReady: function () {
              resolve(player);
            },
            onStateChange: function (event) {
              youTubeState(tracker, Number(event.data));
            },
            onError: function (event) {
              // onError means the video cannot be played (invalid id, not embeddable …).
              tracker.error({ source: "youtube", code: event ? event.data : null, fatal: true });
            },
          },
        });
        setInterval(function () {
          if (player && typeof player.getCurrentTime === "function") {
            var now = player.getCurrentTime();
            if (typeof now === "number" && isFinite(now)) lastSeconds = now;
          }
        }, 1000);
      });
    });
  }

  // --- mount: ask the API which provider to use -------------------------------------

  function providerFor(info, preferred) {
    var providers = info.providers || [];
    var wanted = preferred || info.preferredProvider;
    var playable = ["hls", "bunny_stream", "youtube"];
    var match = providers.filter(function (p) {
      return p.provider === wanted && playable.indexOf(p.provider) >= 0;
    })[0];
    return (
      match ||
      providers.filter(function (p) {
        return playable.indexOf(p.provider) >= 0;
      })[0] ||
      null
    );
  }

  /**
   * Fetch GET {infoUrl} (default /api/streams/<streamId>), build the preferred provider's
   * player inside `container` and track it. Resolves to {provider, tracker, player, info}.
   */
  function mount(container, options) {
    options = options || {};
    if (typeof container === "string") container = global.document.querySelector(container);
    var streamId = options.streamId;
    var infoUrl = options.infoUrl || "/api/streams/" + encodeURIComponent(streamId);
    return global
      .fetch(infoUrl, { headers: { Accept: "application/json" }, credentials: "omit" })
      .then(function (response) {
        if (!response.ok) throw new Error("stream " + streamId + ": HTTP " + response.status);
        return response.json();
      })
      .then(function (info) {
        var provider = providerFor(info, options.provider);
        if (!provider) throw new Error("stream " + streamId + " has no playable provider");
        var tracker = createTracker({
          endpoint: options.endpoint,
          streamId: info.streamId,
          clientId: options.clientId,
          heartbeatInterval: options.heartbeatInterval,
          flushInterval: options.flushInterval,
          retryBaseMs: options.retryBaseMs,
          onEvent: options.onEvent,
        });
        var result = { provider: provider.provider, tracker: tracker, player: null, info: info };
        container.innerHTML = "";
        if (provider.provider === "hls") {
          var video = global.document.createElement("video");
          video.controls = true;
          video.playsInline = true;
          video.muted = !!options.muted;
          video.autoplay = !!options.autoplay;
          video.setAttribute("data-echonest-player", "hls");
          container.appendChild(video);
          result.player = video;
          return attachVideo(video, tracker, {
            src: provider.externalId,
            hls: options.hls,
            hlsJsUrl: options.hlsJsUrl,
          }).then(function (loaded) {
            result.engine = loaded.engine;
            result.hls = loaded.hls;
            return result;
          });
        }
        if (provider.provider === "bunny_stream") {
          var iframe = global.document.createElement("iframe");
          var libraryId = (provider.config || {}).library_id || (provider.config || {}).libraryId;
          iframe.src = bunnyEmbedUrl(libraryId, provider.externalId, options.bunnyParams || {});
          iframe.allow = "accelerometer; gyroscope; autoplay; encrypted-media; picture-in-picture";
          iframe.allowFullscreen = true;
          iframe.setAttribute("data-echonest-player", "bunny_stream");
          container.appendChild(iframe);
          result.player = attachBunny(iframe, tracker, options);
          return result;
        }
        var target = global.document.createElement("div");
        target.setAttribute("data-echonest-player", "youtube");
        container.appendChild(target);
        return attachYouTube(target, provider.externalId, tracker, {
          apiUrl: options.youTubeApiUrl,
        }).then(function (player) {
          result.player = player;
          return result;
        });
      });
  }

  global.EchoNestPlayer = {
    version: VERSION,
    createTracker: createTracker,
    attachVideo: attachVideo,
    attachBunny: attachBunny,
    attachYouTube: attachYouTube,
    bunnyEmbedUrl: bunnyEmbedUrl,
    youTubeStates: YT_STATES,
    mount: mount,
    clientId: clientId,
    uuid: uuid4,
  };
})(window);
