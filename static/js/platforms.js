// The platforms page: each platform's OS versions fold under a button.
// Without this script every OS version stays listed under its platform.
(function () {
  "use strict";
  var buttons = document.querySelectorAll(".platforms-table button.expand[aria-controls]");
  for (var i = 0; i < buttons.length; i++) {
    (function (button) {
      var rows = document.getElementById(button.getAttribute("aria-controls"));
      if (!rows || !rows.children.length) return;
      rows.hidden = true;
      button.hidden = false;
      button.setAttribute("aria-expanded", "false");
      button.addEventListener("click", function () {
        var open = button.getAttribute("aria-expanded") === "true";
        button.setAttribute("aria-expanded", open ? "false" : "true");
        rows.hidden = open;
      });
    })(buttons[i]);
  }
})();
