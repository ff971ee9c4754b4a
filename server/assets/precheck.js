// The pre-check staff's pages: the inbox reloads when a conversation moves (server-sent event
// `changed` on /precheck/events, unless the clerk is typing), and the pictures turn by quarter
// turns (a document photographed sideways can be read) and grow or shrink (a stamp or a date can
// be read); a click opens the full picture.
(function () {
  "use strict";
  if (document.getElementById("inbox") && window.EventSource) {
    var events = new EventSource("/precheck/events");
    events.addEventListener("changed", function () {
      var typing = document.activeElement && /INPUT|TEXTAREA|SELECT/.test(document.activeElement.tagName);
      if (!typing) { window.location.reload(); }
    });
  }
  document.querySelectorAll(".coper-upload").forEach(function (figure) {
    var img = figure.querySelector("img");
    if (!img) { return; }
    var turn = 0;
    var width = 160;
    var show = function () {
      img.style.transform = "rotate(" + turn + "deg)";
      img.width = width;
    };
    figure.querySelectorAll(".coper-rotate").forEach(function (button) {
      button.addEventListener("click", function () {
        turn = (turn + (button.dataset.turn ? 90 : 270)) % 360;
        show();
      });
    });
    // Larger by half at each touch, up to 2,400 px (a stamp or a date can be read).
    figure.querySelectorAll(".coper-zoom").forEach(function (button) {
      button.addEventListener("click", function () {
        width = button.dataset.zoom === "1" ? Math.min(2400, Math.round(width * 1.5)) : Math.max(160, Math.round(width / 1.5));
        show();
      });
    });
  });
})();
