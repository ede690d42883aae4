// The app overview's live view (templates/dashboard/app_overview.html): while the
// "Live updates" button is pressed, the figures are fetched every few seconds from
// the app's live/ fragment and swapped in without reloading the page. The choice is
// remembered per app in this browser.
(function () {
  "use strict";
  var box = document.getElementById("live-figures");
  var toggle = document.querySelector(".live-toggle");
  if (!box || !toggle) return;
  var status = document.querySelector(".live-status");
  var stamp = document.querySelector(".live-updated");
  var key = "clacks-live:" + location.pathname;
  var every = parseInt(box.dataset.liveEvery || "5000", 10);
  var timer = null;
  var busy = false;

  function refresh() {
    if (busy || document.hidden) return;
    // Leave the figures alone while someone is reading a chart with the keyboard.
    if (box.contains(document.activeElement)) return;
    busy = true;
    fetch(box.dataset.liveUrl, { credentials: "same-origin", headers: { Accept: "text/html" } })
      .then(function (response) {
        if (!response.ok) throw new Error("HTTP " + response.status);
        return response.text();
      })
      .then(function (html) {
        var holder = document.createElement("div");
        holder.innerHTML = html;  // the server's own markup: no inline script or style runs
        var fresh = holder.querySelector(".live-figures");
        if (!fresh) throw new Error("no figures");
        if (box.dataset.empty === "1" && fresh.dataset.ever === "1") {
          location.reload();  // the first event arrived: the whole page changes
          return;
        }
        var open = box.querySelector("details.chart-table[open]") !== null;
        box.replaceChildren(fresh);
        if (open) {
          var table = box.querySelector("details.chart-table");
          if (table) table.open = true;
        }
        if (window.clacksChartsSetup) window.clacksChartsSetup(box);
        if (stamp) stamp.textContent = "Updated " + new Date().toLocaleTimeString();
      })
      .catch(function () {
        if (stamp) stamp.textContent = "Could not refresh; trying again in a few seconds.";
      })
      .then(function () { busy = false; });
  }

  function set(on, quiet) {
    toggle.setAttribute("aria-pressed", on ? "true" : "false");
    if (timer) { clearInterval(timer); timer = null; }
    if (on) {
      refresh();
      timer = setInterval(refresh, every);
    } else if (stamp) {
      stamp.textContent = "";
    }
    if (status && !quiet) {
      status.textContent = on ? "Live updates on: the figures refresh every " + Math.round(every / 1000) + " seconds." : "Live updates off.";
    }
    try { localStorage.setItem(key, on ? "1" : "0"); } catch (error) { /* private mode: not remembered */ }
  }

  toggle.hidden = false;
  toggle.addEventListener("click", function () {
    set(toggle.getAttribute("aria-pressed") !== "true");
  });
  var saved = null;
  try { saved = localStorage.getItem(key); } catch (error) { saved = null; }
  if (saved === "1") set(true, true);
})();
