"use strict";
// Draws the report from the embedded REPORT object. No libraries: SVG for plots, canvas for zooms.
(function () {
  const S = REPORT.summary;
  const COLORS = ["#2f6fde", "#e0663a", "#1f9d6b", "#8e44ad", "#c9a227", "#d6336c", "#0f8fb0", "#6b7280", "#7c5c3b", "#3b7c5c"];
  const PART_COLORS = { header: "#6b7280", image: "#2f6fde", latent: "#0f8fb0", residual: "#8e44ad", text: "#e0663a", masks: "#1f9d6b", "side info": "#c9a227" };
  const NS = "http://www.w3.org/2000/svg";
  const num = (v) => (typeof v === "number" && isFinite(v) ? v : null);
  const el = (tag, attrs, parent) => {
    const e = document.createElementNS(NS, tag);
    for (const k in attrs || {}) e.setAttribute(k, attrs[k]);
    if (parent) parent.appendChild(e);
    return e;
  };
  const profileColor = {};
  (S.profiles || []).forEach((p, i) => (profileColor[p] = COLORS[i % COLORS.length]));

  document.getElementById("meta").textContent =
    `${S.images} images from ${S.data} · profiles ${S.profiles.join(", ")} · ${S.created_utc || ""}` +
    (S.git_commit ? ` · commit ${S.git_commit}` : "") + (S.command ? ` · ${S.command}` : "");

  // ---------- RD plot ----------
  const metrics = (S.metrics || []).filter((m) => Object.values(S.points || {}).some((pts) => Object.values(pts).some((p) => num(p[m]) !== null)));
  let currentMetric = metrics[0];
  const buttons = document.getElementById("metric-buttons");
  metrics.forEach((m) => {
    const b = document.createElement("button");
    b.textContent = m; b.setAttribute("role", "tab"); b.dataset.metric = m;
    b.onclick = () => { currentMetric = m; drawRD(); };
    buttons.appendChild(b);
  });

  function niceTicks(lo, hi, n) {
    const span = hi - lo || 1, step0 = span / n, mag = Math.pow(10, Math.floor(Math.log10(step0)));
    const step = [1, 2, 2.5, 5, 10].map((k) => k * mag).find((s) => span / s <= n) || step0;
    const out = []; for (let v = Math.ceil(lo / step) * step; v <= hi + 1e-12; v += step) out.push(+v.toPrecision(6));
    return out;
  }

  function drawRD() {
    buttons.querySelectorAll("button").forEach((b) => b.setAttribute("aria-selected", String(b.dataset.metric === currentMetric)));
    const host = document.getElementById("rd-plot"); host.innerHTML = "";
    if (!currentMetric) { host.textContent = "No metric with values."; return; }
    const W = 640, H = 400, L = 58, R = 14, T = 12, B = 44;
    const series = Object.entries(S.points || {}).map(([prof, pts]) => ({
      prof, pts: Object.values(pts).map((p) => [num(p.bpp), num(p[currentMetric])]).filter(([x, y]) => x !== null && x > 0 && y !== null).sort((a, b) => a[0] - b[0]),
    })).filter((s) => s.pts.length);
    const xs = series.flatMap((s) => s.pts.map((p) => p[0])), ys = series.flatMap((s) => s.pts.map((p) => p[1]));
    if (!xs.length) { host.textContent = "No points."; return; }
    const lx0 = Math.log10(Math.min(...xs)) - 0.05, lx1 = Math.log10(Math.max(...xs)) + 0.05;
    let y0 = Math.min(...ys), y1 = Math.max(...ys); const pad = (y1 - y0) * 0.08 || 1; y0 -= pad; y1 += pad;
    const X = (x) => L + ((Math.log10(x) - lx0) / (lx1 - lx0)) * (W - L - R);
    const Y = (y) => T + (1 - (y - y0) / (y1 - y0)) * (H - T - B);
    const svg = el("svg", { viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": `RD curves for ${currentMetric}` }, host);
    niceTicks(y0, y1, 6).forEach((v) => {
      el("line", { x1: L, x2: W - R, y1: Y(v), y2: Y(v), class: "grid" }, svg);
      el("text", { x: L - 6, y: Y(v) + 4, "text-anchor": "end" }, svg).textContent = v;
    });
    for (let e = Math.floor(lx0); e <= Math.ceil(lx1); e++) for (const k of [1, 2, 5]) {
      const v = k * Math.pow(10, e); const lv = Math.log10(v); if (lv < lx0 || lv > lx1) continue;
      el("line", { x1: X(v), x2: X(v), y1: T, y2: H - B, class: "grid" }, svg);
      el("text", { x: X(v), y: H - B + 16, "text-anchor": "middle" }, svg).textContent = +v.toPrecision(3);
    }
    el("text", { x: (L + W - R) / 2, y: H - 8, "text-anchor": "middle" }, svg).textContent = "bits per pixel (log scale, real file sizes)";
    const yl = el("text", { x: 14, y: (T + H - B) / 2, "text-anchor": "middle", transform: `rotate(-90 14 ${(T + H - B) / 2})` }, svg);
    yl.textContent = currentMetric + (S.higher_is_better && S.higher_is_better[currentMetric] === false ? " (lower is better)" : "");
    el("rect", { x: L, y: T, width: W - L - R, height: H - T - B, fill: "none", stroke: "#9aa3b5" }, svg);
    series.forEach((s) => {
      const c = profileColor[s.prof] || "#333";
      el("path", { d: s.pts.map((p, i) => `${i ? "L" : "M"}${X(p[0]).toFixed(1)},${Y(p[1]).toFixed(1)}`).join(""), fill: "none", stroke: c, "stroke-width": 2, class: "rd-line", "data-profile": s.prof }, svg);
      s.pts.forEach((p) => {
        const dot = el("circle", { cx: X(p[0]), cy: Y(p[1]), r: 3.5, fill: c }, svg);
        el("title", {}, dot).textContent = `${s.prof}: ${p[0].toFixed(4)} bpp, ${currentMetric} ${p[1].toFixed(4)}`;
      });
    });
    const leg = document.createElement("div"); leg.className = "legend";
    series.forEach((s) => { const sp = document.createElement("span"); sp.style.setProperty("--c", profileColor[s.prof]); sp.textContent = s.prof + (s.prof === S.anchor ? " (anchor)" : ""); leg.appendChild(sp); });
    host.appendChild(leg);
  }

  // ---------- BD table ----------
  (function drawBD() {
    const host = document.getElementById("bd-table");
    const bd = S.bd || {};
    if (!S.anchor || !Object.keys(bd).length) { host.textContent = "No anchor was given to semcodec eval (--anchor), so no BD numbers."; return; }
    const tbl = document.createElement("table");
    const ms = Object.keys(bd);
    tbl.innerHTML = `<thead><tr><th>profile vs ${S.anchor}</th>${ms.map((m) => `<th>BD-rate ${m}</th><th>BD-${m}</th>`).join("")}</tr></thead>`;
    const tb = document.createElement("tbody");
    const caveats = new Set();
    (S.profiles || []).forEach((p) => {
      const tr = document.createElement("tr");
      let cells = `<td>${p}</td>`;
      ms.forEach((m) => {
        const e = (bd[m] || {})[p] || {}; const r = num(e.bd_rate_pct), d = num(e.bd_metric);
        const mark = e.bd_caveat ? ` <abbr class="caveat" title="${e.bd_caveat.replace(/"/g, "&quot;")}">(!)</abbr>` : "";
        if (e.bd_caveat) caveats.add(e.bd_caveat);
        cells += r === null ? `<td title="${(e.bd_rate_reason || "").replace(/"/g, "&quot;")}">n/a</td>` : `<td class="${r < 0 ? "good" : r > 0 ? "bad" : ""}">${r.toFixed(1)}%${mark}</td>`;
        cells += d === null ? `<td title="${(e.bd_metric_reason || "").replace(/"/g, "&quot;")}">n/a</td>` : `<td>${d.toFixed(3)}${mark}</td>`;
      });
      tr.innerHTML = cells; tb.appendChild(tr);
    });
    tbl.appendChild(tb); host.appendChild(tbl);
    caveats.forEach((c) => { const p = document.createElement("p"); p.className = "note caveat"; p.textContent = `(!) BD numbers ${c}.`; host.appendChild(p); });
  })();

  // ---------- viewer ----------
  const V = REPORT.viewer.images;
  const selImage = document.getElementById("sel-image"), selProfile = document.getElementById("sel-profile"), selRate = document.getElementById("sel-rate");
  const imgO = document.getElementById("img-original"), imgD = document.getElementById("img-decoded");
  const split = document.getElementById("split"), clip = document.getElementById("decoded-clip"), divider = document.getElementById("divider");
  const zoomBox = document.getElementById("zoom-box");
  let zoomCenter = null; const ZOOM = 4, ZOOM_PX = 256;
  const fill = (sel, values) => { const prev = sel.value; sel.innerHTML = ""; values.forEach((v) => { const o = document.createElement("option"); o.value = o.textContent = v; sel.appendChild(o); }); if (values.includes(prev)) sel.value = prev; };
  fill(selImage, Object.keys(V));
  function refreshChoices() {
    const entry = V[selImage.value] || { decoded: {} };
    fill(selProfile, Object.keys(entry.decoded));
    fill(selRate, Object.keys(entry.decoded[selProfile.value] || {}));
  }
  function setSplit() { const s = split.value; clip.style.clipPath = `inset(0 0 0 ${s}%)`; divider.style.left = `${s}%`; }
  function drawZoom() {
    if (!imgO.naturalWidth) return;
    const cx = zoomCenter ? zoomCenter[0] : imgO.naturalWidth / 2, cy = zoomCenter ? zoomCenter[1] : imgO.naturalHeight / 2;
    const src = ZOOM_PX / ZOOM;
    const sx = Math.max(0, Math.min(imgO.naturalWidth - src, Math.round(cx - src / 2))), sy = Math.max(0, Math.min(imgO.naturalHeight - src, Math.round(cy - src / 2)));
    for (const [id, img] of [["zoom-original", imgO], ["zoom-decoded", imgD]]) {
      const ctx = document.getElementById(id).getContext("2d"); ctx.imageSmoothingEnabled = false;
      ctx.clearRect(0, 0, ZOOM_PX, ZOOM_PX);
      if (img.naturalWidth) ctx.drawImage(img, sx, sy, src, src, 0, 0, ZOOM_PX, ZOOM_PX);
    }
    const scale = imgO.clientWidth / imgO.naturalWidth;
    Object.assign(zoomBox.style, { left: `${sx * scale}px`, top: `${sy * scale}px`, width: `${src * scale}px`, height: `${src * scale}px` });
  }
  function showFile() {
    const entry = V[selImage.value]; if (!entry) return;
    const d = (entry.decoded[selProfile.value] || {})[selRate.value];
    let pending = 0; const done = () => { if (--pending <= 0) drawZoom(); };
    if (entry.original) { pending++; imgO.onload = done; imgO.src = entry.original; }
    if (d) { pending++; imgD.onload = done; imgD.src = d; }
    const f = REPORT.files.find((x) => x.image === selImage.value && x.profile === selProfile.value && x.rate === selRate.value);
    const stats = document.getElementById("file-stats");
    stats.textContent = f ? `${f.file_bytes} bytes, ${f.bpp.toFixed(5)} bpp · ` + Object.entries(f.metrics).filter(([, v]) => v !== null).map(([k, v]) => `${k} ${v.toFixed(4)}`).join(" · ") +
      " · " + REPORT.bit_parts.filter((p) => f.parts[p] > 0).map((p) => `${p} ${f.parts[p]} B`).join(", ") : "";
    if (!entry.original) stats.textContent += " (original image not found: pass --originals)";
  }
  selImage.onchange = () => { refreshChoices(); showFile(); };
  selProfile.onchange = () => { fill(selRate, Object.keys((V[selImage.value] || { decoded: {} }).decoded[selProfile.value] || {})); showFile(); };
  selRate.onchange = showFile;
  split.oninput = setSplit;
  document.getElementById("compare").addEventListener("click", (ev) => {
    const r = imgO.getBoundingClientRect(); const s = imgO.naturalWidth / r.width;
    zoomCenter = [(ev.clientX - r.left) * s, (ev.clientY - r.top) * s]; drawZoom();
  });
  window.addEventListener("resize", drawZoom);

  // ---------- bit breakdown ----------
  (function drawBits() {
    const host = document.getElementById("bits-plot");
    const groups = {};
    REPORT.files.forEach((f) => { const k = `${f.profile} @ ${f.rate}`; (groups[k] = groups[k] || []).push(f); });
    const keys = Object.keys(groups).sort();
    if (!keys.length) { host.textContent = "No successful files."; return; }
    const parts = REPORT.bit_parts;
    const rows = keys.map((k) => { const fs = groups[k]; const m = {}; parts.forEach((p) => (m[p] = fs.reduce((a, f) => a + (f.parts[p] || 0), 0) / fs.length)); return [k, m]; });
    const maxTotal = Math.max(...rows.map(([, m]) => parts.reduce((a, p) => a + m[p], 0)));
    const W = 960, rowH = 20, L = 190, R = 70, T = 6, H = T + rows.length * rowH + 24;
    const svg = el("svg", { viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": "bytes per stream kind" }, host);
    rows.forEach(([k, m], i) => {
      const y = T + i * rowH; let x = L;
      el("text", { x: L - 6, y: y + 14, "text-anchor": "end" }, svg).textContent = k;
      parts.forEach((p) => {
        const w = (m[p] / maxTotal) * (W - L - R); if (w <= 0) return;
        const rect = el("rect", { x, y: y + 2, width: Math.max(w, 0.5), height: rowH - 5, fill: PART_COLORS[p], class: "bit-part", "data-part": p }, svg);
        el("title", {}, rect).textContent = `${k}: ${p} ${m[p].toFixed(1)} bytes`;
        x += w;
      });
      el("text", { x: x + 4, y: y + 14 }, svg).textContent = `${parts.reduce((a, p) => a + m[p], 0).toFixed(0)} B`;
    });
    const leg = document.createElement("div"); leg.className = "legend";
    parts.forEach((p) => { const sp = document.createElement("span"); sp.style.setProperty("--c", PART_COLORS[p]); sp.textContent = p; leg.appendChild(sp); });
    host.appendChild(leg);
  })();

  drawRD(); refreshChoices(); setSplit(); showFile();
})();
