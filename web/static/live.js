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

  document.addEventListener("submit", function (ev) {
    const form = ev.target;
    if (form.dataset.confirm && !window.confirm(form.dataset.confirm)) ev.preventDefault();
  });

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
    if (v < 60) return v.toFixed(1) + " s";
    const s = Math.floor(v);
    if (s < 3600) return Math.floor(s / 60) + " m " + (s % 60) + " s";
    if (s < 86400) return Math.floor(s / 3600) + " h " + Math.floor((s % 3600) / 60) + " m";
    return Math.floor(s / 86400) + " d " + Math.floor((s % 86400) / 3600) + " h";
  }
  function when(iso) {
    if (!iso) return el("span", { class: "muted", text: "–" });
    const d = Date.now() / 1000 - epoch(iso);
    const text = d >= 0 ? seconds(d) + " ago" : "in " + seconds(-d);
    return el("time", { datetime: iso, title: iso.slice(0, 10) + " " + iso.slice(11, 19) + " UTC", text });
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
  function fill(id, rows, emptyText, span) {
    const target = document.getElementById(id);
    if (!target) return;
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
      tick(2, "start", top + " / min", 12));
    svg.replaceChildren(...nodes);
    const ok = activity.reduce((s, a) => s + a.succeeded, 0), failed = activity.reduce((s, a) => s + a.failed, 0);
    setText("chart-total", ok + " succeeded · " + failed + " failed");
  }

  function renderOverview(data) {
    const queues = Object.entries(data.queues);
    for (const s of ["queued", "running", "scheduled", "failed"]) {
      setText("t-" + s, queues.reduce((sum, [, q]) => sum + q[s], 0));
    }
    const failedCard = document.getElementById("c-failed");
    if (failedCard) failedCard.classList.toggle("bad", queues.some(([, q]) => q.failed > 0));
    setText("t-consumers", data.consumers.length);
    fill("queues", queues.map(([name, q]) => el("tr", {},
      cell({}, el("a", { href: url("/jobs", { queue: name }), text: name })),
      ...COUNTED.map((s) => cell({ class: "num" },
        el("a", { class: q[s] ? "n-" + s : "zero", href: url("/jobs", { queue: name, status: s }), text: q[s] }))),
      cell({}, q.oldest_queued_age_s === null ? "–" : seconds(q.oldest_queued_age_s)),
      cell({}, q.paused ? el("span", { class: "badge s-paused", text: "paused" }) : el("span", { class: "badge s-active", text: "active" })),
      readOnly ? null : cell({ class: "actions" },
        q.paused ? postForm("/queues/resume", "Resume", { queue: name }) : postForm("/queues/pause", "Pause", { queue: name })),
    )), "No jobs yet. Enqueue one and it shows up here.", 9);
    drawChart(data.activity);
    fill("consumers", data.consumers.map((c) => el("tr", {},
      cell({ class: "mono", text: c.id }), cell({ text: c.queues.join(", ") || "all" }),
      cell({ class: "num", text: c.concurrency + " " + c.worker_type }), cell({ class: "num", text: c.jobs_done }),
      cell({}, el("span", { class: c.heartbeat_age_s > 10 ? "warn" : "good", text: seconds(c.heartbeat_age_s) + " ago" })),
    )), "No consumer is running. Start one: litequeue run-consumer APP", 5);
    fill("inbox", data.inbox.map((f) => el("tr", {},
      cell({ class: "mono", text: f.inbox }), cell({}, badge(f.state)), cell({ class: "num", text: f.count }))),
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
    setText("updated", data.now.slice(0, 10) + " " + data.now.slice(11, 19) + " UTC");
  }

  const inline = (v, limit) => { const s = JSON.stringify(v); return s.length <= limit ? s : s.slice(0, limit - 1) + "…"; };

  let lastJobs = null;
  function renderJobs(data) {
    // Rows are rebuilt only when a job changed, so a link under the pointer stays put.
    const key = JSON.stringify(data.jobs);
    if (key === lastJobs) {
      document.querySelectorAll("#jobs time[datetime]").forEach((t) => t.replaceWith(when(t.getAttribute("datetime"))));
      return;
    }
    lastJobs = key;
    fill("jobs", data.jobs.map((j) => el("tr", { class: "row-" + j.status },
      cell({}, jobLink(j.id)), cell({}, j.task, ...(j.tags || []).flatMap((t) => [" ", el("a", { class: "tag", href: url("/jobs", { tag: t }), text: t })])),
      cell({ text: j.queue }), cell({}, badge(j.status)),
      cell({ class: "mono args" }, inline(j.args, 60) + (j.kwargs && Object.keys(j.kwargs).length ? " " + inline(j.kwargs, 40) : "")),
      cell({ class: "num", text: j.attempts }), cell({}, when(j.enqueued_at)), cell({}, when(j.finished_at)),
      cell({ class: "err", text: (j.error || "").slice(0, 100) }),
    )), "No jobs match.", 9);
  }

  function watchJob(job) {
    // An unfinished job: reload the page (server-rendered) once something about it changed.
    if (job.status !== body.dataset.status || String(job.attempts) !== body.dataset.attempts) window.location.reload();
  }

  const batchBar = (b) => el("progress", { class: "batch-bar s-" + b.state, max: b.total || 1,
    value: b.succeeded + b.failed, title: (b.succeeded + b.failed) + " of " + b.total + " finished" });
  function renderBatches(data) {
    fill("batches", data.batches.map((b) => el("tr", { "data-batch": b.id },
      cell({}, el("a", { href: url("/batches/" + encodeURIComponent(b.id)), title: b.id, text: b.name })),
      cell({}, badge(b.state)), cell({}, batchBar(b)),
      cell({ class: "num", text: (b.succeeded + b.failed) + "/" + b.total }),
      cell({ class: "num", text: b.failed }), cell({ class: "num", text: b.running }), cell({ class: "num", text: b.queued }),
      cell({ class: "num", text: b.percent.toFixed(1) }), cell({ text: b.eta_seconds === null ? "–" : seconds(b.eta_seconds) }),
      cell({}, when(b.started)), cell({}, when(b.finished)),
    )), "No batches yet.", 11);
  }
  function watchBatch(b) {
    // One batch (server-rendered, members included): reload once its counts changed.
    const key = [b.state, b.total, b.succeeded, b.failed, b.running, b.queued].join(",");
    if (key !== body.dataset.batchKey) window.location.reload();
  }

  const renderers = { overview: renderOverview, jobs: renderJobs, job: watchJob, batches: renderBatches, batch: watchBatch };
  const kind = body.dataset.live;
  const api = body.dataset.api;
  if (!kind || !renderers[kind] || !api) return;
  const badgeLive = document.getElementById("live");
  let timer = null;
  let inFlight = false;

  function schedule() {
    if (timer === null && !inFlight && !document.hidden) timer = window.setTimeout(refresh, every);
  }
  async function refresh() {
    timer = null;
    if (inFlight || document.hidden) return;
    inFlight = true;
    try {
      const res = await fetch(api, { headers: { Accept: "application/json" }, cache: "no-store", credentials: "same-origin" });
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
