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
})();
