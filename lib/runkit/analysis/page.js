// report's page: draws the data report wrote (#report-data) with plotly.js and DataTables, both inlined.
// Only glue is written here: which figure goes where, when it is drawn, and the two-run diff. When the table
// is built and the plots in view are drawn, #ready gets data-ms (performance.now()): the tests and
// bench/report_scale.py read it.
(async function () {
  const D = JSON.parse(document.getElementById("report-data").textContent);
  const $ = (id) => document.getElementById(id);
  const counts = {};
  D.rows.forEach((r) => { const s = String(r[1]).split(":")[0]; counts[s] = (counts[s] || 0) + 1; });
  $("summary").textContent = `${D.rows.length} runs (` +
    Object.entries(counts).map(([s, n]) => `${n} ${s}`).join(", ") + `); sorted by ${D.y}, ` +
    (D.goal === "max" ? "higher" : "lower") + " is better.";
  document.querySelectorAll(".y").forEach((e) => { e.textContent = D.y; });

  // Every plot is drawn when it first comes into view (or near it): at 1,000 runs, drawing them all at load
  // took 2.5 s beyond plotly.js's own 1.5 s (the parallel coordinates, WebGL, 1 s of it on a GPU-less
  // machine). A plot's div gets data-ms (performance.now()) once drawn; the tests and the bench wait on it.
  const lazy = [];
  const later = (div, height, draw) => {
    div.dataset.draw = "";
    div.style.minHeight = height + "px";  // its place on the page before it is drawn, so what is in view is known
    lazy.push([div, draw]);
  };
  const pick = $("curve-metric");
  Object.keys(D.curves).forEach((m) => pick.add(new Option(m, m, false, m === D.curve)));
  if (D.curve) {
    let shown = false;
    const curve = () => Plotly.react("curves", D.curves[pick.value].data, D.curves[pick.value].layout, D.config);
    pick.onchange = () => shown && curve();  // before the plot is drawn, drawing it picks the metric
    later($("curves"), D.curves[D.curve].layout.height, () => { shown = true; return curve(); });
  } else $("curves").textContent = "No run has a history yet.";
  if (D.parcoords) later($("parcoords"), D.parcoords.layout.height, () => Plotly.newPlot("parcoords", D.parcoords.data,
                                                                                          D.parcoords.layout, D.config));
  else $("parcoords").textContent = "Only the seeds vary: no hyperparameter to draw.";
  D.panels.forEach((p) => {
    const div = document.createElement("div");
    $("panels").append(div);
    later(div, p.layout.height, () => Plotly.newPlot(div, p.data, p.layout, D.config));
  });

  // DataTables is an ES module: imported from the inlined text, so no file or network is needed.
  const source = new Blob([$("datatables").textContent], { type: "text/javascript" });
  const { default: DataTable } = await import(URL.createObjectURL(source));
  new DataTable("#runs", {
    // 25 rows a page (a screen's worth), drawn as shown: at 1,000 runs, drawing every row at once took 2.7 s
    // of the page's 8, and 100 rows twice the 0.15 s of 25
    data: D.rows, order: D.order, pageLength: 25, lengthMenu: [25, 100, 1000, { label: "all", value: -1 }],
    deferRender: true, scrollX: true,
    columns: D.columns.map((c) => ({ title: c, defaultContent: "" })),
    createdRow: (row, data) => row.children[1].classList.add("status-" + String(data[1]).split(":")[0]),
  });

  const a = $("diff-a"), b = $("diff-b");
  D.names.forEach((n, i) => { a.add(new Option(n, i)); b.add(new Option(n, i)); });
  b.selectedIndex = Math.min(1, D.names.length - 1);
  const show = (v) => (v === undefined ? "(not bound)" : JSON.stringify(v));
  const diff = () => {
    const left = { ...D.common, ...D.bindings[a.value] }, right = { ...D.common, ...D.bindings[b.value] };
    const keys = [...new Set([...Object.keys(left), ...Object.keys(right)])].sort();
    const rows = keys.map((k) => [k, show(left[k]), show(right[k])]).filter((r) => !$("diff-only").checked || r[1] !== r[2]);
    $("diff").replaceChildren(...[["binding", D.names[a.value], D.names[b.value]], ...rows].map((r, i) => {
      const tr = document.createElement("tr");
      if (i && r[1] !== r[2]) tr.className = "differs";
      r.forEach((text) => { const td = document.createElement(i ? "td" : "th"); td.textContent = text; tr.append(td); });
      return tr;
    }));
  };
  a.onchange = b.onchange = $("diff-only").onchange = diff;
  diff();

  // The page is ready when the table is built and the plots in view at that moment are drawn: an observer
  // reports each div once at once (in view or not), then again whenever it comes into view.
  const first = [];
  const observer = new IntersectionObserver((entries) => entries.forEach((entry) => {
    const [div, draw, seen] = lazy.find(([d]) => d === entry.target);
    if (entry.isIntersecting) {
      observer.unobserve(div);
      Promise.resolve(draw()).then(() => { div.dataset.ms = performance.now().toFixed(1); seen(); });
    } else seen();
  }), { rootMargin: "200px" });
  lazy.forEach((item) => { first.push(new Promise((seen) => item.push(seen))); observer.observe(item[0]); });
  await Promise.all(first);
  $("ready").dataset.ms = performance.now().toFixed(1);
})().catch((e) => console.error("report: " + (e && e.stack || e)));
