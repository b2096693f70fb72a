// kvreg UI: small enhancements only; every page works without them.
(function () {
  "use strict";
  // Copy buttons: shown only where the clipboard can be written.
  document.querySelectorAll("button[data-copy]").forEach(function (btn) {
    var src = document.getElementById(btn.getAttribute("data-copy"));
    if (!src || !navigator.clipboard) return;
    btn.hidden = false;
    btn.addEventListener("click", function () {
      navigator.clipboard.writeText(src.textContent).then(function () {
        var was = btn.textContent;
        btn.textContent = "Copied";
        setTimeout(function () { btn.textContent = was; }, 1500);
      });
    });
  });
  // The search box submits as one types, after a pause.
  var form = document.getElementById("search");
  if (form) {
    var input = form.querySelector("input[name=q]");
    var timer;
    if (input && input.value) {
      input.focus();
      input.setSelectionRange(input.value.length, input.value.length);
    }
    if (input) input.addEventListener("input", function () {
      clearTimeout(timer);
      timer = setTimeout(function () { form.submit(); }, 400);
    });
  }
})();
