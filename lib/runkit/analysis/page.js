// report's page: draws the data report wrote (#report-data) with plotly.js and DataTables, both inlined.
// Only glue is written here: which figure goes where, and the two-run diff. When every plot is drawn and
// the table is built, #ready gets data-ms (performance.now()): the tests and bench/report_scale.py read it.
(async function () {
  const D = JSON.parse(document.getElementById("report-data").textContent);
  const $ = (id) => document.getElementById(id);
  const drawn = [], phases = {};
  const mark = (name, promise) => Promise.resolve(promise).then(() => { phases[name] = performance.now().toFixed(0); });
  const counts = {};
  D.rows.forEach((r) => { const s = String(r[1]).split(":")[0]; counts[s] = (counts[s] || 0) + 1; });
  $("summary").textContent = `${D.rows.length} runs (` +
    Object.entries(counts).map(([s, n]) => `${n} ${s}`).join(", ") + `); sorted by ${D.y}, ` +
    (D.goal === "max" ? "higher" : "lower") + " is better.";
  document.querySelectorAll(".y").forEach((e) => { e.textContent = D.y; });

  const pick = $("curve-metric");
  Object.keys(D.curves).forEach((m) => pick.add(new Option(m, m, false, m === D.curve)));
  const curve = () => D.curve ? Plotly.react("curves", D.curves[pick.value].data, D.curves[pick.value].layout,
                                             D.config) : ($("curves").textContent = "No run has a history yet.");
  pick.onchange = curve;
  drawn.push(mark("curves", curve()));
  if (D.parcoords) drawn.push(mark("parcoords", Plotly.newPlot("parcoords", D.parcoords.data, D.parcoords.layout, D.config)));
  else $("parcoords").textContent = "Only the seeds vary: no hyperparameter to draw.";
  D.panels.forEach((p) => {
    const div = document.createElement("div");
    $("panels").append(div);
    drawn.push(mark("panels", Plotly.newPlot(div, p.data, p.layout, D.config)));
  });

  // DataTables is an ES module: imported from the inlined text, so no file or network is needed.
  const source = new Blob([$("datatables").textContent], { type: "text/javascript" });
  const { default: DataTable } = await import(URL.createObjectURL(source));
  new DataTable("#runs", {
    // 100 rows a page, drawn as shown: at 1,000 runs, drawing every row at once took 2.7 s of the page's 8
    data: D.rows, order: D.order, pageLength: 100, lengthMenu: [100, 1000, { label: "all", value: -1 }],
    deferRender: true, scrollX: true,
    columns: D.columns.map((c) => ({ title: c, defaultContent: "" })),
    createdRow: (row, data) => row.children[1].classList.add("status-" + String(data[1]).split(":")[0]),
  });

  await mark("table");
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

  await Promise.all(drawn);
  $("ready").dataset.phases = JSON.stringify(phases);  // when each part was done (ms): where the time goes
  $("ready").dataset.ms = performance.now().toFixed(1);
})().catch((e) => console.error("report: " + (e && e.stack || e)));
