// Charts (templates/dashboard/_chart.html, _stacked_chart.html): a bar's exact figures
// on hover and, once the chart has keyboard focus, with the arrow keys. Every figure is
// also in the table under each chart, so nothing depends on this script.
(function () {
  "use strict";
  if (window.clacksCharts) return;  // the chart templates may be included more than once
  window.clacksCharts = true;

  function setup(figure) {
    var plot = figure.querySelector(".chart-plot");
    var tip = figure.querySelector(".chart-tip");
    if (!plot || !tip) return;
    var buckets = Array.prototype.slice.call(plot.querySelectorAll(".chart-bucket"));
    if (!buckets.length) return;
    var current = -1;

    function show(index) {
      if (current >= 0) buckets[current].classList.remove("active");
      current = index;
      var bucket = buckets[index];
      bucket.classList.add("active");
      tip.textContent = bucket.getAttribute("data-tip");
      tip.hidden = false;
      // CSSOM writes, not style attributes: allowed by the Content-Security-Policy (docs/csp.md).
      var hit = (bucket.querySelector(".chart-hit") || bucket).getBoundingClientRect();
      var frame = plot.getBoundingClientRect();
      var left = hit.left - frame.left + hit.width / 2 - tip.offsetWidth / 2;
      tip.style.left = Math.max(0, Math.min(left, frame.width - tip.offsetWidth)) + "px";
      tip.style.top = -(tip.offsetHeight + 4) + "px";
    }

    function hide() {
      if (current >= 0) buckets[current].classList.remove("active");
      tip.hidden = true;
    }

    plot.addEventListener("mouseover", function (event) {
      var bucket = event.target.closest(".chart-bucket");
      if (bucket) show(buckets.indexOf(bucket));
    });
    plot.addEventListener("mouseleave", function () {
      if (document.activeElement !== plot) hide();
    });
    plot.addEventListener("focus", function () {
      show(current >= 0 ? current : buckets.length - 1);
    });
    plot.addEventListener("blur", hide);
    plot.addEventListener("keydown", function (event) {
      var next = {
        ArrowLeft: current - 1, ArrowDown: current - 1, ArrowRight: current + 1, ArrowUp: current + 1,
        Home: 0, End: buckets.length - 1,
      }[event.key];
      if (next === undefined) return;
      event.preventDefault();
      show(Math.max(0, Math.min(buckets.length - 1, next)));
    });
  }

  function start(root) {
    (root || document).querySelectorAll("[data-chart]").forEach(setup);
  }
  window.clacksChartsSetup = start;  // the live view (live.js) calls it on the charts it swaps in
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", function () { start(); });
  else start();
})();
