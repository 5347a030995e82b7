/* graphattn offline attention viewer: reads the JSON of its own viewer, draws inline SVG.
   Everything is scoped to the viewer's root element (class "graphattn-viewer", the parent of
   this script), so several viewers live in one document. No network access. A layer's arrays
   (base64 typed arrays, one block per layer) are decoded when the layer is first shown, and
   only the tokens and edges near the visible part of the drawing are drawn: scrolling draws more. */
(function () {
  "use strict";
  var root = document.currentScript.parentNode;
  var $ = function (selector) { return root.querySelector(selector); };
  var data = JSON.parse($(".graphattn-data").textContent);
  var blocks = root.querySelectorAll(".graphattn-layer");
  var uid = "ga" + (window.graphattnViewers = (window.graphattnViewers || 0) + 1);
  var NS = "http://www.w3.org/2000/svg";
  var VIRIDIS = [[68, 1, 84], [72, 40, 120], [62, 74, 137], [49, 104, 142], [38, 130, 142],
    [31, 158, 137], [53, 183, 121], [109, 205, 89], [180, 222, 44], [253, 231, 37]];
  var TYPES = { u16: Uint16Array, u32: Uint32Array, i16: Int16Array };
  var TOPS = [1, 3, 5, 10];
  var COMPACT_EDGES = 3000;  // above this many drawn edges, unselected ones share 4 paths per head
  var ARC_RISE = 320;  // the highest an arc rises (pixels): long arcs flatten
  var loaded = {};  // layer index -> the layer with its arrays decoded
  var first = data.layers[0];
  var state = { layer: 0, head: first.weighted && first.heads > 1 ? "mean" : "0",
    top: "3", view: first.cross ? "bipartite" : "arc", sel: null, hover: null };
  var edges = { bySrc: {}, byDst: {} };  // the drawn edges ({el, base, src, dst}) by source and target
  var lit = [];  // the drawn edges that highlight() styled last
  var compact = null;  // many edges: {keep, bases, overlay, make(e)}, the focus's edges drawn per click
  var CELL_LEVELS = 32;  // a compact matrix draws its cells as one path per colour level
  var tokens = [];  // {el, side, index}
  var view = null;  // the view drawn: {L, hs, top, sel, paint(box, items), painted}
  var layerSel = $(".ga-layer"), headSel = $(".ga-head"), topSel = $(".ga-top");
  var canvas = $(".ga-canvas"), info = $(".ga-info"), note = $(".ga-note"), legend = $(".ga-legend");

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

  // A [dtype, base64] pair as its typed array (little-endian bytes).
  function decode(spec) {
    var text = atob(spec[1]), bytes = new Uint8Array(text.length);
    for (var k = 0; k < text.length; k++) { bytes[k] = text.charCodeAt(k); }
    return new TYPES[spec[0]](bytes.buffer);
  }

  // Layer k with its arrays: src, dst, ptr (its targets' edges are ptr[i] .. ptr[i + 1] - 1),
  // w (one Float32Array per head in the page), mass (the kept share of each target, or null).
  function layer(k) {
    if (loaded[k]) { return loaded[k]; }
    var meta = data.layers[k], arrays = JSON.parse(blocks[k].textContent), n = meta.n, i, e;
    var L = Object.assign({}, meta, { tokens: data.labels[meta.tokens], srcTokens: data.labels[meta.srcTokens] });
    var count = decode(arrays.count);
    L.ptr = new Uint32Array(n + 1);
    for (i = 0; i < n; i++) { L.ptr[i + 1] = L.ptr[i] + count[i]; }
    L.src = decode(arrays.src);
    L.dst = new Uint32Array(L.src.length);
    for (i = 0; i < n; i++) { L.dst.fill(i, L.ptr[i], L.ptr[i + 1]); }
    var q = arrays.w ? decode(arrays.w) : null, size = L.src.length;
    L.w = [];
    for (var h = 0; h < meta.heads; h++) {
      var row = new Float32Array(size);
      for (e = 0; e < size; e++) { row[e] = q ? q[h * size + e] * meta.step : 1; }
      L.w.push(row);
    }
    L.mass = arrays.mass ? decode(arrays.mass) : null;
    loaded[k] = L;
    return L;
  }

  function current() { return layer(state.layer); }

  // The length (characters) of the longest label (a loop: any number of labels).
  function widest(labels) { return labels.reduce(function (a, t) { return Math.max(a, t.length); }, 1); }

  function meanOf(L) {
    if (!L.meanW) {
      L.meanW = new Float32Array(L.src.length);
      L.w.forEach(function (row) { for (var e = 0; e < row.length; e++) { L.meanW[e] += row[e] / L.w.length; } });
    }
    return L.meanW;
  }

  // The heads to draw: [{key, color, w}]; "all" overlays every head (not in the matrix).
  function heads(L, forMatrix) {
    if (!L.weighted) { return [{ key: "edges", color: data.edgeColor, w: L.w[0] }]; }
    var one = function (h) { return { key: h, color: data.headColors[h % data.headColors.length], w: L.w[h] }; };
    if (L.w.length === 1) { return [L.meanOf ? { key: "mean", color: data.meanColor, w: L.w[0] } : one(0)]; }
    if (state.head === "mean" || (state.head === "all" && forMatrix)) {
      return [{ key: "mean", color: data.meanColor, w: meanOf(L) }];
    }
    if (state.head === "all") { return L.w.map(function (row, h) { return one(h); }); }
    return [one(Number(state.head))];
  }

  function maxOf(hs) {
    var top = 0;
    hs.forEach(function (h) { for (var e = 0; e < h.w.length; e++) { if (h.w[e] > top) { top = h.w[e]; } } });
    return top > 0 ? top : 1;
  }

  // Which edges to draw: the `state.top` strongest incoming edges of every target
  // (by the largest drawn weight), or all. Returns keep (1 or 0 per edge) and the kept count.
  function kept(L, hs, all) {
    var keep = new Uint8Array(L.src.length).fill(1), count = L.src.length, e;
    if (all || state.top === "all" || !L.weighted) { return { keep: keep, count: count }; }
    var k = Number(state.top), value = hs[0].w;
    if (hs.length > 1) {
      value = new Float32Array(L.src.length);
      hs.forEach(function (h) { for (e = 0; e < value.length; e++) { value[e] = Math.max(value[e], h.w[e]); } });
    }
    var byValue = function (a, b) { return value[b] - value[a] || a - b; };
    for (var i = 0; i < L.n; i++) {
      if (L.ptr[i + 1] - L.ptr[i] <= k) { continue; }
      var list = [];
      for (e = L.ptr[i]; e < L.ptr[i + 1]; e++) { list.push(e); }
      list.sort(byValue);
      for (e = k; e < list.length; e++) { keep[list[e]] = 0; count--; }
    }
    return { keep: keep, count: count };
  }

  function addToken(svg, side, index, x, y, anchor, rotate) {
    var L = view.L;
    var label = side === "src" ? L.srcTokens[index] : L.tokens[index];
    var attrs = { x: x, y: y, "text-anchor": anchor, "class": "ga-token", tabindex: 0,
      "data-side": side, "data-index": index, "dominant-baseline": "middle" };
    if (rotate) { attrs.transform = "rotate(" + rotate + " " + x + " " + y + ")"; }
    var t = el("text", attrs, svg);
    t.textContent = label;
    var choose = function () {
      var same = state.sel && state.sel.side === side && state.sel.index === index;
      state.sel = same ? null : { side: side, index: index };
      highlight();
    };
    t.addEventListener("click", choose);
    t.addEventListener("keydown", function (ev) { if (ev.key === "Enter" || ev.key === " ") { choose(); } });
    t.addEventListener("mouseenter", function () { state.hover = { side: side, index: index }; highlight(); });
    t.addEventListener("mouseleave", function () { state.hover = null; highlight(); });
    tokens.push({ el: t, side: side, index: index });
  }

  function addEdge(node, e, h) {
    var L = view.L, s = h.w[e] / h.top;
    node.setAttribute("stroke", h.color);
    node.setAttribute("stroke-opacity", (0.15 + 0.85 * s).toFixed(3));
    node.setAttribute("stroke-width", (0.6 + 3 * s).toFixed(2));
    node.setAttribute("data-head", h.key);
    node.setAttribute("data-src", L.src[e]);
    node.setAttribute("data-dst", L.dst[e]);
    track(node, L.src[e], L.dst[e]);
  }

  function track(node, src, dst) {
    var edge = { el: node, base: node.getAttribute("class"), src: src, dst: dst };
    (edges.bySrc[src] = edges.bySrc[src] || []).push(edge);
    (edges.byDst[dst] = edges.byDst[dst] || []).push(edge);
  }

  // One path per drawn edge (the list `shown`) and head; above COMPACT_EDGES the unselected edges
  // of a head share four paths (weights in quarters of the largest) and highlight() draws the lit ones singly.
  function drawEdges(svg, shown, geom) {
    var hs = view.hs, top = view.top;
    hs.forEach(function (h) { h.top = top; });
    if (shown.length * hs.length <= COMPACT_EDGES) {
      hs.forEach(function (h) {
        shown.forEach(function (e) { addEdge(el("path", { d: geom(e), "class": "ga-edge" }, svg), e, h); });
      });
      return;
    }
    var bases = [];
    hs.forEach(function (h) {
      var parts = [[], [], [], []];
      shown.forEach(function (e) { parts[Math.min(3, Math.floor(4 * h.w[e] / top))].push(geom(e)); });
      parts.forEach(function (d, b) {
        if (d.length) {
          bases.push(el("path", { d: d.join(""), "class": "ga-base", stroke: h.color,
            "stroke-opacity": (0.15 + 0.25 * b).toFixed(2), "stroke-width": (0.6 + 0.8 * b).toFixed(1) }, svg));
        }
      });
    });
    compact = { keep: view.sel.keep, bases: bases, overlay: el("g", { "class": "ga-overlay" }, svg),
      make: function (e) {
        hs.forEach(function (h) { addEdge(el("path", { d: geom(e), "class": "ga-edge" }, compact.overlay), e, h); });
      } };
  }

  // Compact drawings: the edges of the token in focus, drawn singly above the shared paths.
  function overlay(focus, L) {
    compact.overlay.textContent = "";
    edges = { bySrc: {}, byDst: {} }; lit = [];
    compact.bases.forEach(function (b) { b.setAttribute("class", "ga-base" + (focus ? " ga-dim" : "")); });
    if (!focus) { return; }
    var f = focus.index, keep = compact.keep, e;
    if (!L.cross || focus.side !== "src") {  // incoming: the focus's own edges
      for (e = L.ptr[f]; e < L.ptr[f + 1]; e++) { if (keep[e]) { compact.make(e); } }
    }
    if (!L.cross || focus.side !== "dst") {  // outgoing (a self edge counted as incoming)
      for (e = 0; e < L.src.length; e++) {
        if (keep[e] && L.src[e] === f && (L.cross || L.dst[e] !== f)) { compact.make(e); }
      }
    }
  }

  function size(svg, width, height) {
    svg.setAttribute("viewBox", "0 0 " + width + " " + height);
    svg.setAttribute("width", width); svg.setAttribute("height", height);
  }

  // The kept edges whose extent along the drawing's long axis, [min, max] of pos(e), meets [lo, hi].
  function within(sel, lo, hi, ends) {
    var shown = [];
    for (var e = 0; e < sel.keep.length; e++) {
      if (!sel.keep[e]) { continue; }
      var a = ends(e);
      if (Math.min(a[0], a[1]) <= hi && Math.max(a[0], a[1]) >= lo) { shown.push(e); }
    }
    return shown;
  }

  function range(lo, hi, n) { return [Math.max(0, Math.floor(lo)), Math.min(n - 1, Math.ceil(hi))]; }

  // Arcs: j -> i with j < i above the nodes, j > i below the labels; labels right under the nodes.
  function arcView(svg) {
    var L = view.L, n = L.n, sel = view.sel;
    var dx = Math.max(22, Math.min(64, 1100 / n)), x0 = 30, up = 0, down = 0, longest = widest(L.tokens);
    for (var e = 0; e < L.src.length; e++) {
      if (!sel.keep[e]) { continue; }
      var span = (L.dst[e] - L.src[e]) * dx / 2;
      up = Math.max(up, span); down = Math.max(down, -span);
    }
    var rotate = longest * 7 > dx ? 50 : 0;
    var band = rotate ? Math.min(160, longest * 7) * 0.77 + 14 : 24;
    var base = 12 + Math.min(0.5 * up, ARC_RISE) + 8, low = base + band;
    size(svg, x0 * 2 + dx * (n - 1) + (rotate ? Math.min(160, longest * 7) * 0.64 : 20),
      low + Math.min(0.5 * down, ARC_RISE) + 16);
    view.at = function (k) { return [x0 + k * dx, 0]; };
    var geom = function (e) {
      var xs = x0 + L.src[e] * dx, xd = x0 + L.dst[e] * dx, rx = Math.abs(xd - xs) / 2;
      if (xs === xd) { return "M" + (xs - 6) + " " + (base - 6) + "a6 6 0 1 0 12 0a6 6 0 1 0 -12 0"; }
      var y = xs < xd ? base : low;  // left to right above, right to left below
      return "M" + xs + " " + y + "A" + rx + " " + Math.min(0.5 * rx, ARC_RISE) + " 0 0 1 " + xd + " " + y;
    };
    return function (box, items) {
      var r = range((box.x0 - x0) / dx, (box.x1 - x0) / dx, n);
      drawEdges(items, within(sel, r[0], r[1], function (e) { return [L.src[e], L.dst[e]]; }), geom);
      for (var k = r[0]; k <= r[1]; k++) {
        el("circle", { cx: x0 + k * dx, cy: base, r: 3.5, "class": "ga-node" }, items);
        if (down > 0 && !compact) { el("circle", { cx: x0 + k * dx, cy: low, r: 2, "class": "ga-node" }, items); }
        addToken(items, "both", k, x0 + k * dx + (rotate ? -3 : 0), base + 12, rotate ? "start" : "middle", rotate);
      }
    };
  }

  function bipartiteView(svg) {
    var L = view.L, sel = view.sel;
    var xl = 24 + 7.5 * widest(L.srcTokens), xr = xl + 280;  // labels fit beside their nodes
    var dy = 22, y0 = 46, rows = Math.max(L.n, L.m);
    var ys = function (k, count) { return y0 + dy * (k + (rows - count) / 2); };
    size(svg, xr + 24 + 7.5 * widest(L.tokens), y0 + dy * rows + 10);
    el("text", { x: xl, y: 20, "text-anchor": "middle", "class": "ga-caption" }, svg).textContent = "sources j";
    el("text", { x: xr, y: 20, "text-anchor": "middle", "class": "ga-caption" }, svg).textContent = "targets i";
    var geom = function (e) { return "M" + xl + " " + ys(L.src[e], L.m) + "L" + xr + " " + ys(L.dst[e], L.n); };
    view.at = function (k, side) { return [0, ys(k, side === "src" ? L.m : L.n)]; };
    return function (box, items) {
      var row = function (y, count) { return (y - y0) / dy - (rows - count) / 2; };
      drawEdges(items, within(sel, box.y0, box.y1, function (e) {
        return [ys(L.src[e], L.m), ys(L.dst[e], L.n)];
      }), geom);
      var r = range(row(box.y0, L.m), row(box.y1, L.m), L.m);
      for (var j = r[0]; j <= r[1]; j++) {
        el("circle", { cx: xl, cy: ys(j, L.m), r: 3.5, "class": "ga-node" }, items);
        addToken(items, "src", j, xl - 10, ys(j, L.m), "end", 0);
      }
      r = range(row(box.y0, L.n), row(box.y1, L.n), L.n);
      for (var i = r[0]; i <= r[1]; i++) {
        el("circle", { cx: xr, cy: ys(i, L.n), r: 3.5, "class": "ga-node" }, items);
        addToken(items, "dst", i, xr + 10, ys(i, L.n), "start", 0);
      }
    };
  }

  // The colour scale of the matrix (0 .. largest weight) and the look of a non-edge.
  function drawScale(svg, defs, x, y, top) {
    var grad = el("linearGradient", { id: uid + "-scale", x1: 0, x2: 1, y1: 0, y2: 0 }, defs);
    for (var k = 0; k <= 10; k++) { el("stop", { offset: k / 10, "stop-color": viridis(k / 10) }, grad); }
    el("rect", { x: x, y: y, width: 160, height: 10, fill: "url(#" + uid + "-scale)", "class": "ga-scale" }, svg);
    el("text", { x: x, y: y + 22, "class": "ga-caption" }, svg).textContent = "0";
    el("text", { x: x + 160, y: y + 22, "text-anchor": "end", "class": "ga-caption" }, svg).textContent =
      top.toFixed(3);
    el("text", { x: x + 80, y: y - 4, "text-anchor": "middle", "class": "ga-caption" }, svg).textContent =
      "attention weight";
    el("rect", { x: x + 190, y: y, width: 14, height: 10, fill: "url(#" + uid + "-hatch)", stroke: "#999" }, svg);
    el("text", { x: x + 210, y: y + 9, "class": "ga-caption" }, svg).textContent = "not an edge";
  }

  function matrixView(svg) {
    var L = view.L, w = view.hs[0].w, top = view.top;
    var longest = widest(L.srcTokens), rowLabel = widest(L.tokens);
    var c = Math.max(5, Math.min(28, 700 / Math.max(L.n, L.m))), ox = Math.max(60, 20 + 7.5 * rowLabel);
    var oy = (L.weighted ? 60 : 10) + Math.min(110, longest * 7) * 0.87 + 8;
    size(svg, Math.max(ox + c * L.m + 20 + 0.5 * Math.min(110, longest * 7), ox + 300), oy + c * L.n + 20);
    var defs = el("defs", {}, svg);
    var pat = el("pattern", { id: uid + "-hatch", width: 6, height: 6, patternUnits: "userSpaceOnUse",
      patternTransform: "rotate(45)" }, defs);
    el("rect", { width: 6, height: 6, fill: data.nonedgeColor }, pat);
    el("line", { x1: 0, y1: 0, x2: 0, y2: 6, stroke: data.nonedgeHatchColor, "stroke-width": 1.5 }, pat);
    if (L.weighted) { drawScale(svg, defs, ox, 22, top); }
    el("rect", { x: ox, y: oy, width: c * L.m, height: c * L.n, fill: "url(#" + uid + "-hatch)",
      "class": "ga-nonedges" }, svg);
    var step = Math.max(1, Math.ceil(12 / c));
    view.at = function (k, side) {  // its row, and its column where there is one
      return [ox + c * (Math.min(k, L.m - 1) + 0.5), oy + c * (Math.min(k, L.n - 1) + 0.5)];
    };
    return function (box, items) {
      var rows = range((box.y0 - oy) / c, (box.y1 - oy) / c, L.n), cols = range((box.x0 - ox) / c, (box.x1 - ox) / c, L.m);
      var shown = [];
      for (var e = L.ptr[rows[0]]; e < L.ptr[rows[1] + 1]; e++) {
        if (L.src[e] >= cols[0] && L.src[e] <= cols[1]) { shown.push(e); }
      }
      var cell = function (e, parent) {
        var node = el("rect", { x: ox + c * L.src[e], y: oy + c * L.dst[e], width: c, height: c,
          fill: L.weighted ? viridis(w[e] / top) : data.edgeColor, "class": "ga-cell",
          "data-src": L.src[e], "data-dst": L.dst[e] }, parent);
        el("title", {}, node).textContent = L.srcTokens[L.src[e]] + " \u2192 " + L.tokens[L.dst[e]] +
          (L.weighted ? ": " + w[e].toFixed(4) : "");
        track(node, L.src[e], L.dst[e]);
      };
      if (shown.length <= COMPACT_EDGES) {
        shown.forEach(function (e) { cell(e, items); });
      } else {  // one path per colour level; the focus's cells drawn singly on top
        var levels = {};
        shown.forEach(function (e) {
          var level = L.weighted ? Math.round(CELL_LEVELS * w[e] / top) : 0;
          (levels[level] = levels[level] || []).push("M" + (ox + c * L.src[e]) + " " + (oy + c * L.dst[e]) +
            "h" + c + "v" + c + "h" + (-c) + "z");
        });
        Object.keys(levels).forEach(function (level) {
          el("path", { d: levels[level].join(""), "class": "ga-cells",
            fill: L.weighted ? viridis(level / CELL_LEVELS) : data.edgeColor }, items);
        });
        compact = { keep: view.sel.keep, bases: [], overlay: el("g", { "class": "ga-overlay" }, items),
          make: function (e) { cell(e, compact.overlay); } };
      }
      for (var i = rows[0] - rows[0] % step; i <= rows[1]; i += step) { addToken(items, "dst", i, ox - 6, oy + c * (i + 0.5), "end", 0); }
      for (var j = cols[0] - cols[0] % step; j <= cols[1]; j += step) { addToken(items, "src", j, ox + c * (j + 0.5), oy - 6, "start", -60); }
    };
  }

  // Draws what lies within half a screen of the visible part of the drawing, unless already drawn:
  // the canvas scrolls sideways, the window up and down.
  function paint() {
    var W = canvas.clientWidth || 1200, H = window.innerHeight || 800;
    var x = canvas.scrollLeft, y = Math.max(0, -canvas.getBoundingClientRect().top), p = view.painted;
    if (p && x >= p.x0 && x + W <= p.x1 && y >= p.y0 && y + H <= p.y1) { return; }
    view.painted = { x0: x - W / 2, x1: x + 1.5 * W, y0: y - H / 2, y1: y + 1.5 * H };
    view.items.textContent = "";
    edges = { bySrc: {}, byDst: {} }; lit = []; tokens = []; compact = null;
    view.paint(view.painted, view.items);
    highlight();
  }

  function related(focus, edge, L) {
    var self = !L.cross;
    var isIn = (self || focus.side !== "src") && edge.dst === focus.index;
    var isOut = (self || focus.side !== "dst") && edge.src === focus.index;
    return isIn ? "ga-in" : isOut ? "ga-out" : "";
  }

  // A click selects a token until clicked again; hovering previews another token meanwhile.
  // Only the focused token's edges are restyled: the others dim through the group's ga-focus class.
  function highlight() {
    var L = view.L, focus = state.hover || state.sel, linked = {};
    if (compact) { overlay(focus, L); }
    view.items.setAttribute("class", "ga-items" + (focus ? " ga-focus" : ""));
    lit.forEach(function (edge) { edge.el.setAttribute("class", edge.base); edge.on = false; });
    lit = [];
    var light = function (list) {
      (list || []).forEach(function (edge) {
        var kind = related(focus, edge, L);
        if (!kind || edge.on) { return; }
        edge.on = true;
        edge.el.setAttribute("class", edge.base + " " + kind);
        lit.push(edge);
        linked[kind === "ga-in" ? "src:" + edge.src : "dst:" + edge.dst] = true;
      });
    };
    if (focus) { light(edges.byDst[focus.index]); light(edges.bySrc[focus.index]); }
    tokens.forEach(function (t) {
      var match = function (f) { return f && t.index === f.index && (!L.cross || t.side === f.side); };
      var isFocus = match(focus), isSel = match(state.sel);
      var isLinked = focus && !isFocus && (linked[(t.side === "dst" ? "dst:" : "src:") + t.index] ||
        (!L.cross && (linked["src:" + t.index] || linked["dst:" + t.index])));
      t.el.setAttribute("class", "ga-token" + (isFocus ? " ga-selected" : isLinked ? " ga-linked" : "") +
        (isSel ? " ga-chosen" : ""));
      t.el.setAttribute("aria-pressed", isSel ? "true" : "false");
    });
    root.setAttribute("data-selected", state.sel ? state.sel.side + ":" + state.sel.index : "");
    describe(focus, L);
  }

  function describe(focus, L) {
    if (!focus) { info.textContent = "Click a token to select it (hover previews): its incoming and outgoing edges light up."; return; }
    var w = heads(L, true)[0].w, incoming = [], outgoing = [];
    var isTarget = !L.cross || focus.side !== "src", isSource = !L.cross || focus.side !== "dst";
    if (isTarget) {
      for (var e = L.ptr[focus.index]; e < L.ptr[focus.index + 1]; e++) { incoming.push([L.srcTokens[L.src[e]], w[e]]); }
    }
    if (isSource) {
      for (e = 0; e < L.src.length; e++) {
        if (L.src[e] === focus.index && (L.cross || L.dst[e] !== focus.index)) { outgoing.push([L.tokens[L.dst[e]], w[e]]); }
      }
    }
    var fmt = function (list) {
      list.sort(function (a, b) { return b[1] - a[1]; });
      return list.slice(0, 6).map(function (p) { return p[0] + (L.weighted ? " " + p[1].toFixed(3) : ""); }).join(", ") +
        (list.length > 6 ? ", \u2026 (" + list.length + ")" : "") || "none";
    };
    var label = focus.side === "src" ? L.srcTokens[focus.index] : L.tokens[focus.index];
    var mass = L.mass && isTarget ? "  (in the page: " + (100 * L.mass[focus.index] / 65535).toFixed(1) +
      "% of its incoming weight)" : "";
    info.textContent = "\u201c" + label + "\u201d (" + focus.index + ")  attends to: " + fmt(incoming) + mass +
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
    if (state.view === "arc") {
      var side = document.createElement("span");
      side.textContent = "arcs above: j \u2192 i with j left of i; below the labels: j right of i";
      legend.appendChild(side);
    }
  }

  function render() {
    var L = current();
    edges = { bySrc: {}, byDst: {} }; lit = []; tokens = []; compact = null;
    state.hover = null;  // the hovered element is redrawn
    canvas.textContent = "";
    if (state.view === "arc" && L.cross) { state.view = "bipartite"; }
    var svg = el("svg", { xmlns: NS, "class": "ga-svg", "data-view": state.view }, canvas);
    var hs = heads(L, state.view === "matrix");
    view = { L: L, hs: hs, top: maxOf(hs), sel: kept(L, hs, state.view === "matrix") };
    view.paint = (state.view === "arc" ? arcView : state.view === "bipartite" ? bipartiteView : matrixView)(svg);
    view.items = el("g", { "class": "ga-items" }, svg);
    if (state.sel) {  // the selected token stays in view across views
      var p = view.at(state.sel.index, state.sel.side), top = canvas.getBoundingClientRect().top + window.scrollY;
      canvas.scrollLeft = p[0] - canvas.clientWidth / 2;
      if (p[1] > window.innerHeight / 2) { window.scrollTo(window.scrollX, top + p[1] - window.innerHeight / 2); }
    }
    paint();
    root.querySelectorAll(".ga-views button").forEach(function (b) {
      b.className = b.getAttribute("data-view") === state.view ? "ga-active" : "";
      b.disabled = b.getAttribute("data-view") === "arc" && L.cross;
    });
    topSel.disabled = state.view === "matrix" || !L.weighted;
    var shown = view.sel.count, inPage = L.src.length.toLocaleString("en-US");
    var said = shown < L.src.length ? "showing the " + state.top + " strongest incoming edges per target: " +
      shown.toLocaleString("en-US") + " of the " + inPage + " edges in the page" :
      L.note ? "" : "all " + inPage + " edges";
    note.textContent = [L.name, said, L.note].filter(Boolean).join(" \u00b7 ");
    drawLegend(L);
  }

  function fillHeads() {
    var L = data.layers[state.layer], keep = state.head;
    headSel.textContent = "";
    if (!L.weighted) { option(headSel, "all", "no weights"); state.head = "all"; return; }
    if (L.meanOf) { option(headSel, "mean", "mean over " + L.meanOf + " heads"); }
    if (L.heads > 1) { option(headSel, "mean", "mean over heads"); }
    for (var h = 0; h < L.heads && !L.meanOf; h++) { option(headSel, String(h), "head " + h); }
    if (L.heads > 1) { option(headSel, "all", "all heads overlaid"); }
    var fits = keep === "mean" || keep === "all" ? L.heads > 1 : Number(keep) < L.heads;
    state.head = L.meanOf ? "mean" : fits ? keep : L.heads > 1 ? "mean" : "0";
    headSel.value = String(state.head);
  }

  var pending = false;
  function scrolled() {
    if (pending) { return; }
    pending = true;
    window.requestAnimationFrame(function () { pending = false; paint(); });
  }

  TOPS.forEach(function (k) { option(topSel, String(k), "strongest " + k + " per target"); });
  option(topSel, "all", "all edges");
  topSel.value = state.top;
  data.layers.forEach(function (L, k) { option(layerSel, String(k), "layer " + k + (L.cross ? " (cross)" : "")); });
  layerSel.addEventListener("change", function () {
    state.layer = Number(layerSel.value); state.sel = null; state.hover = null; fillHeads(); render();
  });
  headSel.addEventListener("change", function () { state.head = headSel.value; render(); });
  topSel.addEventListener("change", function () { state.top = topSel.value; render(); });
  root.querySelectorAll(".ga-views button").forEach(function (b) {
    b.addEventListener("click", function () { state.view = b.getAttribute("data-view"); render(); });
  });
  canvas.addEventListener("scroll", scrolled, { passive: true });
  window.addEventListener("scroll", scrolled, { passive: true });
  window.addEventListener("resize", scrolled);
  fillHeads();
  render();
  if (window.parent !== window) {  // inline in a notebook: the frame takes the page's height
    var fit = function () {
      var height = Math.ceil(document.body.getBoundingClientRect().bottom +
        parseFloat(getComputedStyle(document.body).marginBottom));
      window.parent.postMessage({ graphattn: "height", height: height }, "*");
    };
    new ResizeObserver(fit).observe(document.body);
  }
  root.setAttribute("data-ready", "true");
  document.body.setAttribute("data-ready", "true");
})();
