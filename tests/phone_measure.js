// What a reader sees of one page of the built book, measured in the browser (tests/test_browser.py).
// Called with execute_async_script after MathJax has typeset the page; returns one JSON-able record:
//   viewport, column: the layout viewport's and the text column's widths (CSS px)
//   overflow: how far the page scrolls sideways (document scrollWidth - viewport), and what sticks out
//   equations: each display equation's drawn width and whether it fits, scrolls in its own box, or is cut
//   tables: each table's width and whether it fits or scrolls in its own box, its first column sticky
//   figures: each figure's smallest text in CSS px (inline SVG and SVG images: font size after the
//     image's scaling; PNG figures: the smallest text the book's style recorded in the PNG, in image
//     pixels, times the displayed scale), or null where the figure carries no record
//   printed: printed outputs that look like a table (aligned columns) and whether their lines wrap
const done = arguments[arguments.length - 1];
(async () => {
  const de = document.documentElement;
  const vw = de.clientWidth;
  const main = document.querySelector('main') || document.body;
  const colEl = document.querySelector('article.bd-article') || main;
  // the text column: the article's content box (its padding excluded)
  const cs = getComputedStyle(colEl), cr = colEl.getBoundingClientRect();
  const col = {left: cr.left + parseFloat(cs.paddingLeft), right: cr.right - parseFloat(cs.paddingRight)};
  col.width = col.right - col.left;
  const label = e => (e.innerText || e.textContent || '').replace(/\s+/g, ' ').trim().slice(0, 50);
  const inCol = r => r.left >= col.left - 2 && r.right <= col.right + 2;
  // The nearest ancestor (or the element) that scrolls sideways and lies inside the column; 'clip' when an
  // ancestor cuts the element off first.
  const scroller = (e, box) => {
    for (let p = e; p && p !== document.body; p = p.parentElement) {
      const ox = getComputedStyle(p).overflowX;
      const r = p.getBoundingClientRect();
      if ((ox === 'auto' || ox === 'scroll') && inCol(r)) return p;
      if ((ox === 'hidden' || ox === 'clip') && p !== e && (box.left < r.left - 2 || box.right > r.right + 2)) return 'clip';
    }
    return null;
  };
  const out = {viewport: vw, column: Math.round(col.width), overflow: Math.max(0, de.scrollWidth - vw),
               sticking_out: [], equations: [], tables: [], figures: [], printed: []};

  // What sticks out of the viewport without a scrolling box of its own (the cause of sideways scroll).
  for (const e of main.querySelectorAll('*')) {
    const r = e.getBoundingClientRect();
    if (r.width === 0 || r.right <= vw + 1) continue;
    if (e.closest('mjx-container, svg, .bd-sidebar-secondary, .bd-sidebar-primary')) continue;  // drawers: off-screen by design
    let inside = false;
    for (let p = e.parentElement; p && p !== document.body; p = p.parentElement) {
      const ox = getComputedStyle(p).overflowX;
      if (ox !== 'visible') { inside = true; break; }
    }
    if (!inside && out.sticking_out.length < 8) out.sticking_out.push(`${e.tagName.toLowerCase()}.${[...e.classList].join('.')}: ${label(e)} (${Math.round(r.right - vw)} px)`);
  }

  for (const m of main.querySelectorAll('mjx-container[display="true"]')) {
    const box = m.getBoundingClientRect();
    if (box.width === 0) continue;
    const content = (m.querySelector('mjx-math') || m).getBoundingClientRect().width;
    const fits = inCol(box) && content <= box.width + 2;
    const s = fits ? null : scroller(m, box);
    out.equations.push({label: label(m), width: Math.round(content),
                        state: fits ? 'fits' : (s && s !== 'clip' ? 'scrolls' : 'cut')});
  }

  for (const t of main.querySelectorAll('table')) {
    const box = t.getBoundingClientRect();
    if (box.width === 0) continue;
    const fits = inCol(box);
    const s = fits ? null : scroller(t, box);
    const first = t.querySelector('tbody tr > :first-child, tr > :first-child');
    out.tables.push({label: label(t.querySelector('tr') || t), width: Math.round(box.width),
                     state: fits ? 'fits' : (s && s !== 'clip' ? 'scrolls' : 'cut'),
                     sticky_first: !!first && getComputedStyle(first).position === 'sticky'});
  }

  // Figures. SVG: the computed font size of every text (tspans included) times the SVG's scale.
  const svgSmallest = (svg, shown) => {
    const vb = svg.viewBox && svg.viewBox.baseVal && svg.viewBox.baseVal.width ? svg.viewBox.baseVal.width
             : svg.getBoundingClientRect().width;
    const scale = shown / vb;
    let min = Infinity;
    for (const t of svg.querySelectorAll('text, tspan')) {
      if (!t.textContent.replace(/[\s\u200b]/g, '')) continue;
      if (t.tagName === 'text' && t.querySelector('tspan') && ![...t.childNodes].some(n => n.nodeType === 3 && n.textContent.trim())) continue;
      min = Math.min(min, parseFloat(getComputedStyle(t).fontSize) * scale);
    }
    return min === Infinity ? null : min;
  };
  const pngText = async src => {  // the tEXt chunk rnnlib:smallest-text-px written by rnnlib.plotting
    const buf = new Uint8Array(await (await fetch(src)).arrayBuffer());
    const dv = new DataView(buf.buffer);
    for (let i = 8; i + 8 <= buf.length;) {
      const len = dv.getUint32(i), type = String.fromCharCode(...buf.slice(i + 4, i + 8));
      if (type === 'tEXt') {
        const s = new TextDecoder('latin1').decode(buf.slice(i + 8, i + 8 + len)).split('\0');
        if (s[0] === 'rnnlib:smallest-text-px') return parseFloat(s[1]);
      }
      if (type === 'IEND') break;
      i += 12 + len;
    }
    return null;
  };
  for (const svg of main.querySelectorAll('.rnn-interactive svg')) {
    const r = svg.getBoundingClientRect();
    if (r.width) out.figures.push({src: 'interactive ' + svg.closest('.rnn-interactive').id, shown: Math.round(r.width), smallest: svgSmallest(svg, r.width)});
  }
  for (const img of main.querySelectorAll('img')) {
    const r = img.getBoundingClientRect();
    if (!r.width || img.closest('.navbar, header, nav')) continue;
    const src = img.currentSrc || img.src, name = src.split('/').pop();
    let smallest = null;
    try {
      if (/\.svg($|\?)/.test(src)) {
        const text = await (await fetch(src)).text();
        const host = document.createElement('div');
        host.style.cssText = `position:absolute;left:0;top:0;visibility:hidden;width:${r.width}px`;
        host.innerHTML = text.replace(/^[\s\S]*?(<svg)/, '$1');
        document.body.appendChild(host);
        const svg = host.querySelector('svg');
        smallest = svgSmallest(svg, r.width);
        host.remove();
      } else if (/\.png($|\?)/.test(src)) {
        const px = await pngText(src);
        if (px !== null) smallest = px * r.width / img.naturalWidth;
      }
    } catch (e) { smallest = null; }
    out.figures.push({src: name, shown: Math.round(r.width), natural: img.naturalWidth || null, smallest});
  }

  // Printed outputs shaped like a table: at least three lines that split on runs of 2+ spaces into the same
  // number (3 or more) of fields. 'wraps' when the drawn text has more lines than the printed one.
  for (const pre of main.querySelectorAll('div.cell_output pre')) {
    const lines = pre.textContent.split('\n').filter(l => l.trim());
    const fields = lines.map(l => l.trim().split(/\s{2,}/).length);
    const counts = {};
    fields.forEach(f => { if (f >= 3) counts[f] = (counts[f] || 0) + 1; });
    if (!Object.values(counts).some(c => c >= 3)) continue;
    const lh = parseFloat(getComputedStyle(pre).lineHeight) || 16;
    const drawn = Math.round((pre.clientHeight - parseFloat(getComputedStyle(pre).paddingTop) - parseFloat(getComputedStyle(pre).paddingBottom)) / lh);  // clientHeight: a scroll bar excluded
    out.printed.push({label: label(pre), lines: pre.textContent.replace(/\n$/, '').split('\n').length, drawn,
                      wraps: drawn > pre.textContent.replace(/\n$/, '').split('\n').length + 0.5});
  }
  // Links to a PDF of this site that a reader can see (each must exist: rnn.js hides the others).
  out.pdf_links = [...main.querySelectorAll('a[href$=".pdf"]')].filter(a => a.offsetParent !== null)
    .map(a => new URL(a.href, location.href)).filter(u => u.origin === location.origin).map(u => u.pathname);
  return out;
})().then(r => done(JSON.stringify(r)), e => done(JSON.stringify({error: String(e)})));
