// The import page: a chosen CSV file is read into the text area, so the form (which also works by
// pasting) sends it; nothing leaves the browser except by that form.
(function () {
  "use strict";
  var file = document.getElementById("csv-file");
  var text = document.getElementById("csv");
  if (file && text) {
    file.addEventListener("change", function () {
      if (!file.files.length) { return; }
      var reader = new FileReader();
      reader.onload = function () { text.value = reader.result; };
      reader.readAsText(file.files[0], "utf-8");
    });
  }
})();
