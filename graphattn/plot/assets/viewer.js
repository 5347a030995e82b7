/* graphattn offline attention viewer: reads the JSON in #graphattn-data, draws inline SVG.
   No network access: everything it needs is in the page. */
(function () {
  "use strict";
  var data = JSON.parse(document.getElementById("graphattn-data").textContent);
  var NS = "http://www.w3.org/2000/svg";
  var VIRIDIS = [[68, 1, 84], [72, 40, 120], [62, 74, 137], [49, 104, 142], [38, 130, 142],
    [31, 158, 137], [53, 183, 121], [109, 205, 89], [180, 222, 44], [253, 231, 37]];
  var state = { layer: 0, head: "all", view: data.layers[0].cross ? "bipartite" : "arc",
    sel: null, hover: null };
  var edges = [];   // {el, src, dst}
  var tokens = [];  // {el, side, index}
  var layerSel = document.getElementById("ga-layer");
  var headSel = document.getElementById("ga-head");
  var canvas = document.getElementById("ga-canvas");
  var info = document.getElementById("ga-info");
  var note = document.getElementById("ga-note");
  var legend = document.getElementById("ga-legend");

  function viridis(t) {
    t = Math.max(0, Math.min(1, t)) * (VIRIDIS.length - 1);
    var k = Math.min(Math.floor(t), VIRIDIS.length - 2), f = t - k, a = VIRIDIS[k], b = VIRIDIS[k + 1];
    return "rgb(" + [0, 1, 2].map(function (c) { return Math.round(a[c] + f * (b[c] - a[c])); }).join(",") + ")";
  }

  function el(tag, attrs, parent) {
    var node = document.createElementNS(NS, tag);
    Object.keys(attrs).forEach(function (k) { node.setAttribute(k, attrs[k]); });
    if (parent) { parent.appendChild(node); }
    return node;
  }

  function option(select, value, text) {
    var o = document.createElement("option");
    o.value = value; o.textContent = text; select.appendChild(o);
  }

  function current() { return data.layers[state.layer]; }

  // The heads to draw: [{key, color, w: Array(E)}].
  function heads(L, forMatrix) {
    if (!L.weighted) { return [{ key: "edges", color: data.edgeColor, w: L.w[0] }]; }
    var mean = function () {
      var out = new Array(L.src.length).fill(0);
      L.w.forEach(function (row) { row.forEach(function (x, e) { out[e] += x / L.w.length; }); });
      return [{ key: "mean", color: data.meanColor, w: out }];
    };
    if (state.head === "mean" || (state.head === "all" && (forMatrix || L.w.length === 1))) {
      return L.w.length === 1 ? [{ key: 0, color: data.headColors[0], w: L.w[0] }] : mean();
    }
    if (state.head === "all") {
      return L.w.map(function (row, h) {
        return { key: h, color: data.headColors[h % data.headColors.length], w: row };
      });
    }
    var h = Number(state.head);
    return [{ key: h, color: data.headColors[h % data.headColors.length], w: L.w[h] }];
  }

  function maxOf(hs) {
    var top = 0;
    hs.forEach(function (h) { h.w.forEach(function (x) { if (x > top) { top = x; } }); });
    return top > 0 ? top : 1;
  }

  function addToken(svg, side, index, x, y, anchor, rotate) {
    var L = current();
    var label = side === "src" ? L.srcTokens[index] : L.tokens[index];
    var attrs = { x: x, y: y, "text-anchor": anchor, "class": "ga-token",
      "data-side": side, "data-index": index, "dominant-baseline": "middle" };
    if (rotate) { attrs.transform = "rotate(" + rotate + " " + x + " " + y + ")"; }
    var t = el("text", attrs, svg);
    t.textContent = label;
    t.addEventListener("click", function () {
      var same = state.sel && state.sel.side === side && state.sel.index === index;
      state.sel = same ? null : { side: side, index: index };
      highlight();
    });
    t.addEventListener("mouseenter", function () { state.hover = { side: side, index: index }; highlight(); });
    t.addEventListener("mouseleave", function () { state.hover = null; highlight(); });
    tokens.push({ el: t, side: side, index: index });
  }

  function addEdge(node, e) {
    node.setAttribute("class", node.getAttribute("class") || "ga-edge");
    node.setAttribute("data-src", current().src[e]);
    node.setAttribute("data-dst", current().dst[e]);
    edges.push({ el: node, src: current().src[e], dst: current().dst[e] });
  }

  function drawArc(svg) {
    var L = current(), n = L.n, hs = heads(L, false), top = maxOf(hs);
    var dx = Math.max(26, Math.min(64, 1100 / n)), x0 = 40;
    var up = 0, down = 0;
    for (var e = 0; e < L.src.length; e++) {
      var span = (L.dst[e] - L.src[e]) * dx / 2;
      if (span > up) { up = span; }
      if (-span > down) { down = -span; }
    }
    var base = 30 + 0.6 * up + 14, rotate = n > 12 ? -60 : 0;
    var width = x0 * 2 + dx * (n - 1) + 40, height = base + 0.6 * down + (rotate ? 110 : 50);
    svg.setAttribute("viewBox", "0 0 " + width + " " + height);
    svg.setAttribute("width", width); svg.setAttribute("height", height);
    hs.forEach(function (h) {
      for (var e = 0; e < L.src.length; e++) {
        var s = h.w[e] / top, xs = x0 + L.src[e] * dx, xd = x0 + L.dst[e] * dx, node;
        if (xs === xd) {
          node = el("circle", { cx: xs, cy: base - 7, r: 7, "class": "ga-edge" }, svg);
        } else {
          var rx = Math.abs(xd - xs) / 2;
          node = el("path", { d: "M" + xs + " " + base + " A" + rx + " " + (0.6 * rx) + " 0 0 1 " + xd + " " + base,
            "class": "ga-edge" }, svg);
        }
        node.setAttribute("stroke", h.color);
        node.setAttribute("stroke-opacity", (0.05 + 0.95 * s).toFixed(3));
        node.setAttribute("stroke-width", (0.6 + 3 * s).toFixed(2));
        node.setAttribute("data-head", h.key);
        addEdge(node, e);
      }
    });
    for (var k = 0; k < n; k++) {
      el("circle", { cx: x0 + k * dx, cy: base, r: 3.5, "class": "ga-node" }, svg);
      addToken(svg, "both", k, x0 + k * dx, base + 0.6 * down + 16, rotate ? "end" : "middle", rotate);
    }
  }

  function drawBipartite(svg) {
    var L = current(), hs = heads(L, false), top = maxOf(hs);
    var dy = 22, xl = 190, xr = 470, y0 = 46, rows = Math.max(L.n, L.m);
    var width = 680, height = y0 + dy * rows + 10;
    var ys = function (k, count) { return y0 + dy * (k + (rows - count) / 2); };
    svg.setAttribute("viewBox", "0 0 " + width + " " + height);
    svg.setAttribute("width", width); svg.setAttribute("height", height);
    el("text", { x: xl, y: 20, "text-anchor": "middle", "class": "ga-caption" }, svg).textContent = "sources j";
    el("text", { x: xr, y: 20, "text-anchor": "middle", "class": "ga-caption" }, svg).textContent = "targets i";
    hs.forEach(function (h) {
      for (var e = 0; e < L.src.length; e++) {
        var s = h.w[e] / top;
        var node = el("line", { x1: xl, y1: ys(L.src[e], L.m), x2: xr, y2: ys(L.dst[e], L.n),
          "class": "ga-edge", stroke: h.color, "stroke-opacity": (0.05 + 0.95 * s).toFixed(3),
          "stroke-width": (0.6 + 3 * s).toFixed(2), "data-head": h.key }, svg);
        addEdge(node, e);
      }
    });
    for (var j = 0; j < L.m; j++) {
      el("circle", { cx: xl, cy: ys(j, L.m), r: 3.5, "class": "ga-node" }, svg);
      addToken(svg, "src", j, xl - 10, ys(j, L.m), "end", 0);
    }
    for (var i = 0; i < L.n; i++) {
      el("circle", { cx: xr, cy: ys(i, L.n), r: 3.5, "class": "ga-node" }, svg);
      addToken(svg, "dst", i, xr + 10, ys(i, L.n), "start", 0);
    }
  }

  function drawMatrix(svg) {
    var L = current(), hs = heads(L, true), top = maxOf(hs), w = hs[0].w;
    var c = Math.max(5, Math.min(28, 700 / Math.max(L.n, L.m))), ox = 130, oy = 110;
    var width = ox + c * L.m + 20, height = oy + c * L.n + 20;
    svg.setAttribute("viewBox", "0 0 " + width + " " + height);
    svg.setAttribute("width", width); svg.setAttribute("height", height);
    var defs = el("defs", {}, svg);
    var pat = el("pattern", { id: "ga-hatch", width: 6, height: 6, patternUnits: "userSpaceOnUse",
      patternTransform: "rotate(45)" }, defs);
    el("rect", { width: 6, height: 6, fill: data.nonedgeColor }, pat);
    el("line", { x1: 0, y1: 0, x2: 0, y2: 6, stroke: data.nonedgeHatchColor, "stroke-width": 1.5 }, pat);
    el("rect", { x: ox, y: oy, width: c * L.m, height: c * L.n, fill: "url(#ga-hatch)",
      "class": "ga-nonedges" }, svg);
    for (var e = 0; e < L.src.length; e++) {
      var cell = el("rect", { x: ox + c * L.src[e], y: oy + c * L.dst[e], width: c, height: c,
        fill: L.weighted ? viridis(w[e] / top) : data.edgeColor, "class": "ga-cell" }, svg);
      var title = el("title", {}, cell);
      title.textContent = L.srcTokens[L.src[e]] + " \u2192 " + L.tokens[L.dst[e]] +
        (L.weighted ? ": " + w[e].toFixed(4) : "");
      addEdge(cell, e);
    }
    var step = Math.max(1, Math.ceil(12 / c));
    for (var i = 0; i < L.n; i += step) { addToken(svg, "dst", i, ox - 6, oy + c * (i + 0.5), "end", 0); }
    for (var j = 0; j < L.m; j += step) { addToken(svg, "src", j, ox + c * (j + 0.5), oy - 6, "start", -60); }
  }

  function related(focus, edge, L) {
    var self = !L.cross;
    var isIn = (self || focus.side !== "src") && edge.dst === focus.index;
    var isOut = (self || focus.side !== "dst") && edge.src === focus.index;
    return isIn ? "ga-in" : isOut ? "ga-out" : "";
  }

  function highlight() {
    var L = current(), focus = state.sel || state.hover, linked = {};
    edges.forEach(function (edge) {
      var base = edge.el.getAttribute("class").split(" ")[0], kind = focus ? related(focus, edge, L) : "";
      edge.el.setAttribute("class", base + (focus ? " " + (kind || "ga-dim") : ""));
      if (kind === "ga-in") { linked["src:" + edge.src] = true; }
      if (kind === "ga-out") { linked["dst:" + edge.dst] = true; }
    });
    tokens.forEach(function (t) {
      var isFocus = focus && t.index === focus.index && (!L.cross || t.side === focus.side);
      var isLinked = focus && !isFocus && (linked[(t.side === "dst" ? "dst:" : "src:") + t.index] ||
        (!L.cross && (linked["src:" + t.index] || linked["dst:" + t.index])));
      t.el.setAttribute("class", "ga-token" + (isFocus ? " ga-selected" : isLinked ? " ga-linked" : ""));
    });
    describe(focus, L);
  }

  function describe(focus, L) {
    if (!focus) { info.textContent = "Hover or click a token to highlight its incoming and outgoing edges."; return; }
    var w = heads(L, true)[0].w, incoming = [], outgoing = [];
    for (var e = 0; e < L.src.length; e++) {
      var edge = { src: L.src[e], dst: L.dst[e] }, kind = related(focus, edge, L);
      if (kind === "ga-in") { incoming.push([L.srcTokens[L.src[e]], w[e]]); }
      if (kind === "ga-out") { outgoing.push([L.tokens[L.dst[e]], w[e]]); }
    }
    var fmt = function (list) {
      list.sort(function (a, b) { return b[1] - a[1]; });
      return list.slice(0, 6).map(function (p) { return p[0] + (L.weighted ? " " + p[1].toFixed(3) : ""); }).join(", ") +
        (list.length > 6 ? ", \u2026 (" + list.length + ")" : "") || "none";
    };
    var label = focus.side === "src" ? L.srcTokens[focus.index] : L.tokens[focus.index];
    info.textContent = "\u201c" + label + "\u201d (" + focus.index + ")  attends to: " + fmt(incoming) +
      "  |  attended by: " + fmt(outgoing);
  }

  function drawLegend(L) {
    legend.textContent = "";
    heads(L, state.view === "matrix").forEach(function (h) {
      var item = document.createElement("span"), sw = document.createElement("span");
      sw.className = "ga-swatch"; sw.style.background = h.color;
      item.appendChild(sw);
      item.appendChild(document.createTextNode(h.key === "mean" ? "mean over heads" :
        h.key === "edges" ? "edge (no weights)" : "head " + h.key));
      legend.appendChild(item);
    });
  }

  function render() {
    var L = current();
    edges = []; tokens = [];
    canvas.textContent = "";
    var svg = el("svg", { xmlns: NS, id: "ga-svg", "data-view": state.view }, canvas);
    if (state.view === "arc" && L.cross) { state.view = "bipartite"; svg.setAttribute("data-view", "bipartite"); }
    if (state.view === "arc") { drawArc(svg); } else if (state.view === "bipartite") { drawBipartite(svg); } else { drawMatrix(svg); }
    document.querySelectorAll("#ga-views button").forEach(function (b) {
      b.className = b.getAttribute("data-view") === state.view ? "ga-active" : "";
      b.disabled = b.getAttribute("data-view") === "arc" && L.cross;
    });
    note.textContent = [L.name, L.note].filter(Boolean).join(" \u00b7 ");
    drawLegend(L);
    highlight();
  }

  function fillHeads() {
    var L = current(), keep = state.head;
    headSel.textContent = "";
    if (!L.weighted) { option(headSel, "all", "no weights"); state.head = "all"; return; }
    option(headSel, "all", "all heads"); option(headSel, "mean", "mean over heads");
    for (var h = 0; h < L.w.length; h++) { option(headSel, String(h), "head " + h); }
    state.head = (keep === "all" || keep === "mean" || Number(keep) < L.w.length) ? keep : "all";
    headSel.value = String(state.head);
  }

  data.layers.forEach(function (L, k) { option(layerSel, String(k), "layer " + k + (L.cross ? " (cross)" : "")); });
  layerSel.addEventListener("change", function () {
    state.layer = Number(layerSel.value); state.sel = null; state.hover = null; fillHeads(); render();
  });
  headSel.addEventListener("change", function () { state.head = headSel.value; render(); });
  document.querySelectorAll("#ga-views button").forEach(function (b) {
    b.addEventListener("click", function () { state.view = b.getAttribute("data-view"); render(); });
  });
  fillHeads();
  render();
  document.body.setAttribute("data-ready", "true");
})();
