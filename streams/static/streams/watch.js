// The watch page (templates/streams/watch.html): mounts the player from its data attributes.
// A static file, not an inline script, so the Content-Security-Policy needs no unsafe-inline.
(function () {
  "use strict";
  var container = document.getElementById("player");
  var status = document.getElementById("status");
  var log = document.getElementById("event-log");
  var data = container.dataset;
  window.echoNestWatch = EchoNestPlayer.mount(container, {
    streamId: data.streamId,
    infoUrl: data.infoUrl,
    endpoint: data.endpoint,
    heartbeatInterval: Number(data.heartbeatInterval),
    hls: data.hls,
    hlsJsUrl: data.hlsJsUrl,
    autoplay: data.autoplay === "1",
    muted: data.autoplay === "1",
    onEvent: function (event) {
      var item = document.createElement("li");
      item.textContent = event.ts + "  " + event.type +
        (event.videoTime !== undefined ? "  @" + event.videoTime.toFixed(1) + "s" : "");
      log.appendChild(item);
    },
  }).then(function (watch) {
    document.getElementById("title").textContent = watch.info.title;
    status.textContent = "Provider: " + watch.provider + (watch.engine ? " (" + watch.engine + ")" : "") +
      " · viewer " + watch.tracker.config.clientId;
    container.setAttribute("data-ready", watch.provider);
    return watch;
  }, function (error) {
    status.textContent = String(error.message || error);
    status.className = "error";
    container.setAttribute("data-ready", "error");
    throw error;
  });
})();
