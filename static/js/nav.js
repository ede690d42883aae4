// The header's disclosures (templates/base.html): the menu, the organization switcher and
// the account. Each is a <details>, so all of it works without this file; this closes
// them on Escape or a click elsewhere, keeps the menu open on wide screens in browsers
// without ::details-content (static/css/clacks.css, "Header menu"), and scrolls an app's
// current tab into view on a phone.
(function () {
  "use strict";
  var WIDE = "(min-width: 64rem)";
  var menu = document.getElementById("site-menu");

  // A disclosure whose summary is hidden (the menu on a wide screen) is not a fold: leave it open.
  function folds(details) {
    var summary = details.querySelector(":scope > summary");
    return summary && summary.offsetParent !== null;
  }

  function openOnes() {
    return Array.prototype.filter.call(
      document.querySelectorAll("details.switcher[open], details.account-menu[open], details.site-menu[open]"),
      folds
    );
  }

  if (menu && !(window.CSS && CSS.supports && CSS.supports("selector(::details-content)"))) {
    var wide = window.matchMedia(WIDE);
    var fit = function () {
      menu.classList.toggle("menu-wide", wide.matches);
      if (wide.matches) menu.setAttribute("open", "");
    };
    fit();
    if (wide.addEventListener) wide.addEventListener("change", fit);
  }

  document.addEventListener("click", function (event) {
    openOnes().forEach(function (details) {
      if (!details.contains(event.target)) details.removeAttribute("open");
    });
  });
  document.addEventListener("keydown", function (event) {
    if (event.key !== "Escape") return;
    // The innermost open fold closes first (the switcher inside the menu, then the menu).
    var open = openOnes();
    var inner = open.filter(function (d) { return !open.some(function (o) { return o !== d && d.contains(o); }); });
    inner.forEach(function (details) {
      details.removeAttribute("open");
      details.querySelector(":scope > summary").focus();
    });
  });

  var current = document.querySelector(".subnav-app [aria-current='page']");
  if (current && current.parentElement.scrollWidth > current.parentElement.clientWidth) {
    current.parentElement.scrollLeft = current.offsetLeft - current.parentElement.offsetLeft - 16;
  }
})();
