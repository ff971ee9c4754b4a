// The import page: a chosen CSV file is read into the text area, so the form (which also works by
// pasting) sends it; nothing leaves the browser except by that form. The file's encoding is
// found as the server finds it (coper_server::import::decode): UTF-8 if the bytes are valid
// UTF-8 (with or without BOM), else Windows-1252, which Italian Excel writes as its "CSV".
(function () {
  "use strict";
  var file = document.getElementById("csv-file");
  var text = document.getElementById("csv");
  if (file && text) {
    file.addEventListener("change", function () {
      if (!file.files.length) { return; }
      var reader = new FileReader();
      reader.onload = function () {
        var bytes = new Uint8Array(reader.result);
        try {
          text.value = new TextDecoder("utf-8", { fatal: true }).decode(bytes);
        } catch (notUtf8) {
          text.value = new TextDecoder("windows-1252").decode(bytes);
        }
      };
      reader.readAsArrayBuffer(file.files[0]);
    });
  }
})();
