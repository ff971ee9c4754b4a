// The counter's pages work without JavaScript; this adds three conveniences:
// 1. the scanner's field keeps the focus, so a USB scanner's keystrokes always land in it;
// 2. the browser's camera reads QR codes where the browser can (BarcodeDetector);
// 3. the day view refreshes itself when the server says something changed (server-sent events).
(function () {
  "use strict";

  var scan = document.querySelector("[data-keep-focus]");
  if (scan) {
    var refocus = function () {
      // Leave the focus alone while the clerk is typing in another field or pressing a button.
      var active = document.activeElement;
      if (!active || active === document.body) { scan.focus(); }
    };
    scan.focus();
    document.addEventListener("click", function () { setTimeout(refocus, 0); });
    setInterval(refocus, 1000);
  }

  var cameraButton = document.getElementById("camera");
  if (cameraButton && "BarcodeDetector" in window && navigator.mediaDevices) {
    cameraButton.hidden = false;
    cameraButton.addEventListener("click", function () {
      var video = document.getElementById("camera-view");
      var detector = new window.BarcodeDetector({ formats: ["qr_code"] });
      navigator.mediaDevices.getUserMedia({ video: { facingMode: "environment" } }).then(function (stream) {
        video.srcObject = stream;
        video.hidden = false;
        video.play();
        var tick = function () {
          detector.detect(video).then(function (codes) {
            if (codes.length > 0) {
              stream.getTracks().forEach(function (t) { t.stop(); });
              scan.value = codes[0].rawValue;
              document.getElementById("scan-form").submit();
            } else {
              requestAnimationFrame(tick);
            }
          }, function () { requestAnimationFrame(tick); });
        };
        tick();
      });
    });
  }

  var live = document.getElementById("day-live");
  if (live && "EventSource" in window) {
    var state = document.getElementById("live-state");
    var refresh = function () {
      fetch("/counter/day/rows" + window.location.search, { credentials: "same-origin" })
        .then(function (r) { return r.ok ? r.text() : Promise.reject(r.status); })
        .then(function (html) {
          var current = document.getElementById("day-live");
          var holder = document.createElement("div");
          holder.innerHTML = html;
          current.replaceWith(holder.firstElementChild);
        });
    };
    var events = new EventSource("/counter/day/events");
    events.addEventListener("changed", refresh);
    // `data-live` tells whoever watches (a test, an assistive tool) that the stream is open.
    events.onopen = function () {
      state.textContent = "Aggiornamento automatico attivo.";
      state.dataset.live = "open";
    };
    events.onerror = function () {
      state.textContent = "Collegamento interrotto: nuovo tentativo in corso…";
      state.dataset.live = "retrying";
    };
  }
})();
