/* The book's own page script (checked by tests/test_browser.py): text that stays readable on a phone.

   1. Figures: no figure text under 9 CSS px. For an SVG diagram the smallest font size is read from the
      SVG itself; for a Matplotlib figure, from the PNG's text chunk "rnnlib:smallest-text-px" that
      rnnlib.plotting writes (the smallest text in image pixels). Where the column would shrink that
      text under 9 px, the figure gets the min-width that keeps it at 9 px and scrolls sideways in its
      own box. On a laptop's column nothing changes.
   2. Printed tables (three or more lines of aligned columns) keep their rows: no wrapping; they scroll
      in their own box (class rnn-table-output, styled in rnn.css).
   3. A table too wide for the column scrolls in its own box with its first column kept in view
      (rnn.css); where that first column alone takes more than 40 % of the box (nothing would be left
      to scroll under it), the table reflows instead: one block per row, each cell labelled with its
      column's header (class rnn-reflow).
   4. A link to a file of the site that the build may lack (the PDF that `make pdf` adds) is shown only
      where the file exists: its paragraph (or list item) is hidden when the file does not answer.
   When done, <html data-rnn-layout="done">. */
(function () {
  "use strict";
  var MIN_PX = 9;

  function pngSmallest(buf) {
    var b = new Uint8Array(buf), dv = new DataView(buf), i = 8;
    while (i + 8 <= b.length) {
      var len = dv.getUint32(i), type = String.fromCharCode(b[i + 4], b[i + 5], b[i + 6], b[i + 7]);
      if (type === "tEXt") {
        var s = new TextDecoder("latin1").decode(b.slice(i + 8, i + 8 + len)).split("\u0000");
        if (s[0] === "rnnlib:smallest-text-px") return parseFloat(s[1]);
      }
      if (type === "IEND") break;
      i += 12 + len;
    }
    return null;
  }

  // The smallest font size of an SVG document, in its own units (the viewBox's), and the viewBox width.
  function svgSmallest(text) {
    var host = document.createElement("div");
    host.style.cssText = "position:absolute;left:-10000px;top:0;visibility:hidden";
    host.innerHTML = text.replace(/^[\s\S]*?(<svg)/, "$1");
    document.body.appendChild(host);
    var svg = host.querySelector("svg"), min = Infinity;
    if (!svg) { host.remove(); return null; }
    var vb = svg.viewBox && svg.viewBox.baseVal && svg.viewBox.baseVal.width;
    var width = vb || parseFloat(svg.getAttribute("width")) || svg.getBoundingClientRect().width;
    svg.style.width = width + "px";
    svg.querySelectorAll("text, tspan").forEach(function (t) {
      if (!t.textContent.replace(/[\s\u200b]/g, "")) return;
      min = Math.min(min, parseFloat(getComputedStyle(t).fontSize));
    });
    host.remove();
    return min === Infinity ? null : {smallest: min, width: width};
  }

  function widen(img, needed) {
    // needed: the displayed width (CSS px) at which the smallest text is MIN_PX
    var target = img.parentElement && img.parentElement.tagName === "A" ? img.parentElement : img;
    if (!target.parentElement.classList.contains("rnn-figure-scroll")) {
      var box = document.createElement("div");
      box.className = "rnn-figure-scroll";
      target.parentElement.insertBefore(box, target);
      box.appendChild(target);
    }
    img.style.minWidth = Math.ceil(needed) + "px";
    img.dataset.rnnMinWidth = String(Math.ceil(needed));
  }

  function figure(img) {
    var src = img.currentSrc || img.src;
    if (/\.svg($|\?)/.test(src)) {
      return fetch(src).then(function (r) { return r.text(); }).then(function (text) {
        var s = svgSmallest(text);
        if (s && s.smallest > 0) widen(img, s.width * MIN_PX / s.smallest);
      });
    }
    if (/\.png($|\?)/.test(src)) {
      return fetch(src).then(function (r) { return r.arrayBuffer(); }).then(function (buf) {
        var px = pngSmallest(buf);
        var natural = img.naturalWidth || 0;
        if (px && natural) widen(img, natural * MIN_PX / px);
      });
    }
    return Promise.resolve();
  }

  function printedTables() {
    document.querySelectorAll("div.cell_output pre").forEach(function (pre) {
      var lines = pre.textContent.split("\n").filter(function (l) { return l.trim(); });
      var counts = {};
      lines.forEach(function (l) {
        var f = l.trim().split(/\s{2,}/).length;
        if (f >= 3) counts[f] = (counts[f] || 0) + 1;
      });
      if (Object.keys(counts).some(function (k) { return counts[k] >= 3; })) pre.classList.add("rnn-table-output");
    });
  }

  function optionalFiles() {
    var links = Array.prototype.slice.call(document.querySelectorAll('main a[href$=".pdf"]'))
      .filter(function (a) { return new URL(a.href, location.href).origin === location.origin && location.protocol !== "file:"; });
    var hide = function (a) { (a.closest("p, li") || a).hidden = true; };
    document.querySelectorAll('main a[href$=".pdf"]').forEach(function (a) {
      if (location.protocol === "file:") hide(a);  // no way to ask; a file:// reader builds the PDF locally
    });
    return links.map(function (a) {
      return fetch(a.href, {method: "HEAD"}).then(function (r) { if (!r.ok) hide(a); }, function () { hide(a); });
    });
  }

  function tables() {
    document.querySelectorAll(".pst-scrollable-table-container > table").forEach(function (t) {
      var box = t.parentElement, first = t.querySelector("tr > :first-child");
      if (!first || t.scrollWidth <= box.clientWidth + 1) return;
      if (first.getBoundingClientRect().width <= 0.4 * box.clientWidth) return;
      var heads = Array.prototype.map.call(t.querySelectorAll("thead th"), function (th) { return th.textContent.trim(); });
      t.querySelectorAll("tbody tr").forEach(function (tr) {
        Array.prototype.forEach.call(tr.children, function (td, i) { if (heads[i]) td.setAttribute("data-label", heads[i]); });
      });
      t.classList.add("rnn-reflow");
    });
  }

  function run() {
    printedTables();
    tables();
    var files = optionalFiles();
    var imgs = Array.prototype.slice.call(document.querySelectorAll("main img"))
      .filter(function (i) { return !i.closest(".navbar, header, nav, .btn"); });
    var jobs = imgs.map(function (img) {
      var go = function () { return figure(img).catch(function () {}); };
      return img.complete ? go() : new Promise(function (res) {
        img.addEventListener("load", function () { go().then(res); });
        img.addEventListener("error", res);
      });
    });
    Promise.all(jobs.concat(files)).then(function () { document.documentElement.setAttribute("data-rnn-layout", "done"); });
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", run);
  else run();
})();
