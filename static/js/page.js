// Runs on every page (templates/base.html); kept small and cheap (docs/accessibility.md).
(function () {
  "use strict";

  // Times are formatted on the server in the viewer's zone: the one chosen in their
  // profile, else the browser's, remembered in this cookie (organizations.timezones).
  try {
    var zone = Intl.DateTimeFormat().resolvedOptions().timeZone;
    if (zone && document.cookie.indexOf("clacks_tz=" + encodeURIComponent(zone)) === -1) {
      document.cookie = "clacks_tz=" + encodeURIComponent(zone) + "; path=/; max-age=31536000; SameSite=Lax";
    }
  } catch (error) { /* no Intl: times stay in UTC */ }

  // A box that scrolls sideways (a wide table, a code snippet) must be reachable by
  // keyboard to be scrolled: give it a tab stop and a name when it actually overflows.
  function scrollables() {
    var boxes = document.querySelectorAll(".table-scroll, .table-wrap, .cohort-scroll, pre");
    for (var i = 0; i < boxes.length; i++) {
      var box = boxes[i];
      if (box.hasAttribute("tabindex") || box.scrollWidth <= box.clientWidth + 1) continue;
      if (box.querySelector("a, button, input, select, textarea, [tabindex]")) continue;
      box.setAttribute("tabindex", "0");
      if (!box.hasAttribute("aria-label") && !box.hasAttribute("aria-labelledby")) {
        var caption = box.querySelector("caption");
        var name = caption ? caption.textContent.trim() : (box.id ? box.id.replace(/[-_]/g, " ") : "");
        box.setAttribute("role", "region");
        box.setAttribute("aria-label", (name || "Scrollable content") + " (scrolls sideways)");
      }
    }
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", scrollables);
  else scrollables();
})();
