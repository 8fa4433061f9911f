// litequeue status page: confirm dialogs, and live refresh of the overview, the job list's
// first page and an unfinished job. One request at a time (the next is scheduled only when
// the last one finished) and none while the tab is hidden.
(function () {
  "use strict";
  const body = document.body;
  const root = body.dataset.root || "/";
  const every = Number(body.dataset.refreshMs) || 3000;
  const readOnly = body.dataset.readOnly === "true";
  const csrfMeta = document.querySelector('meta[name="csrf-token"]');
  const csrf = csrfMeta ? csrfMeta.content : "";
  const FINAL = ["succeeded", "failed", "cancelled", "expired"];

  document.documentElement.classList.add("js");
  const nf = new Intl.NumberFormat("en-US");
  const fmt = (n) => (n === null || n === undefined ? "–" : nf.format(n));

  document.addEventListener("submit", function (ev) {
    const form = ev.target;
    const button = ev.submitter;
    const text = (button && button.dataset.confirm) || form.dataset.confirm;
    if (form.id === "bulk") {
      const picked = form.querySelector("#all-matching:checked") ? 1 : document.querySelectorAll('input[name="ids"]:checked').length;
      if (!picked) { ev.preventDefault(); window.alert("Tick the jobs first (or all matching this filter)."); return; }
    }
    if (text && !window.confirm(text)) ev.preventDefault();
  });

  // The menu collapses behind a button on a phone.
  const menu = document.getElementById("menu");
  if (menu) menu.addEventListener("click", function () {
    const header = menu.closest("header");
    const open = header.classList.toggle("open");
    menu.setAttribute("aria-expanded", open ? "true" : "false");
  });

  // Times: absolute ones in the browser's time zone; UTC (and the local time) on hover.
  const pad = (n) => String(n).padStart(2, "0");
  function localText(iso) {
    const d = new Date(iso);
    const zone = (Intl.DateTimeFormat().resolvedOptions().timeZone || "").replace(/_/g, " ");
    return d.getFullYear() + "-" + pad(d.getMonth() + 1) + "-" + pad(d.getDate()) + " " + pad(d.getHours()) + ":" +
      pad(d.getMinutes()) + ":" + pad(d.getSeconds()) + (zone && zone !== "UTC" ? " " + zone.split("/").pop() : " UTC");
  }
  const utcText = (iso) => iso.slice(0, 10) + " " + iso.slice(11, 19) + " UTC";
  function localize(scope) {
    (scope || document).querySelectorAll("time[datetime]").forEach(function (t) {
      const iso = t.getAttribute("datetime");
      if (t.classList.contains("abs")) t.textContent = localText(iso);
      t.title = localText(iso) + " · " + utcText(iso);
    });
  }
  localize();

  // Bulk selection on the job list.
  const pickAll = document.getElementById("pick-all");
  function countPicked() {
    const n = document.querySelectorAll('input[name="ids"]:checked').length;
    const all = document.getElementById("all-matching");
    const label = document.getElementById("picked");
    if (label) label.textContent = all && all.checked ? "all matching selected" : fmt(n) + " selected";
  }
  if (pickAll) {
    pickAll.addEventListener("change", function () {
      document.querySelectorAll('input[name="ids"]').forEach((b) => { b.checked = pickAll.checked; });
      countPicked();
    });
    document.addEventListener("change", function (ev) {
      if (ev.target.name === "ids" || ev.target.id === "all-matching") countPicked();
    });
  }

  // Builds elements with textContent only, so ledger text can never become markup.
  function el(tag, attrs, ...kids) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === null || v === undefined || v === false) continue;
      if (k === "text") node.textContent = String(v); else node.setAttribute(k, String(v));
    }
    for (const kid of kids) {
      if (kid === null || kid === undefined || kid === "") continue;
      node.append(kid instanceof Node ? kid : document.createTextNode(String(kid)));
    }
    return node;
  }
  const svgEl = (tag, attrs) => {
    const node = document.createElementNS("http://www.w3.org/2000/svg", tag);
    for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v));
    return node;
  };
  const url = (path, params) => {
    const q = new URLSearchParams();
    for (const [k, v] of Object.entries(params || {})) if (v !== null && v !== undefined && v !== "") q.set(k, v);
    const s = q.toString();
    return root.replace(/\/$/, "") + path + (s ? "?" + s : "");
  };
  const epoch = (iso) => (iso ? Date.parse(iso) / 1000 : null);
  function seconds(v) {
    if (v === null || v === undefined) return "–";
    if (v < 1) return Math.round(v * 1000) + " ms";
    if (v < 10) return v.toFixed(1) + " s";
    const s = Math.floor(v);
    if (s < 60) return s + " s";
    if (s < 3600) return Math.floor(s / 60) + " m " + (s % 60) + " s";
    if (s < 86400) return Math.floor(s / 3600) + " h " + Math.floor((s % 3600) / 60) + " m";
    return Math.floor(s / 86400) + " d " + Math.floor((s % 86400) / 3600) + " h";
  }
  function when(iso) {
    if (!iso) return el("span", { class: "muted", text: "–" });
    const d = Date.now() / 1000 - epoch(iso);
    const text = d >= 0 ? seconds(d) + " ago" : "in " + seconds(-d);
    return el("time", { datetime: iso, title: localText(iso) + " · " + utcText(iso), text });
  }
  const badge = (status) => el("span", { class: "badge s-" + status, text: status });
  const jobLink = (id) => el("a", { class: "mono", href: url("/jobs/" + encodeURIComponent(id)), title: id, text: id.slice(-8) });
  const cell = (attrs, ...kids) => el("td", attrs, ...kids);
  function postForm(path, label, fields) {
    const form = el("form", { method: "post", action: url(path), class: "inline" },
      el("input", { type: "hidden", name: "csrf_token", value: csrf }));
    for (const [k, v] of Object.entries(fields)) form.append(el("input", { type: "hidden", name: k, value: v }));
    form.append(el("button", { type: "submit", class: "btn", text: label }));
    return form;
  }
  const filled = {};
  function fill(id, rows, emptyText, span, key) {
    const target = document.getElementById(id);
    if (!target) return;
    // Unchanged rows stay as they are; rows holding the keyboard focus are never replaced
    // under it (the next refresh brings the news).
    if (key !== undefined && filled[id] === key) return;
    if (target.contains(document.activeElement)) return;
    if (key !== undefined) filled[id] = key;
    if (!rows.length) rows = [el("tr", { class: "empty" }, cell({ colspan: span, text: emptyText }))];
    target.replaceChildren(...rows);
  }
  const setText = (id, text) => { const n = document.getElementById(id); if (n) n.textContent = String(text); };

  const COUNTED = ["scheduled", "queued", "running", "retrying", "failed"];

  function drawChart(activity) {
    // The same geometry as web/format.py chart().
    const svg = document.getElementById("chart");
    if (!svg) return;
    const W = 1000, H = 150, inner = H - 18, n = Math.max(1, activity.length);
    const top = Math.max(1, ...activity.map((a) => a.succeeded + a.failed));
    const step = W / n;
    const nodes = [svgEl("line", { x1: 0, y1: 1, x2: W, y2: 1, class: "grid-line" }),
      svgEl("line", { x1: 0, y1: inner, x2: W, y2: inner, class: "axis" })];
    activity.forEach((a, i) => {
      const failH = (inner * a.failed) / top, okH = (inner * a.succeeded) / top;
      const x = i * step + 0.5, w = Math.max(1, step - 1);
      const g = svgEl("g", {});
      const t = svgEl("title", {});
      t.textContent = a.minute.slice(11, 16) + "  " + a.succeeded + " succeeded, " + a.failed + " failed";
      g.append(t, svgEl("rect", { class: "ok", x, y: inner - okH - failH, width: w, height: okH }),
        svgEl("rect", { class: "fail", x, y: inner - failH, width: w, height: failH }));
      nodes.push(g);
    });
    const tick = (x, anchor, text, y) => {
      const node = svgEl("text", { x, y: y || H - 4, class: "tick", "text-anchor": anchor });
      node.textContent = text;
      return node;
    };
    nodes.push(tick(2, "start", "−60 min"), tick(W / 2, "middle", "−30 min"), tick(W - 2, "end", "now"),
      tick(2, "start", fmt(top) + " jobs / min", 12));
    svg.replaceChildren(...nodes);
    const ok = activity.reduce((s, a) => s + a.succeeded, 0), failed = activity.reduce((s, a) => s + a.failed, 0);
    setText("chart-total", fmt(ok) + " succeeded · " + fmt(failed) + " failed");
  }

  const plural = (n, noun) => fmt(n) + " " + (n === 1 ? noun : ({ thread: "threads", process: "processes", asyncio: "asyncio slots", greenlet: "greenlets" }[noun] || noun + "s"));

  function renderOverview(data) {
    const queues = Object.entries(data.queues);
    const t = data.totals;
    for (const s of ["queued", "running", "scheduled", "retrying", "waiting"]) setText("t-" + s, fmt(t[s]));
    setText("t-failed", fmt(t.failed_open));
    setText("t-failed-retried", fmt(t.failed - t.failed_open) + " retried since");
    setText("t-today", fmt(data.processed.since));
    setText("t-all-time", fmt(data.processed.all_time));
    const failedCard = document.getElementById("c-failed");
    if (failedCard) failedCard.classList.toggle("bad", t.failed_open > 0);
    setText("t-consumers", fmt(data.consumers.length));
    fill("queues", queues.map(([name, q]) => el("tr", {},
      cell({}, el("a", { href: url("/queue/" + encodeURIComponent(name)), text: name })),
      ...["scheduled", "queued", "running", "retrying"].map((s) => cell({ class: "num" },
        el("a", { class: q[s] ? "n-" + s : "zero", href: url("/jobs", { queue: name, status: s }), text: fmt(q[s]) }))),
      cell({ class: "num" }, el("a", { class: q.failed_open ? "n-failed" : "zero",
        href: url("/jobs", { queue: name, status: "failed", retried: "no" }), text: fmt(q.failed_open) })),
      cell({}, q.oldest_queued_age_s === null ? "–" : seconds(q.oldest_queued_age_s)),
      cell({}, q.paused ? el("span", { class: "badge s-paused", text: "paused" }) : el("span", { class: "badge s-active", text: "active" })),
      readOnly ? null : cell({ class: "actions" },
        q.paused ? postForm("/queues/resume", "Resume", { queue: name }) : postForm("/queues/pause", "Pause", { queue: name })),
    )), "No jobs yet. Enqueue one and it shows up here.", 9, JSON.stringify(data.queues));
    drawChart(data.activity);
    fill("consumers", data.consumers.map((c) => el("tr", {},
      cell({ class: "mono" }, el("a", { href: url("/consumers") + "#c-" + c.id, text: c.id })), cell({ text: c.queues.join(", ") || "all" }),
      cell({ class: "num", text: plural(c.concurrency, c.worker_type) }), cell({ class: "num", text: fmt(c.jobs_done) }),
      cell({}, el("span", { class: c.heartbeat_age_s > 10 ? "warn" : "good", text: seconds(c.heartbeat_age_s) + " ago" })),
    )), "No consumer is running. Start one: litequeue run-consumer APP", 5,
    JSON.stringify(data.consumers.map((c) => [c.id, c.jobs_done, Math.round(c.heartbeat_age_s)])));
    fill("inbox", data.inbox.map((f) => el("tr", {},
      cell({ class: "mono", text: f.inbox }), cell({}, badge(f.state)), cell({ class: "num", text: fmt(f.count) }))),
    "No inbox files yet.", 3);
    const events = document.getElementById("events");
    if (events) {
      const items = data.events.map((e) => el("li", {}, when(e.at), " ", el("b", { text: e.action }), " ",
        e.job_id ? jobLink(e.job_id) : null, e.queue ? " queue " + e.queue : null,
        e.detail ? el("span", { class: "muted", text: " · " + e.detail }) : null,
        el("span", { class: "muted", text: " by " + e.actor })));
      events.replaceChildren(...(items.length ? items
        : [el("li", { class: "empty", text: "No actions yet (retries, cancels, pauses show up here)." })]));
    }
    const updated = document.getElementById("updated");
    if (updated) updated.replaceChildren(el("time", { class: "abs", datetime: data.now, title: utcText(data.now), text: localText(data.now) }));
  }

  const inline = (v, limit) => { const s = JSON.stringify(v); return s.length <= limit ? s : s.slice(0, limit - 1) + "…"; };

  let lastJobs = null;
  function errorCell(text) {
    if (!text) return cell({ class: "err" });
    if (text.length <= 90) return cell({ class: "err", text });
    return cell({ class: "err" }, el("details", {}, el("summary", { text: text.slice(0, 90) + "…" }), el("span", { class: "full", text })));
  }
  const shownJobs = (jobs) => jobs.map((j) => j.id + ":row-" + j.status).join(",");
  function renderedJobs() {
    return Array.from(document.querySelectorAll("#jobs tr")).map((r) => {
      const link = r.querySelector("a[title]");
      return link ? link.title + ":" + r.className : null;
    }).filter(Boolean).join(",");
  }
  function renderJobs(data) {
    // Rows are rebuilt only when a job changed, so a link under the pointer (or a ticked box) stays put.
    const key = JSON.stringify(data.jobs);
    setText("total-line", data.jobs.length ? "1–" + fmt(data.jobs.length) + " of " + fmt(data.total) : "0 of " + fmt(data.total));
    // The first refresh is checked against the rows the server rendered: a job that changed
    // between the page load and this refresh is drawn, not taken as already shown.
    if (key === lastJobs || (lastJobs === null && shownJobs(data.jobs) === renderedJobs())) {
      lastJobs = key;
      document.querySelectorAll("#jobs time[datetime]").forEach((t) => t.replaceWith(when(t.getAttribute("datetime"))));
      return;
    }
    if (document.querySelector('input[name="ids"]:checked')) return; // never drop someone's selection
    lastJobs = key;
    const next = ["retrying", "scheduled"].includes(data.filters.status);
    fill("jobs", data.jobs.map((j) => el("tr", { class: "row-" + j.status },
      readOnly ? null : cell({ class: "pick" }, el("input", { type: "checkbox", name: "ids", value: j.id, form: "bulk", "aria-label": "select job " + j.id })),
      cell({}, jobLink(j.id)), cell({}, j.task, ...(j.tags || []).flatMap((t) => [" ", el("a", { class: "tag", href: url("/jobs", { tag: t }), text: t })])),
      cell({}, el("a", { href: url("/queue/" + encodeURIComponent(j.queue)), text: j.queue })), cell({}, badge(j.status)),
      cell({ class: "mono args" }, inline(j.args, 60) + (j.kwargs && Object.keys(j.kwargs).length ? " " + inline(j.kwargs, 40) : "")),
      cell({ class: "num", text: fmt(j.attempts) }), cell({}, when(j.enqueued_at)), cell({}, when(next ? j.eta : j.finished_at)),
      errorCell(j.error),
    )), "No jobs match.", 10);
  }

  function renderRunning(data) {
    setText("running-count", plural(data.count, "job") + ", longest-running first");
    const ids = Array.from(document.querySelectorAll("#running tr[data-job]")).map((r) => r.dataset.job).join(",");
    if (ids !== data.jobs.map((j) => j.id).join(",")) { window.location.reload(); return; }
    data.jobs.forEach((j) => {
      const row = document.querySelector('#running tr[data-job="' + j.id + '"]');
      const since = row && row.querySelector(".since");
      if (since) since.textContent = seconds(j.running_s);
      const bar = row && row.querySelector("progress");
      if (bar && j.progress) bar.value = j.progress.done;
    });
  }
  function watchConsumers(data) {
    const key = data.consumers.map((c) => c.state).join(",") + "|" + data.consumers.map((c) => c.busy).join(",");
    if (key !== body.dataset.key) window.location.reload();
  }

  function watchJob(job) {
    // An unfinished job: reload the page (server-rendered) once something about it changed.
    if (job.status !== body.dataset.status || String(job.attempts) !== body.dataset.attempts) window.location.reload();
  }

  function batchBar(b) {
    const t = b.total || 1, w = (n) => Math.round((10000 * n) / t) / 100;
    const label = fmt(b.succeeded) + " succeeded, " + fmt(b.failed) + " failed, " + fmt(b.running) + " running of " + fmt(b.total);
    const svg = svgEl("svg", { class: "bar", viewBox: "0 0 100 10", preserveAspectRatio: "none", role: "progressbar",
      "aria-valuemin": 0, "aria-valuemax": b.total, "aria-valuenow": b.succeeded + b.failed, "aria-label": label });
    const title = svgEl("title", {});
    title.textContent = label;
    svg.append(title, svgEl("rect", { class: "track", x: 0, y: 0, width: 100, height: 10 }),
      svgEl("rect", { class: "ok", x: 0, y: 0, width: w(b.succeeded), height: 10 }),
      svgEl("rect", { class: "fail", x: w(b.succeeded), y: 0, width: w(b.failed), height: 10 }),
      svgEl("rect", { class: "run", x: w(b.succeeded + b.failed), y: 0, width: w(b.running), height: 10 }));
    return svg;
  }
  function renderBatches(data) {
    fill("batches", data.batches.map((b) => el("tr", { "data-batch": b.id },
      cell({}, el("a", { href: url("/batches/" + encodeURIComponent(b.id)), title: b.id, text: b.name })),
      cell({}, badge(b.state)), cell({}, batchBar(b)),
      cell({ class: "num", text: fmt(b.succeeded + b.failed) + "/" + fmt(b.total) }),
      cell({ class: "num", text: fmt(b.failed) }), cell({ class: "num", text: fmt(b.running) }), cell({ class: "num", text: fmt(b.queued) }),
      cell({ class: "num", text: b.percent.toFixed(0) }), cell({ text: b.eta_seconds === null || b.state !== "running" ? "–" : seconds(b.eta_seconds) }),
      cell({}, when(b.started)), cell({}, when(b.finished)),
    )), "No batches yet.", 11);
  }
  function watchBatch(b) {
    // One batch (server-rendered, members included): reload once its counts changed.
    const key = [b.state, b.total, b.succeeded, b.failed, b.running, b.queued].join(",");
    if (key !== body.dataset.batchKey) window.location.reload();
  }

  let lastStats = null;
  function watchStats(data) {
    // The chart and table are server-rendered: reload once the window's numbers moved.
    const key = JSON.stringify([data.total.runs, data.total.failed, data.total.succeeded, data.hourly.length]);
    if (lastStats !== null && key !== lastStats) window.location.reload();
    lastStats = key;
  }
  let lastPeriodic = null;
  function renderPeriodic(data) {
    const key = JSON.stringify([data.tasks.map((t) => [t.next_run, t.last_run && t.last_run.slot]),
      data.schedules.map((s) => [s.enabled, s.next_run, s.last_run && s.last_run.slot, s.queue_paused])]);
    if (lastPeriodic !== null && key !== lastPeriodic) window.location.reload();
    lastPeriodic = key;
  }

  // Relative times ("12 s ago", "in 4 m 10 s") count on by themselves, once a second.
  window.setInterval(function () {
    if (document.hidden) return;
    const now = Date.now() / 1000;
    document.querySelectorAll("time[datetime]:not(.abs)").forEach(function (t) {
      const d = now - epoch(t.getAttribute("datetime"));
      t.textContent = d >= 0 ? seconds(d) + " ago" : "in " + seconds(-d);
    });
    document.querySelectorAll(".since[data-since]").forEach(function (n) {
      n.textContent = seconds(Math.max(0, now - epoch(n.dataset.since)));
    });
  }, 1000);

  const renderers = { overview: renderOverview, jobs: renderJobs, job: watchJob, batches: renderBatches, batch: watchBatch,
    running: renderRunning, consumers: watchConsumers, stats: watchStats, periodic: renderPeriodic };
  const kind = body.dataset.live;
  const api = body.dataset.api;
  const slower = Number(body.dataset.slower) || 1;
  if (!kind || !renderers[kind] || !api) return;
  const badgeLive = document.getElementById("live");
  let timer = null;
  let inFlight = false;

  function schedule() {
    if (timer === null && !inFlight && !document.hidden) timer = window.setTimeout(refresh, every * slower);
  }
  async function refresh() {
    timer = null;
    if (inFlight || document.hidden) return;
    inFlight = true;
    try {
      const res = await fetch(api, { headers: { Accept: "application/json", "X-Litequeue-Live": "1" }, cache: "no-store", credentials: "same-origin" });
      if (!res.ok) throw new Error("HTTP " + res.status);
      renderers[kind](await res.json());
      badgeLive.classList.remove("stale");
      badgeLive.textContent = document.hidden ? "● paused" : "● live";
    } catch (err) {
      badgeLive.classList.add("stale");
      badgeLive.textContent = "● reconnecting";
    } finally {
      inFlight = false;
      schedule();
    }
  }
  document.addEventListener("visibilitychange", function () {
    if (document.hidden) {
      if (timer !== null) window.clearTimeout(timer);
      timer = null;
      badgeLive.textContent = "● paused";
    } else if (!inFlight) {
      refresh();
    }
  });
  badgeLive.hidden = false;
  schedule();
})();
