// bulkhead console: the tenant page's live charts (uPlot), fed by
// /ui/tenants/{slug}/series and refreshed every data-poll seconds.
// No inline script anywhere: the Content-Security-Policy forbids it.
(function () {
  "use strict";

  function size(el) {
    return { width: Math.max(280, el.clientWidth - 16), height: 180 };
  }

  function setup(box) {
    var url = box.getAttribute("data-series-url");
    var poll = Math.max(2, parseInt(box.getAttribute("data-poll"), 10) || 3) * 1000;
    var nodata = document.getElementById("charts-nodata");
    var charts = [];
    box.querySelectorAll(".chart").forEach(function (fig) {
      var cols = fig.getAttribute("data-column").split(",").map(Number);
      var labels = fig.getAttribute("data-label").split(",");
      var colors = ["#0a58ca", "#b42318", "#9a6700"];
      var series = [{}];
      cols.forEach(function (c, i) {
        series.push({ label: labels[i], stroke: colors[i % colors.length], width: 2, points: { show: false } });
      });
      var data = [[]].concat(cols.map(function () { return []; }));
      // Axes in the page's text colour, so that dark mode reads too.
      var fg = getComputedStyle(document.body).color;
      var grid = { stroke: "rgba(128,128,128,0.25)" };
      var axes = [{ stroke: fg, grid: grid, ticks: grid }, { stroke: fg, grid: grid, ticks: grid, size: 56 }];
      var plot = new uPlot(Object.assign({ series: series, axes: axes, legend: { live: false } }, size(fig)), data, fig);
      // uPlot's legend is a table of one row per series, headed by its name.
      fig.querySelectorAll(".u-legend th").forEach(function (th) { th.setAttribute("scope", "row"); });
      charts.push({ fig: fig, cols: cols, plot: plot });
    });

    function load() {
      fetch(url, { credentials: "same-origin", headers: { "Accept": "application/json" } })
        .then(function (r) { return r.ok ? r.json() : null; })
        .then(function (d) {
          if (!d) { return; }
          var columns = d.columns || [[]];
          var empty = !columns[0] || columns[0].length === 0;
          if (nodata) { nodata.hidden = !empty; }
          box.setAttribute("data-points", empty ? "0" : String(columns[0].length));
          charts.forEach(function (c) {
            c.plot.setData([columns[0]].concat(c.cols.map(function (i) { return columns[i] || []; })));
          });
        })
        .catch(function () { /* the next poll tries again */ });
    }
    load();
    var timer = setInterval(load, poll);
    window.addEventListener("resize", function () {
      charts.forEach(function (c) { c.plot.setSize(size(c.fig)); });
    });
    window.addEventListener("pagehide", function () { clearInterval(timer); });
  }

  function start() {
    if (typeof uPlot === "undefined") { return; }
    document.querySelectorAll("[data-series-url]").forEach(setup);
  }
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
