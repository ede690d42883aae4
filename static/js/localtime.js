// Shows every <time datetime="…Z"> in the viewer's own time zone; the title keeps UTC.
(function () {
  "use strict";
  var dateTime = new Intl.DateTimeFormat(undefined, {
    year: "numeric", month: "short", day: "numeric", hour: "2-digit", minute: "2-digit",
  });
  var dateOnly = new Intl.DateTimeFormat(undefined, { year: "numeric", month: "short", day: "numeric" });

  function localise(root) {
    var nodes = (root || document).querySelectorAll("time[datetime]");
    for (var i = 0; i < nodes.length; i++) {
      var node = nodes[i];
      if (node.dataset.localised) continue;
      var when = new Date(node.getAttribute("datetime"));
      if (isNaN(when.getTime())) continue;
      node.textContent = (node.dataset.style === "date" ? dateOnly : dateTime).format(when);
      node.dataset.localised = "1";
    }
  }

  window.clacksLocalTime = localise;  // pages that insert rows later call this again
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", function () { localise(); });
  } else {
    localise();
  }
})();
