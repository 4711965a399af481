// symgraph's graph explorer: draws the graphs that symgraph.explorer laid out in Python.
//
// The page never lays a graph out: each group (and the whole graph) comes with its own layered
// layout, computed with its inner groups closed. Opening a group grows it in place from its box
// to its frame; the layers below move down, the members beside it move aside, by exactly the
// room it takes, so nothing changes order (compose(), below). The group clicked stays where it
// was on the screen.
//
// Hooks for tests: every drawn node has data-sg-node (its key in sg.to_networkx), data-sg-kind,
// data-sg-op; a group (a closed box or an open frame) data-sg-group; the details panel
// data-sg-details; the search box is input[type=search]; <html> gets data-sg-ready once drawn.
// A graph of more than ELEMENTS_UP_TO drawn nodes is an overview on a canvas, its nodes elements
// only in view, once zoomed in enough to read them.
(function () {
  "use strict";

  var SVG = "http://www.w3.org/2000/svg";
  var DATA = JSON.parse(document.getElementById("sg-data").textContent);
  var MARGIN = 24;
  var ANIMATE_UP_TO = 1500; // drawn nodes; past that, opening a group redraws without motion
  var LABELS_UP_TO = 1500; // drawn nodes; past that, only the labels of the nodes in view
  // Drawn nodes past which the graph is an overview on a canvas, and nodes are elements (with
  // their hooks and labels) only in view once large enough to read: a browser lays out and
  // paints ten thousand SVG elements in seconds, a canvas draws them in milliseconds.
  var ELEMENTS_UP_TO = 2500;
  var READABLE = 0.3; // the zoom from which the nodes in view of a large graph are elements

  // --- small helpers ---------------------------------------------------------------------------------
  function esc(text) {
    return String(text).replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");
  }
  function num(value) {
    return Math.round(value * 10) / 10;
  }
  function groupRef(index) {
    return -(index + 1);
  }
  function groupOf(ref) {
    return -ref - 1;
  }
  function formatTime(seconds) {
    if (seconds >= 1) return seconds.toFixed(2) + " s";
    if (seconds >= 1e-3) return (seconds * 1e3).toFixed(2) + " ms";
    return (seconds * 1e6).toFixed(1) + " \u00b5s";
  }

  // --- one graph ---------------------------------------------------------------------------------------
  function View(panel, number, host) {
    this.panel = panel;
    this.number = number;
    this.host = host;
    this.open = new Set();
    this.k = 1;
    this.tx = 0;
    this.ty = 0;
    this.matches = new Set();
    this.selected = null;
    this.prepare();
    this.build();
  }

  View.prototype.prepare = function () {
    var panel = this.panel;
    var blockCount = panel.groups.length;
    // Members of each block (the whole graph is block -1), by layer.
    this.members = { "-1": [] };
    for (var g = 0; g < blockCount; g++) this.members[g] = [];
    var node, group, i;
    for (i = 0; i < panel.nodes.length; i++) {
      node = panel.nodes[i];
      this.members[node.parent].push(i);
    }
    for (i = 0; i < blockCount; i++) {
      group = panel.groups[i];
      this.members[group.parent].push(groupRef(i));
    }
    // The groups holding each node and group, outermost first.
    this.groupChain = [];
    for (i = 0; i < blockCount; i++) {
      var chain = [];
      for (var p = panel.groups[i].parent; p !== -1; p = panel.groups[p].parent) chain.unshift(p);
      this.groupChain.push(chain);
    }
    this.nodeChain = panel.nodes.map(function (n) {
      return n.parent === -1 ? [] : this.groupChain[n.parent].concat([n.parent]);
    }, this);
    // Waypoints by (block, first member, second member), as one number: refs run from
    // -groups to nodes - 1, blocks from -1 to groups - 1.
    this.span = panel.nodes.length + blockCount + 1;
    this.waypoints = new Map();
    panel.waypoints.forEach(function (entry) {
      this.waypoints.set(this.pairKey(entry[0], entry[1], entry[2]), entry[3]);
    }, this);
    this.maxTime = 0;
    panel.nodes.forEach(function (n) {
      if (n.time && n.time > this.maxTime) this.maxTime = n.time;
    }, this);
    this.byId = new Map();
    panel.nodes.forEach(function (n, index) {
      this.byId.set(n.id, index);
    }, this);
    panel.groups.forEach(function (n, index) {
      this.byId.set(n.id, groupRef(index));
    }, this);
  };

  View.prototype.pairKey = function (block, first, second) {
    var groups = this.panel.groups.length;
    return ((block + 1) * this.span + first + groups) * this.span + second + groups;
  };

  View.prototype.build = function () {
    var root = document.createElement("section");
    root.className = "sg-panel";
    root.setAttribute("data-sg-panel", String(this.number));
    var title = document.createElement("h2");
    title.className = "sg-title";
    title.textContent = this.panel.title || "graph";
    root.appendChild(title);
    var stage = document.createElement("div");
    stage.className = "sg-stage";
    var canvas = document.createElement("canvas");
    canvas.className = "sg-overview";
    var svg = document.createElementNS(SVG, "svg");
    svg.setAttribute("class", "sg-canvas");
    var viewport = document.createElementNS(SVG, "g");
    viewport.setAttribute("class", "sg-viewport");
    svg.appendChild(viewport);
    stage.appendChild(canvas);
    stage.appendChild(svg);
    root.appendChild(stage);
    this.overview = canvas;
    this.host.appendChild(root);
    this.root = root;
    this.svg = svg;
    this.viewport = viewport;
    this.listen();
  };

  // --- composing the precomputed layouts -----------------------------------------------------------------
  // The size a group takes in the block holding it: its box while closed, its frame while open.
  View.prototype.size = function (index, cache) {
    var group = this.panel.groups[index];
    if (!this.open.has(index)) return { w: group.w, h: group.h };
    var content = this.compose(index, cache);
    var frame = this.panel.frame;
    return { w: content.w + 2 * frame.pad, h: content.h + frame.title + 2 * frame.pad };
  };

  // A block's members placed relative to its own layout, with its open groups grown in place.
  View.prototype.compose = function (block, cache) {
    var key = block;
    if (cache.has(key)) return cache.get(key);
    var base = block === -1 ? this.panel.root : this.panel.groups[block].content;
    var layers = base.layers;
    var extra = new Array(layers.length).fill(0);
    var grown = []; // [layer, x, added width] of each open group here
    var members = this.members[block];
    var sizes = new Map();
    for (var i = 0; i < members.length; i++) {
      var ref = members[i];
      if (ref >= 0) continue;
      var index = groupOf(ref);
      var group = this.panel.groups[index];
      var size = this.size(index, cache);
      sizes.set(ref, size);
      if (this.open.has(index)) {
        extra[group.layer] = Math.max(extra[group.layer], size.h - layers[group.layer][1]);
        grown.push([group.layer, group.x, size.w - group.w]);
      }
    }
    var tops = [];
    var offset = 0;
    for (var layer = 0; layer < layers.length; layer++) {
      tops.push(layers[layer][0] + offset);
      offset += extra[layer];
    }
    function shift(layer, x) {
      var moved = x;
      for (var j = 0; j < grown.length; j++) {
        var g = grown[j];
        if (g[0] !== layer || g[1] === x) continue;
        moved += x > g[1] ? g[2] / 2 : -g[2] / 2;
      }
      return moved;
    }
    var placed = new Map();
    var left = Infinity;
    var right = -Infinity;
    for (i = 0; i < members.length; i++) {
      ref = members[i];
      var item = ref >= 0 ? this.panel.nodes[ref] : this.panel.groups[groupOf(ref)];
      var wh = ref >= 0 ? item : sizes.get(ref);
      var x = shift(item.layer, item.x);
      var isOpen = ref < 0 && this.open.has(groupOf(ref));
      var y = isOpen ? tops[item.layer] + wh.h / 2 : tops[item.layer] + layers[item.layer][1] / 2;
      placed.set(ref, { x: x, y: y, w: wh.w, h: wh.h });
      left = Math.min(left, x - wh.w / 2);
      right = Math.max(right, x + wh.w / 2);
    }
    if (!members.length) {
      left = 0;
      right = 0;
    }
    var composed = {
      placed: placed,
      left: left,
      w: right - left,
      h: base.h + offset,
      tops: tops,
      heights: layers.map(function (l, n) {
        return l[1] + extra[n];
      }),
      shift: shift,
    };
    cache.set(key, composed);
    return composed;
  };

  // Absolute positions of everything drawn: nodes and closed groups, and open groups' frames.
  View.prototype.layout = function () {
    var cache = new Map();
    var frame = this.panel.frame;
    var boxes = new Map(); // ref -> {x, y, w, h} (centre)
    var frames = []; // [group index, left, top, w, h]
    var origins = new Map(); // block -> [dx, dy] from its layout's coordinates to the page's
    var rootContent = this.compose(-1, cache);
    origins.set(-1, [MARGIN - rootContent.left, MARGIN]);
    var stack = [-1];
    while (stack.length) {
      var block = stack.pop();
      var content = this.compose(block, cache);
      var origin = origins.get(block);
      content.placed.forEach(function (box, ref) {
        var x = origin[0] + box.x;
        var y = origin[1] + box.y;
        if (ref < 0 && this.open.has(groupOf(ref))) {
          var index = groupOf(ref);
          var inner = this.compose(index, cache);
          var left = x - box.w / 2;
          var top = y - box.h / 2;
          frames.push([index, left, top, box.w, box.h]);
          origins.set(index, [left + frame.pad - inner.left, top + frame.title + frame.pad]);
          stack.push(index);
        } else {
          boxes.set(ref, { x: x, y: y, w: box.w, h: box.h });
        }
      }, this);
    }
    this.boxes = boxes;
    this.frames = frames;
    this.origins = origins;
    this.cache = cache;
    this.width = rootContent.w + 2 * MARGIN;
    this.height = rootContent.h + 2 * MARGIN;
  };

  // The drawn node standing for a node: itself, or the outermost closed group holding it.
  View.prototype.drawnAs = function (index) {
    var chain = this.nodeChain[index];
    for (var i = 0; i < chain.length; i++) if (!this.open.has(chain[i])) return groupRef(chain[i]);
    return index;
  };

  View.prototype.containers = function (ref) {
    return ref >= 0 ? this.nodeChain[ref] : this.groupChain[groupOf(ref)];
  };

  // --- drawing -----------------------------------------------------------------------------------------
  // What costs a browser most is elements: a node is one element (a shape carrying the hooks; a
  // closed group a small <g>), all edges of a kind are one <path>, and text is drawn only while
  // readable: every label up to LABELS_UP_TO nodes, past that only those in view.
  View.prototype.render = function () {
    this.layout();
    this.large = this.boxes.size > ELEMENTS_UP_TO;
    this.allLabels = this.boxes.size <= LABELS_UP_TO;
    var frames = [];
    this.frames.forEach(function (f) {
      frames.push(this.frameMarkup(f));
    }, this);
    var edges = this.edgePaths();
    var nodes = [];
    var heats = [];
    var labels = [];
    if (!this.large) {
      this.boxes.forEach(function (box, ref) {
        var item = ref >= 0 ? this.panel.nodes[ref] : this.panel.groups[groupOf(ref)];
        nodes.push(ref >= 0 ? this.nodeMarkup(item, box) : this.groupMarkup(item, box));
        if (item.time && this.maxTime) heats.push(this.heat(item, box));
        if (this.allLabels) labels.push(this.labelMarkup(item, box));
      }, this);
    }
    this.viewport.innerHTML =
      '<g class="sg-frames">' + frames.join("") + "</g>" + (this.large ? "" : this.edgeMarkup(edges)) +
      '<g class="sg-nodes">' + nodes.join("") + '</g><g class="sg-heats">' + heats.join("") +
      '</g><g class="sg-labels">' + labels.join("") + "</g>";
    this.layers = {
      nodes: this.viewport.querySelector(".sg-nodes"),
      heats: this.viewport.querySelector(".sg-heats"),
      labels: this.viewport.querySelector(".sg-labels"),
    };
    this.overview.style.display = this.large ? "block" : "none";
    if (this.large) this.prepareOverview(edges);
    this.indexElements();
    this.applySearch();
    if (this.selected !== null) this.markSelected();
    this.updateInView();
  };

  View.prototype.indexElements = function () {
    this.elements = new Map();
    this.layers.nodes.querySelectorAll("[data-sg-node]").forEach(function (element) {
      this.elements.set(element.getAttribute("data-sg-node"), element);
    }, this);
  };

  // The part of the page in view: [left, top, right, bottom].
  View.prototype.inView = function () {
    var width = this.svg.clientWidth || 800;
    var height = this.svg.clientHeight || 600;
    var left = -this.tx / this.k;
    var top = -this.ty / this.k;
    return [left, top, left + width / this.k, top + height / this.k];
  };

  // What is drawn only in view: the labels of a graph too large to label whole, and the
  // elements of the nodes of a large graph (its overview is on the canvas).
  View.prototype.updateInView = function () {
    if (!this.boxes || this.allLabels) return;
    var nodes = [];
    var labels = [];
    var heats = [];
    var bounds = this.inView();
    if (this.k >= (this.large ? READABLE : 0.4)) {
      this.boxes.forEach(function (box, ref) {
        if (labels.length >= LABELS_UP_TO) return;
        if (box.x + box.w / 2 < bounds[0] || box.x - box.w / 2 > bounds[2] || box.y + box.h / 2 < bounds[1] || box.y - box.h / 2 > bounds[3]) return;
        var item = ref >= 0 ? this.panel.nodes[ref] : this.panel.groups[groupOf(ref)];
        if (this.large) {
          nodes.push(ref >= 0 ? this.nodeMarkup(item, box) : this.groupMarkup(item, box));
          if (item.time && this.maxTime) heats.push(this.heat(item, box));
        }
        labels.push(this.labelMarkup(item, box));
      }, this);
    }
    if (this.large) {
      this.layers.nodes.innerHTML = nodes.join("");
      this.layers.heats.innerHTML = heats.join("");
      this.indexElements();
      this.applySearch();
      if (this.selected !== null) this.markSelected();
    }
    this.layers.labels.innerHTML = labels.join("");
  };

  // --- the overview of a large graph, on a canvas ---------------------------------------------------------
  View.prototype.prepareOverview = function (edges) {
    var shapes = {};
    this.boxes.forEach(function (box, ref) {
      var item = ref >= 0 ? this.panel.nodes[ref] : this.panel.groups[groupOf(ref)];
      var path = shapes[item.colour] || (shapes[item.colour] = new Path2D());
      addShape(path, item.form === "ellipse" ? "ellipse" : "box", box);
    }, this);
    this.paths = {
      shapes: shapes,
      lines: new Path2D(edges.lines.join("")),
      heads: new Path2D(edges.heads.join("")),
      updates: new Path2D(edges.updates.join("")),
      updateHeads: new Path2D(edges.updateHeads.join("")),
    };
    this.marked = this.markedPaths();
  };

  function addShape(path, form, box, grow) {
    var g = grow || 0;
    if (form === "ellipse") {
      path.moveTo(box.x + box.w / 2 + g, box.y);
      path.ellipse(box.x, box.y, box.w / 2 + g, box.h / 2 + g, 0, 0, 2 * Math.PI);
    } else {
      path.rect(box.x - box.w / 2 - g, box.y - box.h / 2 - g, box.w + 2 * g, box.h + 2 * g);
    }
  }

  // Outlines drawn over the overview: what only this graph holds, and the search's matches.
  View.prototype.markedPaths = function () {
    var only = new Path2D();
    var matched = new Path2D();
    this.boxes.forEach(function (box, ref) {
      var item = ref >= 0 ? this.panel.nodes[ref] : this.panel.groups[groupOf(ref)];
      if (item.only) addShape(only, item.form === "ellipse" ? "ellipse" : "box", box, 2);
      if (this.shown && this.shown.has(item.id)) addShape(matched, item.form === "ellipse" ? "ellipse" : "box", box, 3);
    }, this);
    return { only: only, matched: matched };
  };

  View.prototype.drawOverview = function () {
    if (!this.large || !this.paths) return;
    var canvas = this.overview;
    var ratio = window.devicePixelRatio || 1;
    var width = this.svg.clientWidth || 800;
    var height = this.svg.clientHeight || 600;
    if (canvas.width !== Math.round(width * ratio) || canvas.height !== Math.round(height * ratio)) {
      canvas.width = Math.round(width * ratio);
      canvas.height = Math.round(height * ratio);
    }
    var context = canvas.getContext("2d");
    context.setTransform(1, 0, 0, 1, 0, 0);
    context.clearRect(0, 0, canvas.width, canvas.height);
    context.setTransform(this.k * ratio, 0, 0, this.k * ratio, this.tx * ratio, this.ty * ratio);
    var colors = DATA.colors;
    context.lineWidth = Math.max(1, 0.8 / this.k) * Math.min(1, this.k * 4);
    context.strokeStyle = colors.line;
    context.globalAlpha = 0.6;
    context.stroke(this.paths.lines);
    context.globalAlpha = 1;
    context.fillStyle = colors.line;
    context.fill(this.paths.heads);
    context.setLineDash([5, 3]);
    context.strokeStyle = colors.update;
    context.stroke(this.paths.updates);
    context.setLineDash([]);
    context.fillStyle = colors.update;
    context.fill(this.paths.updateHeads);
    context.lineWidth = 1 / Math.max(this.k, 0.5);
    Object.keys(this.paths.shapes).forEach(function (colour) {
      context.fillStyle = colors.nodes[colour][0];
      context.strokeStyle = colors.nodes[colour][1];
      context.fill(this.paths.shapes[colour]);
      if (this.k > 0.1) context.stroke(this.paths.shapes[colour]);
    }, this);
    context.lineWidth = 3 / Math.max(this.k, 0.25);
    context.strokeStyle = colors.only;
    context.stroke(this.marked.only);
    context.strokeStyle = colors.match;
    context.stroke(this.marked.matched);
  };

  View.prototype.scheduleOverview = function () {
    if (!this.large || this.overviewPending) return;
    var view = this;
    this.overviewPending = true;
    window.requestAnimationFrame(function () {
      view.overviewPending = false;
      view.drawOverview();
    });
  };

  // The drawn node under a point of the page (a large graph's overview has no elements to click).
  View.prototype.hit = function (x, y) {
    var found = null;
    this.boxes.forEach(function (box, ref) {
      if (found === null && Math.abs(x - box.x) <= box.w / 2 && Math.abs(y - box.y) <= box.h / 2) found = ref;
    });
    return found;
  };

  View.prototype.scheduleInView = function () {
    this.scheduleOverview();
    if (this.allLabels) return;
    var view = this;
    clearTimeout(this.inViewTimer);
    this.inViewTimer = setTimeout(function () {
      view.updateInView();
    }, 120);
  };

  View.prototype.labelMarkup = function (item, box) {
    var lines = item.label.split("\n");
    var first = box.y - ((lines.length - 1) * 14) / 2 + 4;
    var spans = lines.map(function (line, n) {
      return '<tspan x="' + num(box.x) + '" y="' + num(first + n * 14) + '">' + esc(line) + "</tspan>";
    });
    return "<text>" + spans.join("") + "</text>";
  };

  function shapeMarkup(form, box, attributes) {
    if (form === "ellipse") {
      return "<ellipse " + attributes + ' cx="' + num(box.x) + '" cy="' + num(box.y) + '" rx="' + num(box.w / 2) + '" ry="' + num(box.h / 2) + '"/>';
    }
    return "<rect " + attributes + ' x="' + num(box.x - box.w / 2) + '" y="' + num(box.y - box.h / 2) + '" width="' + box.w + '" height="' + box.h + '" rx="4"/>';
  }

  View.prototype.heat = function (item, box) {
    var opacity = Math.round((75 * item.time) / this.maxTime) / 100;
    return shapeMarkup(item.form === "ellipse" ? "ellipse" : "box", box, 'fill-opacity="' + opacity + '"');
  };

  View.prototype.nodeMarkup = function (n, box) {
    var classes = "sg-node sg-shape c-" + n.colour + " b-" + n.border + (n.kind === "output" ? " sg-output" : "");
    if (n.only) classes += " sg-" + n.only;
    var attributes =
      'class="' + classes + '" data-sg-node="' + esc(n.id) + '" data-sg-kind="' + n.kind + '" data-sg-op="' + esc(n.op || "") + '"';
    return shapeMarkup(n.form, box, attributes);
  };

  View.prototype.groupMarkup = function (g, box) {
    var classes = "sg-node sg-box c-" + g.colour + " b-" + g.border;
    if (g.only) classes += " sg-" + g.only;
    var card = { x: box.x + 3, y: box.y + 3, w: box.w, h: box.h };
    return (
      '<g class="' + classes + '" data-sg-node="' + esc(g.id) + '" data-sg-kind="op" data-sg-op="' + esc(g.name) +
      '" data-sg-group="' + esc(g.id) + '">' + shapeMarkup("box", card, 'class="sg-card"') +
      shapeMarkup("box", box, 'class="sg-shape"') + '<text class="sg-plus" x="' + num(box.x + box.w / 2 - 8) + '" y="' +
      num(box.y - box.h / 2 + 10) + '">+</text></g>'
    );
  };

  View.prototype.frameMarkup = function (f) {
    var g = this.panel.groups[f[0]];
    var classes = "sg-frame" + (g.only ? " sg-" + g.only : "");
    var head = this.panel.frame.title;
    return (
      '<g class="' + classes + '" data-sg-group="' + esc(g.id) + '" data-sg-op="' + esc(g.name) + '">' +
      '<rect class="sg-frame-box" x="' + num(f[1]) + '" y="' + num(f[2]) + '" width="' + num(f[3]) + '" height="' +
      num(f[4]) + '" rx="6"/><rect class="sg-frame-head" x="' + num(f[1]) + '" y="' + num(f[2]) + '" width="' +
      num(f[3]) + '" height="' + head + '" rx="6"/><text class="sg-frame-title" x="' + num(f[1] + 8) + '" y="' +
      num(f[2] + head / 2 + 4) + '">\u2212 ' + esc(g.name) + "</text></g>"
    );
  };

  // Where an edge between two drawn nodes runs: out of the bottom of its source, through the
  // waypoints of the block holding both ends (one per layer it crosses), into the top of its
  // target. Returns the points, or null for an edge running upwards.
  View.prototype.route = function (from, to) {
    var a = this.boxes.get(from);
    var b = this.boxes.get(to);
    var start = [a.x, a.y + a.h / 2];
    var end = [b.x, b.y - b.h / 2];
    if (end[1] <= start[1]) return null;
    var points = [start];
    var outer = this.containers(from);
    var inner = this.containers(to);
    var common = 0;
    while (common < outer.length && common < inner.length && outer[common] === inner[common]) common++;
    var block = common ? outer[common - 1] : -1;
    var first = common < outer.length ? groupRef(outer[common]) : from;
    var second = common < inner.length ? groupRef(inner[common]) : to;
    var through = this.waypoints.get(this.pairKey(block, first, second));
    if (through) {
      var content = this.cache.get(block);
      var origin = this.origins.get(block);
      for (var i = 0; i < through.length; i++) {
        var layer = through[i][0];
        var y = origin[1] + content.tops[layer] + content.heights[layer] / 2;
        if (y <= start[1] || y >= end[1]) continue;
        points.push([origin[0] + content.shift(layer, through[i][1]), y]);
      }
    }
    points.push(end);
    return points;
  };

  // A smooth path through the points (Catmull-Rom), leaving and arriving vertically.
  function smooth(points) {
    var path = "M" + num(points[0][0]) + "," + num(points[0][1]);
    var n = points.length;
    for (var i = 0; i + 1 < n; i++) {
      var p0 = points[i];
      var p1 = points[i + 1];
      var before = i > 0 ? points[i - 1] : [p0[0], p0[1] - (p1[1] - p0[1])];
      var after = i + 2 < n ? points[i + 2] : [p1[0], p1[1] + (p1[1] - p0[1])];
      var c1 = i === 0 ? [p0[0], p0[1] + (p1[1] - p0[1]) / 2] : [p0[0] + (p1[0] - before[0]) / 6, p0[1] + (p1[1] - before[1]) / 6];
      var c2 = i + 2 === n ? [p1[0], p1[1] - (p1[1] - p0[1]) / 2] : [p1[0] - (after[0] - p0[0]) / 6, p1[1] - (after[1] - p0[1]) / 6];
      path += "C" + num(c1[0]) + "," + num(c1[1]) + " " + num(c2[0]) + "," + num(c2[1]) + " " + num(p1[0]) + "," + num(p1[1]);
    }
    return path;
  }

  function sideways(a, b, right) {
    // Around the side of both ends: right for an edge running upwards, left for an update.
    var x1 = right ? a.x + a.w / 2 : a.x - a.w / 2;
    var x2 = right ? b.x + b.w / 2 : b.x - b.w / 2;
    var reach = 30 + Math.abs(b.y - a.y) * 0.08;
    var bulge = right ? Math.max(x1, x2) + reach : Math.min(x1, x2) - reach;
    return "M" + num(x1) + "," + num(a.y) + "C" + num(bulge) + "," + num(a.y) + " " + num(bulge) + "," + num(b.y) + " " + num(x2) + "," + num(b.y);
  }

  // Spread the ends of the edges meeting at one box along its side, in the order of where they
  // come from, so that they do not all meet in one point.
  function spreadPorts(routes, boxes) {
    var ends = new Map(); // 2 * ref + 0 for edges leaving a node, + 1 for edges entering it
    function note(key, item) {
      var list = ends.get(key);
      if (list) list.push(item);
      else ends.set(key, [item]);
    }
    for (var r = 0; r < routes.length; r++) {
      var points = routes[r].points;
      if (!points) continue;
      var last = points.length - 1;
      note(2 * routes[r].from, [points[1][0], points, 0, routes[r].from]);
      note(2 * routes[r].to + 1, [points[last - 1][0], points, last, routes[r].to]);
    }
    ends.forEach(function (list) {
      if (list.length < 2) return;
      var box = boxes.get(list[0][3]);
      list.sort(function (p, q) { return p[0] - q[0]; });
      var step = Math.min((box.w * 0.8) / (list.length - 1), 12);
      list.forEach(function (item, n) {
        item[1][item[2]] = [box.x + (n - (list.length - 1) / 2) * step, item[1][item[2]][1]];
      });
    });
  }

  // An arrowhead at the end of a path, pointing from ``from`` to ``tip``.
  function arrow(from, tip) {
    var dx = tip[0] - from[0];
    var dy = tip[1] - from[1];
    var length = Math.sqrt(dx * dx + dy * dy) || 1;
    var ux = dx / length;
    var uy = dy / length;
    var bx = tip[0] - ux * 6;
    var by = tip[1] - uy * 6;
    return "M" + num(tip[0]) + "," + num(tip[1]) + "L" + num(bx - uy * 2.6) + "," + num(by + ux * 2.6) + "L" + num(bx + uy * 2.6) + "," + num(by - ux * 2.6) + "Z";
  }

  // The edges between drawn nodes, as path data: lines and their arrowheads, updates and theirs.
  View.prototype.edgePaths = function () {
    var seen = new Set();
    var routes = [];
    var edges = this.panel.edges;
    for (var i = 0; i < edges.length; i++) {
      var from = this.drawnAs(edges[i][0]);
      var to = this.drawnAs(edges[i][1]);
      if (from === to) continue;
      var update = edges[i][2] === 1;
      var key = ((from + this.span) * 2 * this.span + to + this.span) * 2 + (update ? 1 : 0);
      if (seen.has(key)) continue;
      seen.add(key);
      routes.push({ from: from, to: to, update: update, points: update ? null : this.route(from, to) });
    }
    spreadPorts(routes, this.boxes);
    var paths = { lines: [], heads: [], updates: [], updateHeads: [] };
    var boxes = this.boxes;
    routes.forEach(function (route) {
      var a = boxes.get(route.from);
      var b = boxes.get(route.to);
      if (route.points) {
        var points = route.points;
        var n = points.length;
        paths.lines.push(smooth(points));
        paths.heads.push(arrow([points[n - 1][0], points[n - 1][1] - 8], points[n - 1]));
      } else if (route.update) {
        paths.updates.push(sideways(a, b, false));
        paths.updateHeads.push(arrow([b.x - b.w / 2 - 8, b.y], [b.x - b.w / 2, b.y]));
      } else {
        paths.lines.push(sideways(a, b, true));
        paths.heads.push(arrow([b.x + b.w / 2 + 8, b.y], [b.x + b.w / 2, b.y]));
      }
    });
    return paths;
  };

  View.prototype.edgeMarkup = function (paths) {
    return (
      '<g class="sg-edges"><path class="sg-edge" d="' + paths.lines.join("") + '"/><path class="sg-arrow" d="' +
      paths.heads.join("") + '"/><path class="sg-edge sg-update" d="' + paths.updates.join("") +
      '"/><path class="sg-arrow sg-update" d="' + paths.updateHeads.join("") + '"/></g>'
    );
  };

  // --- viewing -----------------------------------------------------------------------------------------
  View.prototype.applyTransform = function () {
    this.viewport.setAttribute("transform", "translate(" + num(this.tx) + "," + num(this.ty) + ") scale(" + this.k + ")");
    this.scheduleInView();
  };

  View.prototype.fit = function () {
    var width = this.svg.clientWidth || 800;
    var height = this.svg.clientHeight || 600;
    this.k = Math.max(0.02, Math.min(1, width / this.width, height / this.height));
    if (this.k < 0.35) this.k = Math.min(1, width / this.width); // very tall graphs: fit their width
    this.k = Math.max(this.k, 0.02);
    this.tx = (width - this.width * this.k) / 2;
    this.ty = Math.max(0, (height - this.height * this.k) / 2);
    this.applyTransform();
  };

  View.prototype.centreOn = function (ref) {
    var box = this.boxes.get(ref);
    if (!box) return;
    var width = this.svg.clientWidth || 800;
    var height = this.svg.clientHeight || 600;
    if (this.k < 0.6) this.k = 0.8;
    this.tx = width / 2 - box.x * this.k;
    this.ty = height / 2 - box.y * this.k;
    this.applyTransform();
  };

  // Open or close a group, keeping it where it is on the screen.
  View.prototype.toggle = function (index) {
    var ref = groupRef(index);
    var before = this.anchor(index);
    var old = this.positions();
    var was = [this.tx, this.ty];
    if (this.open.has(index)) {
      this.open.delete(index);
      // Closing a group closes the groups inside it too: opening it again shows it tidy.
      this.panel.groups.forEach(function (g, other) {
        if (this.groupChain[other].indexOf(index) >= 0) this.open.delete(other);
      }, this);
    } else {
      this.open.add(index);
    }
    this.render();
    var after = this.anchor(index);
    if (before && after) {
      this.tx += (before[0] - after[0]) * this.k;
      this.ty += (before[1] - after[1]) * this.k;
      this.applyTransform();
    }
    // Where the old positions are under the new pan: what stayed put on the screen does not move.
    this.animate(old, (was[0] - this.tx) / this.k, (was[1] - this.ty) / this.k);
    this.showDetails(ref);
  };

  // The middle of the top of a group, closed (its box) or open (its frame), on the page.
  View.prototype.anchor = function (index) {
    var box = this.boxes && this.boxes.get(groupRef(index));
    if (box) return [box.x, box.y - box.h / 2];
    var point = null;
    (this.frames || []).forEach(function (f) {
      if (f[0] === index) point = [f[1] + f[3] / 2, f[2]];
    });
    return point;
  };

  View.prototype.positions = function () {
    var found = new Map();
    if (!this.boxes || this.boxes.size > ANIMATE_UP_TO) return found;
    this.boxes.forEach(function (box, ref) {
      var id = ref >= 0 ? this.panel.nodes[ref].id : this.panel.groups[groupOf(ref)].id;
      found.set(id, box);
    }, this);
    return found;
  };

  // Nodes that were drawn before glide from where they were; edges fade in once they are there.
  View.prototype.animate = function (old, dx, dy) {
    if (!old.size || this.boxes.size > ANIMATE_UP_TO || !window.requestAnimationFrame) return;
    var moved = [];
    this.boxes.forEach(function (box, ref) {
      var id = ref >= 0 ? this.panel.nodes[ref].id : this.panel.groups[groupOf(ref)].id;
      var was = old.get(id);
      var element = this.elements.get(id);
      if (!was || !element) return;
      var offset = "translate(" + num(was.x + dx - box.x) + "px," + num(was.y + dy - box.y) + "px)";
      if (offset === "translate(0px,0px)") return;
      element.style.transform = offset; // where it was, drawn over its new place
      moved.push(element);
    }, this);
    var viewport = this.viewport;
    var still = viewport.querySelectorAll(".sg-edges, .sg-frames, .sg-labels, .sg-heats");
    still.forEach(function (layer) {
      layer.classList.add("sg-hidden");
    });
    viewport.getBoundingClientRect(); // the old positions take effect before the transition
    window.requestAnimationFrame(function () {
      viewport.classList.add("sg-animating");
      moved.forEach(function (element) {
        element.style.transform = "";
      });
      still.forEach(function (layer) {
        layer.classList.remove("sg-hidden");
      });
      setTimeout(function () {
        viewport.classList.remove("sg-animating");
      }, 320);
    });
  };

  View.prototype.listen = function () {
    var view = this;
    var svg = this.svg;
    var drag = null;
    svg.addEventListener("pointerdown", function (event) {
      drag = { x: event.clientX, y: event.clientY, tx: view.tx, ty: view.ty, moved: false };
    });
    svg.addEventListener("pointermove", function (event) {
      if (!drag) return;
      var dx = event.clientX - drag.x;
      var dy = event.clientY - drag.y;
      if (!drag.moved && Math.abs(dx) + Math.abs(dy) < 4) return;
      if (!drag.moved) svg.setPointerCapture(event.pointerId);
      drag.moved = true;
      view.tx = drag.tx + dx;
      view.ty = drag.ty + dy;
      view.applyTransform();
    });
    svg.addEventListener("pointerup", function (event) {
      var wasDrag = drag && drag.moved;
      drag = null;
      if (svg.hasPointerCapture(event.pointerId)) svg.releasePointerCapture(event.pointerId);
      if (wasDrag) view.suppressClick = true;
    });
    svg.addEventListener("click", function (event) {
      if (view.suppressClick) {
        view.suppressClick = false;
        return;
      }
      var target = event.target;
      var head = target.closest(".sg-frame-head, .sg-frame-title");
      if (head) {
        var frame = head.closest("[data-sg-group]");
        view.toggle(groupOf(view.byId.get(frame.getAttribute("data-sg-group"))));
        return;
      }
      var element = target.closest("[data-sg-node]");
      var ref;
      if (element) ref = view.byId.get(element.getAttribute("data-sg-node"));
      else if (view.large) {
        var rect = svg.getBoundingClientRect();
        ref = view.hit((event.clientX - rect.left - view.tx) / view.k, (event.clientY - rect.top - view.ty) / view.k);
      }
      if (ref === undefined || ref === null) return;
      if (ref < 0) view.toggle(groupOf(ref));
      else {
        view.selected = ref;
        view.markSelected();
        view.showDetails(ref);
      }
    });
    svg.addEventListener("dblclick", function (event) {
      if (!event.target.closest("[data-sg-node]")) view.fit();
    });
    svg.addEventListener(
      "wheel",
      function (event) {
        event.preventDefault();
        var rect = svg.getBoundingClientRect();
        var px = event.clientX - rect.left;
        var py = event.clientY - rect.top;
        var factor = Math.exp(-event.deltaY * (event.deltaMode === 1 ? 0.05 : 0.0015));
        var k = Math.max(0.02, Math.min(4, view.k * factor));
        view.tx = px - ((px - view.tx) * k) / view.k;
        view.ty = py - ((py - view.ty) * k) / view.k;
        view.k = k;
        view.applyTransform();
      },
      { passive: false }
    );
  };

  View.prototype.markSelected = function () {
    this.viewport.querySelectorAll(".sg-selected").forEach(function (e) {
      e.classList.remove("sg-selected");
    });
    if (this.selected === null) return;
    var drawn = this.selected >= 0 ? this.drawnAs(this.selected) : this.selected;
    var id = drawn >= 0 ? this.panel.nodes[drawn].id : this.panel.groups[groupOf(drawn)].id;
    var element = this.elements.get(id);
    if (element) element.classList.add("sg-selected");
  };

  // --- details -------------------------------------------------------------------------------------------
  View.prototype.showDetails = function (ref) {
    var panel = this.panel;
    var rows = [];
    function row(name, value, cls) {
      if (value === undefined || value === null || value === "") return;
      rows.push("<dt>" + esc(name) + '</dt><dd class="' + (cls || "") + '">' + esc(value) + "</dd>");
    }
    function source(text) {
      // The file's name and the line; the whole path on hover.
      if (!text) return;
      var short = text.replace(/^.*[\\/](?=[^\\/]*:\d+)/, "");
      rows.push('<dt>source</dt><dd class="sg-source" title="' + esc(text) + '">' + esc(short) + "</dd>");
    }
    var heading;
    if (ref >= 0) {
      var n = panel.nodes[ref];
      heading = n.op ? n.op : n.name || n.label.split("\n")[0];
      row("kind", n.kind === "op" ? (n.folded ? "folded ops (" + n.folded + ")" : "operation") : n.kind);
      row("op", n.op);
      row("name", n.name);
      row("dtype", n.dtype);
      row("shape", n.shape);
      row("gradient", n.gradient ? "yes: built by sg.grad" : "no");
      if (n.random) row("random", "draws random numbers");
      if (n.phase_dependent) row("phase", "phase-dependent");
      row("value", n.value);
      if (n.source !== undefined) source(panel.strings[n.source]);
      row("group", this.nodeChain[ref].map(function (g) { return panel.groups[g].name; }).join(" / "));
      if (n.time) row("time", formatTime(n.time) + (panel.total_time ? " (" + ((100 * n.time) / panel.total_time).toFixed(1) + "% of the call)" : ""));
      if (n.only) row("compared", n.only === "only" ? "only in this graph" : "differs");
    } else {
      var g = panel.groups[groupOf(ref)];
      heading = g.name;
      row("kind", "group of " + g.ops + " op" + (g.ops === 1 ? "" : "s") + (this.open.has(groupOf(ref)) ? " (open: click its title to close)" : " (closed: click to open)"));
      row("gradient", g.gradient ? "yes: built by sg.grad" : "no");
      if (g.random) row("random", "draws random numbers");
      if (g.updates.length) row("updates", g.updates.join(", "));
      source(panel.strings[g.source]);
      row("inside", this.groupChain[groupOf(ref)].map(function (k) { return panel.groups[k].name; }).join(" / "));
      if (g.time) row("time", formatTime(g.time) + (panel.total_time ? " (" + ((100 * g.time) / panel.total_time).toFixed(1) + "% of the call)" : ""));
      if (g.only) row("compared", g.only === "only" ? "only in this graph" : "holds other nodes than in the other graph");
    }
    var details = document.querySelector("[data-sg-details]");
    details.innerHTML =
      '<h3>' + esc(heading) + '</h3><p class="sg-where">' + esc(panel.title || "") + "</p><dl>" + rows.join("") + "</dl>";
    details.classList.add("sg-filled");
  };

  // --- search --------------------------------------------------------------------------------------------
  View.prototype.search = function (query) {
    this.matches = new Set();
    if (query) {
      var panel = this.panel;
      for (var i = 0; i < panel.nodes.length; i++) {
        var n = panel.nodes[i];
        var text = ((n.name || "") + "\n" + (n.op || "") + "\n" + n.label).toLowerCase();
        if (text.indexOf(query) >= 0) this.matches.add(i);
      }
      for (i = 0; i < panel.groups.length; i++) {
        if (panel.groups[i].name.toLowerCase().indexOf(query) >= 0) this.matches.add(groupRef(i));
      }
    }
    this.applySearch();
    return this.matches;
  };

  View.prototype.applySearch = function () {
    var viewport = this.viewport;
    viewport.querySelectorAll(".sg-match, .sg-match-inside").forEach(function (e) {
      e.classList.remove("sg-match", "sg-match-inside");
    });
    if (!this.matches.size) {
      this.shown = new Map();
      if (this.large && this.paths) {
        this.marked = this.markedPaths();
        this.scheduleOverview();
      }
      return;
    }
    var shown = new Map();
    this.matches.forEach(function (ref) {
      var drawn = ref;
      if (ref >= 0) drawn = this.drawnAs(ref);
      else {
        var chain = this.groupChain[groupOf(ref)];
        for (var i = 0; i < chain.length; i++)
          if (!this.open.has(chain[i])) {
            drawn = groupRef(chain[i]);
            break;
          }
      }
      var id = drawn >= 0 ? this.panel.nodes[drawn].id : this.panel.groups[groupOf(drawn)].id;
      var inside = drawn !== ref;
      if (!shown.has(id) || !inside) shown.set(id, inside);
    }, this);
    this.shown = shown;
    if (this.large && this.paths) {
      this.marked = this.markedPaths();
      this.scheduleOverview();
    }
    var elements = this.elements;
    shown.forEach(function (inside, id) {
      var element = elements.get(id);
      if (element) element.classList.add(inside ? "sg-match-inside" : "sg-match");
    });
  };

  // Open the groups holding a match and centre it.
  View.prototype.reveal = function (ref) {
    var chain = ref >= 0 ? this.nodeChain[ref] : this.groupChain[groupOf(ref)];
    chain.forEach(function (g) {
      this.open.add(g);
    }, this);
    this.render();
    this.centreOn(ref);
    this.selected = ref >= 0 ? ref : null;
    this.markSelected();
    this.showDetails(ref);
  };

  // --- the page --------------------------------------------------------------------------------------------
  function start() {
    var host = document.querySelector(".sg-panels");
    var views = DATA.panels.map(function (panel, number) {
      return new View(panel, number, host);
    });
    views.forEach(function (view) {
      view.render();
      view.fit();
    });
    var input = document.querySelector("input[type=search]");
    var status = document.querySelector(".sg-status");
    var cursor = { list: [], at: -1 };
    input.addEventListener("input", function () {
      var query = input.value.trim().toLowerCase();
      var list = [];
      var hidden = 0;
      views.forEach(function (view) {
        view.search(query).forEach(function (ref) {
          list.push([view, ref]);
          var drawn = ref >= 0 ? view.drawnAs(ref) : ref;
          if (drawn !== ref) hidden++;
        });
      });
      cursor = { list: list, at: -1 };
      status.textContent = query
        ? list.length + " match" + (list.length === 1 ? "" : "es") + (hidden ? " (" + hidden + " inside closed groups: Enter shows them)" : "")
        : "";
    });
    input.addEventListener("keydown", function (event) {
      if (event.key !== "Enter" || !cursor.list.length) return;
      cursor.at = (cursor.at + 1) % cursor.list.length;
      var found = cursor.list[cursor.at];
      found[0].reveal(found[1]);
    });
    document.addEventListener("keydown", function (event) {
      if (event.key === "/" && document.activeElement !== input) {
        event.preventDefault();
        input.focus();
      }
    });
    document.querySelector("[data-sg-action=fit]").addEventListener("click", function () {
      views.forEach(function (view) {
        view.fit();
      });
    });
    document.querySelector("[data-sg-action=open-all]").addEventListener("click", function () {
      views.forEach(function (view) {
        view.panel.groups.forEach(function (g, index) {
          view.open.add(index);
        });
        view.render();
        view.fit();
      });
    });
    document.querySelector("[data-sg-action=close-all]").addEventListener("click", function () {
      views.forEach(function (view) {
        view.open.clear();
        view.render();
        view.fit();
      });
    });
    if (!views.some(function (view) { return view.maxTime > 0; })) {
      var heat = document.querySelector(".sg-legend-time");
      if (heat) heat.remove();
    }
    if (views.length < 2) {
      var only = document.querySelector(".sg-legend-only");
      if (only) only.remove();
    }
    window.sgExplorer = { views: views };
    document.documentElement.setAttribute("data-sg-ready", "1");
    window.sgReadyTime = performance.now();
  }

  start();
})();
