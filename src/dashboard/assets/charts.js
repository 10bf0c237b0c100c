// Draws the dashboard's charts with uPlot (vendored) from each element's data-chart attribute:
// {"x":[unix seconds...],"series":[{"label":"...","values":[...]}],"yLabel":"..."}.
// Loaded as a file (no inline script: the Content-Security-Policy forbids them).
(function () {
  var COLORS = ['#1d4ed8', '#b91c1c', '#15803d', '#b45309', '#7c3aed', '#0e7490', '#be185d', '#4d7c0f', '#9a3412', '#334155', '#a16207'];
  function draw(el) {
    var spec;
    try { spec = JSON.parse(el.getAttribute('data-chart')); } catch (e) { return; }
    if (!spec || !spec.x || !spec.x.length) return;
    var width = Math.max(280, el.clientWidth || 600);
    var opts = {
      width: width,
      height: 260,
      series: [{}].concat(spec.series.map(function (s, i) {
        return { label: s.label, stroke: COLORS[i % COLORS.length], width: 2, points: { show: spec.x.length < 40 } };
      })),
      axes: [{}, { label: spec.yLabel || '' }],
      scales: { x: { time: true } },
    };
    el.textContent = '';
    el.chart = new uPlot(opts, [spec.x].concat(spec.series.map(function (s) { return s.values; })), el);
  }
  function all() { document.querySelectorAll('[data-chart]').forEach(draw); }
  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', all); else all();
  document.addEventListener('htmx:after:swap', all);
})();
