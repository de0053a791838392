// Draws every chart on the page from the JSON the server put in its box's data-series attribute (no inline
// script: the CSP forbids it).
(function () {
  "use strict";
  if (typeof echarts === "undefined") { return; }

  function bubble(d) {
    var biggest = Math.max.apply(null, d.points.map(function (p) { return p.size; }).concat([1]));
    return {
      tooltip: { formatter: function (p) { return p.data[3] + "<br>" + p.data[2].toLocaleString(); } },
      xAxis: { name: d.x, nameLocation: "middle", nameGap: 28 },
      yAxis: { name: d.y },
      series: [{ type: "scatter", data: d.points.map(function (p) { return [p.x, p.y, p.size, p.name]; }),
        symbolSize: function (v) { return 12 + 60 * Math.sqrt(v[2] / biggest); },
        label: { show: true, formatter: function (p) { return p.data[3]; }, position: "top" } }]
    };
  }

  function heatmap(d) {
    var most = Math.max.apply(null, d.cells.map(function (c) { return c[2]; }).concat([1]));
    return {
      tooltip: { formatter: function (p) { return d.labels[p.data[0]] + " · " + d.labels[p.data[1]] + ": " + p.data[2]; } },
      grid: { left: 160, bottom: 120 },
      xAxis: { type: "category", data: d.labels, axisLabel: { rotate: 45 } },
      yAxis: { type: "category", data: d.labels },
      visualMap: { min: 0, max: most, calculable: true, orient: "horizontal", left: "center", bottom: 0 },
      series: [{ type: "heatmap", data: d.cells, label: { show: d.labels.length <= 8 } }]
    };
  }

  function sankey(d) {
    var names = {};
    d.links.forEach(function (l) { names[l.source] = true; names[l.target] = true; });
    return {
      tooltip: { trigger: "item" },
      series: [{ type: "sankey", data: Object.keys(names).map(function (n) { return { name: n }; }),
        links: d.links, emphasis: { focus: "adjacency" }, nodeAlign: "justify" }]
    };
  }

  function lines(d) {
    var series = d.series.map(function (s) { return { name: s.name, type: "line", data: s.data }; });
    if (d.threshold !== undefined && d.threshold !== null && series.length) {
      series[0].markLine = { symbol: "none", data: [{ yAxis: d.threshold }] };
    }
    return {
      tooltip: { trigger: "axis" }, legend: { top: 0 },
      xAxis: { type: "category", data: d.x }, yAxis: { type: "value" }, series: series
    };
  }

  function histogram(d) {
    return {
      tooltip: { trigger: "axis" },
      xAxis: { type: "category", data: d.x, name: d.xName, nameLocation: "middle", nameGap: 28 },
      yAxis: { type: "value", name: d.yName },
      series: [{ type: "bar", data: d.y }]
    };
  }

  var kinds = { bubble: bubble, heatmap: heatmap, sankey: sankey, lines: lines, histogram: histogram };
  document.querySelectorAll("[data-chart]").forEach(function (box) {
    var data = JSON.parse(box.getAttribute("data-series") || "null");
    if (!data) { return; }
    if (!kinds[data.kind]) { return; }
    var chart = echarts.init(box, null, { renderer: "svg" });
    var option = kinds[data.kind](data);
    option.animation = false;  // figures, not a show: drawn at once, the same in every screenshot
    chart.setOption(option);
    box.setAttribute("data-drawn", data.kind);
    window.addEventListener("resize", function () { chart.resize(); });
  });
})();
