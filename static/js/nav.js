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

// Wide tables and code snippets scroll inside their own box rather than the page. A box
// that does scroll sideways is made a named region that takes the keyboard focus, so it
// can be scrolled without a mouse; one that fits (a laptop) is left out of the tab order.
(function () {
  "use strict";
  var BOXES = ".table-wrap, .table-scroll, main pre";

  function text(node) {
    return node ? node.textContent.replace(/\s+/g, " ").trim() : "";
  }

  function nameOf(box) {
    var table = box.querySelector("table");
    if (table) {
      var named = text(table.querySelector("caption")) || table.getAttribute("aria-label");
      // "(table)": the section around it may carry the caption's words as its own name.
      if (named) return named + " (table)";
    }
    // Otherwise the heading the box sits under: the nearest one before it in its section.
    for (var node = box; node && node !== document.body; node = node.parentElement) {
      for (var before = node.previousElementSibling; before; before = before.previousElementSibling) {
        var heading = before.matches("h1, h2, h3, h4") ? before : before.querySelector("h1, h2, h3, h4");
        if (heading && text(heading)) return text(heading) + (table ? " (table)" : " (code)");
      }
    }
    return table ? "Table" : "Code";
  }

  function mark() {
    document.querySelectorAll(BOXES).forEach(function (box) {
      var scrolls = box.scrollWidth > box.clientWidth + 1;
      if (scrolls && !box.hasAttribute("tabindex")) {
        // Remember what was added here, to take exactly that away when the box fits again.
        var added = ["tabindex"];
        box.setAttribute("tabindex", "0");
        if (!box.hasAttribute("role")) { box.setAttribute("role", "region"); added.push("role"); }
        if (!box.hasAttribute("aria-label") && !box.hasAttribute("aria-labelledby")) {
          box.setAttribute("aria-label", nameOf(box));
          added.push("aria-label");
        }
        box.dataset.scrollRegion = added.join(" ");
      } else if (!scrolls && box.dataset.scrollRegion) {
        box.dataset.scrollRegion.split(" ").forEach(function (name) { box.removeAttribute(name); });
        delete box.dataset.scrollRegion;
      }
    });
  }

  mark();
  var pending = null;
  window.addEventListener("resize", function () {
    clearTimeout(pending);
    pending = setTimeout(mark, 150);
  });
  // <details> that open later (a chart's table) can hold a box that only now has a width.
  document.addEventListener("toggle", function () { mark(); }, true);
})();
