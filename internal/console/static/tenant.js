// bulkhead console: the tenant admin's pages. A "Copy" button beside a
// freshly created API key (shown only where scripts run; without them
// the key is selected and copied by hand). No inline script: the
// Content-Security-Policy forbids it.
(function () {
  "use strict";
  function start() {
    document.querySelectorAll("button[data-copy]").forEach(function (b) {
      var field = document.getElementById(b.getAttribute("data-copy"));
      var said = document.getElementById("copied");
      if (!field || !navigator.clipboard) { return; }
      b.hidden = false;
      b.addEventListener("click", function () {
        navigator.clipboard.writeText(field.value).then(function () {
          if (said) { said.textContent = "Copied to the clipboard."; }
        }, function () {
          field.select();
          if (said) { said.textContent = "Press Ctrl+C to copy the selected key."; }
        });
      });
    });
    var key = document.getElementById("new-key");
    if (key) { key.focus(); key.select(); }
  }
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
