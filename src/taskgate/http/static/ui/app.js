// The taskgate dashboard: one script, no build step, no dependencies.
//
// Every page is drawn here from the JSON API, with the key typed at login. The key is
// kept in this tab's sessionStorage and sent only as "Authorization: Bearer", never in
// a URL. Text that comes from tasks (messages, logs, labels, results, errors) only ever
// enters the page as text nodes: nothing here parses a string as HTML.
"use strict";

(() => {
  const ROOT = document.querySelector('meta[name="taskgate-root"]').content;
  const UI = ROOT + "/ui";
  const KEY = "taskgate.key";
  const NEXT = "taskgate.next";
  const PAGE_SIZE = 50;
  const STATES = [
    "queued", "scheduled", "suspended", "running", "canceling",
    "succeeded", "failed", "canceled", "timed_out",
  ];
  const TERMINAL = new Set(["succeeded", "failed", "canceled", "timed_out"]);
  const RETRYABLE = new Set(["failed", "canceled", "timed_out"]);
  const RANK = { read: 0, write: 1, admin: 2 };

  const session = { key: sessionStorage.getItem(KEY), me: null };
  let view = null; // the page on screen: { abort: AbortController }

  // -- building the page ---------------------------------------------------------

  /** An element; children are nodes or strings (strings become text, never HTML). */
  function h(tag, attrs, ...children) {
    const el = tag.startsWith("svg:")
      ? document.createElementNS("http://www.w3.org/2000/svg", tag.slice(4))
      : document.createElement(tag);
    for (const [name, value] of Object.entries(attrs || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (name.startsWith("on")) el.addEventListener(name.slice(2), value);
      else if (name === "value") el.value = value;
      else el.setAttribute(name, value === true ? "" : String(value));
    }
    append(el, children);
    return el;
  }

  function append(el, children) {
    for (const child of children.flat(Infinity)) {
      if (child === null || child === undefined || child === false) continue;
      el.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return el;
  }

  function replace(el, ...children) {
    el.replaceChildren();
    return append(el, children);
  }

  function link(path, ...children) {
    return h("a", { href: UI + path, "data-nav": true }, ...children);
  }

  function badge(state) {
    return h("span", { class: "badge state-" + state }, state.replace("_", " "));
  }

  function progressBar(task, label) {
    const value = task.progress === null || task.progress === undefined ? null : task.progress;
    const bar = h("progress", {
      max: 100,
      "aria-label": label || "Progress",
    });
    if (value !== null) bar.value = value;
    else if (TERMINAL.has(task.state)) bar.value = task.state === "succeeded" ? 100 : 0;
    return bar;
  }

  function percent(task) {
    if (task.progress === null || task.progress === undefined) return "";
    return Math.round(task.progress) + " %";
  }

  function when(value) {
    if (!value) return "–";
    const date = new Date(value);
    return h("time", { datetime: value, title: date.toISOString() }, date.toLocaleString());
  }

  function ago(seconds) {
    if (seconds === null || seconds === undefined) return "–";
    if (seconds < 1) return "< 1 s ago";
    if (seconds < 90) return Math.round(seconds) + " s ago";
    if (seconds < 5400) return Math.round(seconds / 60) + " min ago";
    if (seconds < 129600) return Math.round(seconds / 3600) + " h ago";
    return Math.round(seconds / 86400) + " d ago";
  }

  function duration(seconds) {
    if (seconds === null || seconds === undefined) return "–";
    if (seconds < 90) return seconds.toFixed(1) + " s";
    if (seconds < 5400) return (seconds / 60).toFixed(1) + " min";
    return (seconds / 3600).toFixed(1) + " h";
  }

  function json(value) {
    return h("pre", { class: "json" }, JSON.stringify(value, null, 2));
  }

  function say(message, kind) {
    const status = document.getElementById("status");
    replace(status, message ? h("p", { class: kind || "info" }, message) : null);
  }

  function allowed(role) {
    const me = session.me;
    return me !== null && RANK[me.role] >= RANK[role];
  }

  // -- the API -------------------------------------------------------------------

  class ApiError extends Error {
    constructor(status, problem) {
      super((problem && (problem.detail || problem.title)) || "HTTP " + status);
      this.status = status;
      this.problem = problem;
    }
  }

  function headers(extra) {
    const out = { Accept: "application/json", ...extra };
    if (session.key) out.Authorization = "Bearer " + session.key;
    return out;
  }

  async function failure(response) {
    let problem = null;
    try {
      problem = await response.json();
    } catch (_) {
      // not JSON: the status says enough
    }
    const error = new ApiError(response.status, problem);
    if (response.status === 401) expired(error.message);
    return error;
  }

  async function api(path, options) {
    const { method = "GET", body, signal } = options || {};
    const init = { method, headers: headers(), signal, cache: "no-store" };
    if (body !== undefined) {
      init.headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    const response = await fetch(ROOT + path, init);
    if (!response.ok) throw await failure(response);
    if (response.status === 204) return null;
    return response.json();
  }

  /**
   * Read a Server-Sent Events stream with fetch (an EventSource cannot send the key),
   * calling onEvent(kind, data, id) per event; reconnects with Last-Event-ID until the
   * signal aborts or onEvent returns false. onState("live" | "reconnecting").
   */
  async function stream(path, onEvent, signal, onState) {
    let lastId = null;
    let delay = 1000;
    while (!signal.aborted) {
      try {
        const extra = { Accept: "text/event-stream" };
        if (lastId !== null) extra["Last-Event-ID"] = lastId;
        const response = await fetch(ROOT + path, { headers: headers(extra), signal });
        if (!response.ok) {
          const error = await failure(response);
          if (response.status < 500) throw error;
        } else {
          if (onState) onState("live");
          delay = 1000;
          const reader = response.body.getReader();
          const decoder = new TextDecoder();
          let buffer = "";
          for (;;) {
            const { value, done } = await reader.read();
            if (done) break;
            buffer += decoder.decode(value, { stream: true });
            let end;
            while ((end = buffer.indexOf("\n\n")) >= 0) {
              const block = buffer.slice(0, end);
              buffer = buffer.slice(end + 2);
              let kind = "message", data = "", id = null;
              for (const line of block.split("\n")) {
                if (line.startsWith("event:")) kind = line.slice(6).trim();
                else if (line.startsWith("data:")) data += line.slice(5).trim();
                else if (line.startsWith("id:")) id = line.slice(3).trim();
              }
              if (id !== null) lastId = id;
              if (!data) continue;
              let more = true;
              try {
                more = onEvent(kind, JSON.parse(data), id) !== false;
              } catch (error) {
                console.error("taskgate: an event could not be shown", kind, error);
              }
              if (!more) {
                reader.cancel();
                return;
              }
            }
          }
        }
      } catch (error) {
        if (signal.aborted) return;
        if (error instanceof ApiError) {
          if (error.status !== 401) say("Live updates stopped: " + error.message, "error");
          return;
        }
      }
      if (signal.aborted) return;
      if (onState) onState("reconnecting");
      await sleep(delay, signal);
      delay = Math.min(delay * 2, 15000);
    }
  }

  function sleep(ms, signal) {
    return new Promise((resolve) => {
      const timer = setTimeout(resolve, ms);
      signal.addEventListener("abort", () => { clearTimeout(timer); resolve(); }, { once: true });
    });
  }

  function every(ms, fn, signal) {
    const timer = setInterval(() => { if (!document.hidden) fn(); }, ms);
    signal.addEventListener("abort", () => clearInterval(timer), { once: true });
  }

  // -- session -------------------------------------------------------------------

  function expired(message) {
    if (session.key === null && session.me !== null) return; // auth is off
    sessionStorage.removeItem(KEY);
    session.key = null;
    session.me = null;
    sessionStorage.setItem(NEXT, location.pathname + location.search);
    showLogin("Your key is not accepted any more (" + message + "). Sign in again.");
  }

  async function whoami() {
    const response = await fetch(ROOT + "/v1/whoami", { headers: headers(), cache: "no-store" });
    if (response.status === 401) return null;
    if (!response.ok) throw await failure(response);
    return response.json();
  }

  function chrome() {
    const signedIn = session.me !== null;
    document.getElementById("nav").hidden = !signedIn;
    const who = document.getElementById("who");
    who.hidden = !signedIn;
    if (signedIn) {
      const me = session.me;
      const name = me.auth ? me.user + " · " + me.tenant + " · " + me.role : "no authentication";
      replace(document.getElementById("who-name"), name);
      document.getElementById("logout").hidden = !me.auth;
    }
  }

  function logout() {
    sessionStorage.removeItem(KEY);
    sessionStorage.removeItem(NEXT);
    session.key = null;
    session.me = null;
    showLogin("You are logged out.");
  }

  function showLogin(message) {
    if (view) view.abort.abort();
    view = { abort: new AbortController() };
    chrome();
    if (location.pathname !== UI + "/login") history.replaceState(null, "", UI + "/login");
    document.title = "Sign in · taskgate";
    const input = h("input", {
      id: "key", name: "key", type: "password", autocomplete: "off", required: true,
      spellcheck: "false", "aria-describedby": "key-help",
    });
    const note = h("p", { id: "login-message", class: message ? "error" : "", role: "alert" }, message || "");
    const form = h("form", { class: "login", onsubmit: (e) => { e.preventDefault(); login(input.value.trim(), note); } },
      h("h1", {}, "Sign in"),
      note,
      h("label", { for: "key" }, "API key"),
      input,
      h("p", { id: "key-help", class: "muted" },
        "A key made with ", h("code", {}, "taskgate keys create"),
        ". It is kept in this tab only, until you log out or close it."),
      h("button", { type: "submit" }, "Sign in"));
    replace(main(), form);
    input.focus();
  }

  async function login(key, note) {
    if (!key) return;
    session.key = key;
    let me = null;
    try {
      me = await whoami();
    } catch (error) {
      session.key = null;
      replace(note, "Could not reach the server: " + error.message);
      note.className = "error";
      return;
    }
    if (me === null) {
      session.key = null;
      replace(note, "That key is not accepted: it is unknown, revoked or expired.");
      note.className = "error";
      return;
    }
    sessionStorage.setItem(KEY, key);
    session.me = me;
    const next = sessionStorage.getItem(NEXT);
    sessionStorage.removeItem(NEXT);
    history.replaceState(null, "", next && next.startsWith(UI) && next !== UI + "/login" ? next : UI);
    render();
  }

  // -- pages ---------------------------------------------------------------------

  function main() {
    return document.getElementById("main");
  }

  const ROUTES = [
    [/^\/?$/, overviewPage, "overview"],
    [/^\/tasks\/?$/, listPage, "tasks"],
    [/^\/tasks\/([^/]+)$/, taskPage, "tasks"],
    [/^\/schedules\/?$/, schedulesPage, "schedules"],
    [/^\/workers\/?$/, workersPage, "workers"],
  ];

  async function render() {
    if (view) view.abort.abort();
    say("");
    if (session.me === null) {
      let me = null;
      try {
        me = await whoami();
      } catch (error) {
        replace(main(), h("p", { class: "error" }, "Could not reach the server: " + error.message));
        return;
      }
      if (me === null) {
        const hadKey = session.key !== null;
        sessionStorage.removeItem(KEY);
        session.key = null;
        if (location.pathname !== UI + "/login") sessionStorage.setItem(NEXT, location.pathname + location.search);
        showLogin(hadKey ? "Your key is not accepted any more (unknown, revoked or expired). Sign in again." : "");
        return;
      }
      session.me = me;
    }
    chrome();
    let path = location.pathname.slice(UI.length);
    if (path === "/login") {
      history.replaceState(null, "", UI);
      path = "";
    }
    view = { abort: new AbortController() };
    for (const [pattern, page, nav] of ROUTES) {
      const match = pattern.exec(path);
      if (match === null) continue;
      for (const a of document.querySelectorAll("#nav a")) {
        if (a.dataset.page === nav) a.setAttribute("aria-current", "page");
        else a.removeAttribute("aria-current");
      }
      const here = view;
      try {
        await page(here, ...match.slice(1).map(decodeURIComponent));
      } catch (error) {
        if (here.abort.signal.aborted || (error instanceof ApiError && error.status === 401)) return;
        replace(main(), h("h1", {}, "Something went wrong"), h("p", { class: "error" }, error.message));
      }
      return;
    }
    notFound("There is no dashboard page " + location.pathname + ".");
  }

  function notFound(message) {
    document.title = "Not found · taskgate";
    replace(main(),
      h("h1", {}, "Not found"),
      h("p", { class: "error" }, message),
      h("p", {}, link("/tasks", "Back to the task list")));
  }

  function navigate(url) {
    history.pushState(null, "", url);
    render();
    main().focus({ preventScroll: true });
  }

  // -- overview ------------------------------------------------------------------

  async function overviewPage(page) {
    document.title = "Overview · taskgate";
    const body = h("div", { class: "overview" });
    replace(main(), h("h1", {}, "Overview"), body);
    const draw = async () => {
      const stats = await api("/v1/stats?window=3600&buckets=60", { signal: page.abort.signal });
      replace(body, ...overview(stats));
    };
    await draw();
    every(5000, () => draw().catch(() => {}), page.abort.signal);
  }

  function overview(stats) {
    const counts = h("ul", { class: "counts", "aria-label": "Tasks per state" },
      STATES.map((state) => h("li", {},
        link("/tasks?state=" + state,
          h("span", { class: "count" }, String(stats.states[state] || 0)),
          badge(state)))));
    const oldest = stats.oldest_waiting;
    const facts = h("dl", { class: "facts" },
      h("dt", {}, "Queue depth"),
      h("dd", { id: "queue-depth" }, String(stats.queue_depth)),
      h("dt", {}, "Oldest waiting task"),
      h("dd", {}, oldest
        ? [link("/tasks/" + oldest.id, oldest.type), " waiting for ", duration(oldest.wait_seconds)]
        : "none"));
    const series = stats.series;
    const ended = series.map((b) => b.succeeded + b.failed + b.canceled + b.timed_out);
    const failures = series.map((b) => b.failed + b.timed_out);
    const perMinute = 60 / stats.window.bucket_seconds;
    const total = ended.reduce((a, b) => a + b, 0);
    const failedTotal = failures.reduce((a, b) => a + b, 0);
    return [
      counts,
      facts,
      h("section", { class: "chart", "aria-labelledby": "throughput-title" },
        h("h2", { id: "throughput-title" }, "Throughput, last hour"),
        h("p", { class: "muted" }, total + " tasks ended; by outcome, per " + stats.window.bucket_seconds + " s"),
        barChart(series, stats.window, perMinute)),
      h("section", { class: "chart", "aria-labelledby": "failure-title" },
        h("h2", { id: "failure-title" }, "Failure rate, last hour"),
        h("p", { class: "muted" },
          total ? Math.round((100 * failedTotal) / total) + " % of the tasks that ended failed or timed out" : "no task ended"),
        lineChart(series.map((b, i) => (ended[i] ? failures[i] / ended[i] : null)), stats.window)),
    ];
  }

  const OUTCOMES = ["succeeded", "failed", "timed_out", "canceled"];

  function barChart(series, window, perMinute) {
    const width = 600, height = 160, pad = 24;
    const top = Math.max(1, ...series.map((b) => OUTCOMES.reduce((a, o) => a + b[o], 0)));
    const step = (width - pad) / Math.max(1, series.length);
    const svg = h("svg:svg", {
      viewBox: `0 0 ${width} ${height}`, role: "img", class: "plot",
      "aria-label": `Tasks ended per ${window.bucket_seconds} s over the last hour; at most ${top} in one interval`,
    });
    svg.append(h("svg:text", { x: 0, y: 12, class: "axis" }, String(top)));
    svg.append(h("svg:line", { x1: pad, x2: width, y1: height - 16, y2: height - 16, class: "base" }));
    series.forEach((bucket, i) => {
      let y = height - 16;
      for (const outcome of OUTCOMES) {
        const count = bucket[outcome];
        if (!count) continue;
        const barHeight = ((height - 32) * count) / top;
        y -= barHeight;
        svg.append(h("svg:rect", {
          x: pad + i * step + 1, y, width: Math.max(1, step - 2), height: barHeight, class: "fill-" + outcome,
        }, h("svg:title", {}, `${new Date(bucket.start).toLocaleTimeString()}: ${count} ${outcome.replace("_", " ")}`)));
      }
    });
    svg.append(h("svg:text", { x: pad, y: height - 2, class: "axis" }, new Date(window.start).toLocaleTimeString()));
    svg.append(h("svg:text", { x: width, y: height - 2, class: "axis end" }, "now"));
    const legend = h("ul", { class: "legend" },
      OUTCOMES.map((o) => h("li", {}, h("span", { class: "swatch fill-" + o, "aria-hidden": "true" }), o.replace("_", " "))));
    return [svg, legend, table(series, OUTCOMES)];
  }

  function lineChart(values, window) {
    const width = 600, height = 120, pad = 24;
    const step = (width - pad) / Math.max(1, values.length - 1);
    const points = [];
    const dots = [];
    values.forEach((v, i) => {
      if (v === null) return;
      const x = pad + i * step, y = height - 16 - (height - 32) * v;
      points.push(`${x},${y}`);
      dots.push(h("svg:circle", { cx: x, cy: y, r: 2.5, class: "dot" }, h("svg:title", {}, Math.round(v * 100) + " %")));
    });
    const svg = h("svg:svg", {
      viewBox: `0 0 ${width} ${height}`, role: "img", class: "plot",
      "aria-label": "Share of ended tasks that failed or timed out, per interval, from 0 to 100 %",
    },
    h("svg:text", { x: 0, y: 12, class: "axis" }, "100%"),
    h("svg:text", { x: 0, y: height - 16, class: "axis" }, "0%"),
    h("svg:line", { x1: pad, x2: width, y1: height - 16, y2: height - 16, class: "base" }),
    points.length > 1 ? h("svg:polyline", { points: points.join(" "), class: "line" }) : null,
    dots,
    h("svg:text", { x: pad, y: height - 2, class: "axis" }, new Date(window.start).toLocaleTimeString()),
    h("svg:text", { x: width, y: height - 2, class: "axis end" }, "now"));
    return svg;
  }

  function table(series, outcomes) {
    return h("details", {},
      h("summary", {}, "As a table"),
      h("div", { class: "scroll" },
        h("table", {},
          h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "From"), outcomes.map((o) => h("th", { scope: "col" }, o.replace("_", " "))))),
          h("tbody", {}, series.filter((b) => outcomes.some((o) => b[o])).map((b) =>
            h("tr", {}, h("td", {}, new Date(b.start).toLocaleTimeString()), outcomes.map((o) => h("td", {}, String(b[o])))))))));
  }

  // -- task list -----------------------------------------------------------------

  const FILTERS = ["state", "type", "tenant", "since", "until", "q"];
  const PASSED = ["object_id", "group_id", "parent_id", "schedule_id"];

  async function listPage(page) {
    document.title = "Tasks · taskgate";
    const params = new URLSearchParams(location.search);
    const signal = page.abort.signal;
    let operations = [];
    try {
      operations = (await api("/v1/operations", { signal })).items.map((o) => o.name);
    } catch (error) {
      if (error instanceof ApiError && error.status === 401) throw error;
    }
    const form = filterForm(params, operations);
    const live = h("span", { class: "live", id: "live" }, "connecting…");
    const rows = h("tbody", { id: "task-rows" });
    const pager = h("nav", { class: "pager", "aria-label": "Pages" });
    const showTenant = session.me.role === "admin";
    const caption = h("caption", {}, "Tasks, newest first");
    replace(main(),
      h("div", { class: "title" }, h("h1", {}, "Tasks"), live),
      form,
      h("div", { class: "scroll" },
        h("table", { class: "tasks" },
          caption,
          h("thead", {}, h("tr", {},
            h("th", { scope: "col" }, "Task"),
            h("th", { scope: "col" }, "State"),
            h("th", { scope: "col", class: "wide" }, "Progress"),
            h("th", { scope: "col", class: "optional" }, "Object"),
            showTenant ? h("th", { scope: "col", class: "optional" }, "Tenant") : null,
            h("th", { scope: "col", class: "optional" }, "Created"))),
          rows)),
      pager);

    const query = new URLSearchParams();
    for (const name of [...FILTERS, ...PASSED, "cursor"]) {
      const value = params.get(name);
      if (value) query.set(name, name === "since" || name === "until" ? new Date(value).toISOString() : value);
    }
    query.set("archived", "any");
    query.set("limit", String(PAGE_SIZE));
    const firstPage = !params.get("cursor");
    const shown = new Map(); // id -> { row, version }

    const load = async () => {
      const list = await api("/v1/tasks?" + query.toString(), { signal });
      shown.clear();
      replace(rows, list.items.length
        ? list.items.map((task) => {
          const row = taskRow(task, showTenant);
          shown.set(task.id, { row, version: 0, updated: Date.parse(task.updated_at) });
          return row;
        })
        : h("tr", {}, h("td", { colspan: 6, class: "muted" }, "No task matches.")));
      replace(pager,
        firstPage ? null : h("a", { href: UI + "/tasks?" + without(params, "cursor"), "data-nav": true }, "Newest"),
        list.next_cursor ? h("a", { href: UI + "/tasks?" + withParam(params, "cursor", list.next_cursor), "data-nav": true, rel: "next" }, "Older") : null);
    };
    await load();

    // Live: rows on screen change in place; a task not on screen (new, or moved into
    // the filter) makes the first page read again, at most once a second.
    let pending = null;
    const reload = () => {
      if (pending !== null || !firstPage) return;
      pending = setTimeout(() => { pending = null; load().catch(() => {}); }, 1000);
    };
    signal.addEventListener("abort", () => clearTimeout(pending));
    const events = params.get("type") ? "/v1/events?type=" + encodeURIComponent(params.get("type")) : "/v1/events";
    stream(events, (kind, data) => {
      if (kind !== "task") return true;
      const known = shown.get(data.id);
      if (known === undefined) {
        reload();
      } else if (data.version > known.version && Date.parse(data.updated_at) >= known.updated) {
        // newer than what is shown (the list read says when; the stream counts versions)
        known.version = data.version;
        known.updated = Date.parse(data.updated_at);
        updateRow(known.row, data);
        if (params.get("state") && params.get("state") !== data.state) reload();
      }
      return true;
    }, signal, (state) => replace(live, state === "live" ? "● live" : "reconnecting…"));
  }

  function without(params, name) {
    const copy = new URLSearchParams(params);
    copy.delete(name);
    return copy.toString();
  }

  function withParam(params, name, value) {
    const copy = new URLSearchParams(params);
    copy.set(name, value);
    return copy.toString();
  }

  function filterForm(params, operations) {
    const field = (name, label, control) => h("div", { class: "field" }, h("label", { for: "f-" + name }, label), control);
    const select = (name, options) => h("select", { id: "f-" + name, name },
      h("option", { value: "" }, "any"),
      options.map((o) => h("option", { value: o, selected: params.get(name) === o }, o.replace("_", " "))));
    const input = (name, type, extra) => h("input", { id: "f-" + name, name, type, value: params.get(name) || "", ...extra });
    const type = operations.length ? select("type", operations) : input("type", "text");
    const form = h("form", { class: "filters", role: "search", "aria-label": "Filter tasks", onsubmit: (e) => {
      e.preventDefault();
      const next = new URLSearchParams();
      for (const [name, value] of new FormData(form)) if (value) next.set(name, value);
      for (const name of PASSED) if (params.get(name)) next.set(name, params.get(name));
      navigate(UI + "/tasks" + (next.toString() ? "?" + next.toString() : ""));
    } },
    field("q", "Search", input("q", "search", { placeholder: "task id, object id, label", size: 24 })),
    field("state", "State", select("state", STATES)),
    field("type", "Type", type),
    session.me.role === "admin" ? field("tenant", "Tenant", input("tenant", "text", { size: 10 })) : null,
    field("since", "Created from", input("since", "datetime-local")),
    field("until", "to", input("until", "datetime-local")),
    h("div", { class: "field buttons" },
      h("button", { type: "submit" }, "Apply"),
      h("a", { href: UI + "/tasks", "data-nav": true, class: "button quiet" }, "Reset")));
    const narrowed = PASSED.filter((name) => params.get(name));
    if (narrowed.length) {
      form.append(h("p", { class: "muted narrowed" }, "Only tasks with ",
        narrowed.map((name) => `${name.replace("_", " ")} ${params.get(name)}`).join(", ")));
    }
    return form;
  }

  function taskRow(task, showTenant) {
    const message = h("span", { class: "message" }, task.message || "");
    return h("tr", { "data-id": task.id },
      h("td", {}, link("/tasks/" + task.id, h("span", { class: "type" }, task.type)),
        h("br"), h("code", { class: "id", title: task.id }, "…" + task.id.slice(-8))),
      h("td", { class: "state" }, badge(task.state)),
      h("td", { class: "wide progress-cell" }, progressBar(task, "Progress of " + task.type + " " + task.id.slice(-8)),
        h("span", { class: "percent" }, percent(task)), " ", message),
      h("td", { class: "optional" }, task.object_id || ""),
      showTenant ? h("td", { class: "optional" }, task.tenant) : null,
      h("td", { class: "optional" }, when(task.created_at)));
  }

  function updateRow(row, event) {
    replace(row.querySelector(".state"), badge(event.state));
    const cell = row.querySelector(".progress-cell");
    const bar = cell.querySelector("progress");
    const fresh = progressBar(event, bar.getAttribute("aria-label"));
    bar.replaceWith(fresh);
    replace(cell.querySelector(".percent"), percent(event));
    replace(cell.querySelector(".message"), event.message || "");
  }

  // -- one task ------------------------------------------------------------------

  async function taskPage(page, id) {
    const signal = page.abort.signal;
    let task;
    try {
      task = await api("/v1/tasks/" + encodeURIComponent(id), { signal });
    } catch (error) {
      if (error instanceof ApiError && (error.status === 404 || error.status === 400)) {
        notFound("There is no task " + id + " (or your key cannot see it).");
        return;
      }
      throw error;
    }
    document.title = task.type + " …" + task.id.slice(-8) + " · taskgate";
    const head = h("div", { class: "task-head" });
    const fields = h("div", { class: "fields" });
    const outcome = h("div", { class: "outcome" });
    const logLines = h("ol", { class: "log", id: "log", "aria-label": "Log", tabindex: 0 });
    const follow = h("input", { type: "checkbox", id: "follow", checked: true });
    const logState = h("span", { class: "muted", id: "log-state" }, "");
    const download = h("button", { type: "button", class: "quiet", onclick: () => downloadLog(task) }, "Download log");
    replace(main(), head, outcome,
      h("section", { class: "log-box", "aria-labelledby": "log-title" },
        h("div", { class: "title" }, h("h2", { id: "log-title" }, "Log"), logState,
          h("label", { class: "inline" }, follow, " keep the end in view"), download),
        logLines),
      fields);

    const draw = (fresh) => {
      task = fresh;
      replace(head, ...taskHead(task, (next) => draw(next)));
      replace(outcome, ...taskOutcome(task));
      replace(fields, ...taskFields(task));
    };
    draw(task);

    // The task: every change it makes is an event; read the whole task again on each.
    let version = 0;
    stream("/v1/events?task_id=" + encodeURIComponent(task.id), (kind, data) => {
      if (kind === "task" && data.version > version) {
        version = data.version;
        api("/v1/tasks/" + encodeURIComponent(task.id), { signal })
          .then((fresh) => { if (Date.parse(fresh.updated_at) >= Date.parse(task.updated_at)) draw(fresh); })
          .catch(() => {});
      }
      return true;
    }, signal);

    // The log: followed until the task ends and its last line is in.
    replace(logState, "following…");
    stream("/v1/tasks/" + encodeURIComponent(task.id) + "/log?follow=true", (kind, data) => {
      if (kind === "line") {
        logLines.append(logLine(data));
        if (follow.checked) logLines.scrollTop = logLines.scrollHeight;
        return true;
      }
      if (kind === "end") {
        replace(logState, logLines.childElementCount ? "complete" : "no lines");
        return false;
      }
      return true;
    }, signal, (state) => replace(logState, state === "live" ? "following…" : "reconnecting…"));
  }

  function logLine(line) {
    return h("li", { class: "line level-" + line.level, value: line.n },
      h("time", { datetime: line.ts, title: line.ts }, new Date(line.ts).toLocaleTimeString()),
      h("span", { class: "level" }, line.level),
      h("span", { class: "text" }, line.t));
  }

  async function downloadLog(task) {
    const lines = [];
    for (let start = 0; ; ) {
      const page = await api(`/v1/tasks/${encodeURIComponent(task.id)}/log?start=${start}&limit=1000`);
      for (const line of page.lines) lines.push(`${line.ts} ${line.level.toUpperCase()} ${line.t}`);
      if (!page.lines.length || page.lines[page.lines.length - 1].n >= page.total) break;
      start = page.lines[page.lines.length - 1].n;
    }
    const url = URL.createObjectURL(new Blob([lines.join("\n") + "\n"], { type: "text/plain" }));
    const a = h("a", { href: url, download: `${task.type}-${task.id}.log` });
    document.body.append(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(url), 10000);
  }

  function taskHead(task, redraw) {
    const act = (label, path, done) => h("button", { type: "button", onclick: async (e) => {
      e.target.disabled = true;
      try {
        const answer = await api(`/v1/tasks/${encodeURIComponent(task.id)}/${path}`, { method: "POST" });
        say(done, "info");
        if (path === "retry") navigate(UI + "/tasks/" + answer.id);
        else redraw(answer);
      } catch (error) {
        if (!(error instanceof ApiError && error.status === 401)) say(label + " failed: " + error.message, "error");
        e.target.disabled = false;
      }
    } }, label);
    const actions = [];
    if (allowed("write")) {
      if (!TERMINAL.has(task.state) && task.state !== "canceling") actions.push(act("Cancel", "cancel", "Cancel requested."));
      if (task.state === "queued" || task.state === "scheduled") actions.push(act("Suspend", "suspend", "Suspended."));
      if (task.state === "suspended") actions.push(act("Resume", "resume", "Resumed."));
      if (TERMINAL.has(task.state) && !task.acknowledged_at) actions.push(act("Acknowledge", "acknowledge", "Acknowledged."));
      if (RETRYABLE.has(task.state)) actions.push(act("Retry", "retry", "Submitted again as a new task."));
    }
    return [
      h("p", { class: "crumbs" }, link("/tasks", "Tasks"), " › ", task.type),
      h("div", { class: "title" },
        h("h1", {}, task.type, " ", h("code", { class: "id" }, task.id)),
        badge(task.state)),
      h("div", { class: "progress-line" },
        progressBar(task, "Progress"),
        h("span", { class: "percent" }, percent(task)),
        h("span", { class: "message", id: "task-message" }, task.message || ""),
        task.detailed_state ? h("span", { class: "muted" }, " (" + task.detailed_state + ")") : null),
      actions.length ? h("div", { class: "actions", role: "group", "aria-label": "Actions" }, actions) : null,
    ];
  }

  function taskOutcome(task) {
    const parts = [];
    if (task.error) {
      parts.push(h("section", { class: "error-box", "aria-labelledby": "error-title" },
        h("h2", { id: "error-title" }, "Error"),
        h("p", {}, h("strong", {}, task.error.type), ": ", task.error.message),
        task.error.traceback ? h("details", { open: true }, h("summary", {}, "Traceback"), h("pre", { class: "traceback" }, task.error.traceback)) : null));
    }
    if (task.state === "succeeded" || task.result !== null) {
      parts.push(h("section", { "aria-labelledby": "result-title" }, h("h2", { id: "result-title" }, "Result"), json(task.result)));
    }
    const created = Object.entries(task.created_resources || {});
    if (created.length) {
      parts.push(h("section", { "aria-labelledby": "created-title" },
        h("h2", { id: "created-title" }, "Created resources"),
        h("dl", { class: "pairs" }, created.map(([kind, ids]) => [h("dt", {}, kind), h("dd", {}, ids.join(", "))]))));
    }
    return parts;
  }

  function taskFields(task) {
    const row = (label, value) => [h("dt", {}, label), h("dd", {}, value === null || value === undefined || value === "" ? "–" : value)];
    const labels = Object.entries(task.labels || {});
    const related = [];
    if (task.parent_id) related.push(row("Parent", link("/tasks/" + task.parent_id, task.parent_id)));
    if (task.group_id) related.push(row("Group", link("/tasks?group_id=" + encodeURIComponent(task.group_id), task.group_id)));
    if (task.schedule_id) related.push(row("Schedule", link("/tasks?schedule_id=" + encodeURIComponent(task.schedule_id), "runs of " + task.schedule_id)));
    if (task.children && task.children.length) {
      related.push(row("Children", h("ul", { class: "plain" }, task.children.map((c) => h("li", {}, link("/tasks/" + c, c))))));
    }
    if (task.labels && task.labels.retry_of) related.push(row("Retry of", link("/tasks/" + task.labels.retry_of, task.labels.retry_of)));
    return [
      related.length ? h("section", { "aria-labelledby": "related-title" }, h("h2", { id: "related-title" }, "Related tasks"), h("dl", { class: "pairs" }, related)) : null,
      h("section", { "aria-labelledby": "fields-title" },
        h("h2", { id: "fields-title" }, "Fields"),
        h("dl", { class: "pairs" },
          row("Id", h("code", {}, task.id)),
          row("UPID", h("code", {}, task.upid)),
          row("Type", task.type),
          row("Object", task.object_id),
          row("Tenant", task.tenant),
          row("User", task.user + (task.user_id !== null ? " (" + task.user_id + ")" : "")),
          row("State", task.state + (task.detailed_state ? " · " + task.detailed_state : "")),
          row("Attempt", task.attempt + " of " + task.max_attempts),
          row("Priority", String(task.priority)),
          row("Timeout", task.timeout === null ? "none" : duration(task.timeout)),
          row("Node", task.node),
          row("Worker", task.worker),
          row("Created", when(task.created_at)),
          row("Scheduled for", when(task.scheduled_at)),
          row("Started", when(task.started_at)),
          row("Finished", when(task.finished_at)),
          row("Updated", when(task.updated_at)),
          row("Cancel requested", when(task.cancel_requested_at)),
          row("Acknowledged", task.acknowledged_at ? [when(task.acknowledged_at), " by ", task.acknowledged_by || "?"] : null),
          row("Warnings", String(task.warnings)),
          row("Request id", task.request_id ? h("code", {}, task.request_id) : null),
          row("Idempotency key", task.idempotency_key ? h("code", {}, task.idempotency_key) : null),
          row("Archived", task.archived ? "yes (in history)" : "no"),
          row("Labels", labels.length ? h("ul", { class: "plain labels" }, labels.map(([k, v]) => h("li", {}, h("code", {}, k + "=" + v)))) : null),
          row("Reserved", task.reserved_resources ? json(task.reserved_resources) : null),
          row("Parameters", json(task.params)),
          task.progress_detail ? row("Progress detail", json(task.progress_detail)) : null)),
    ];
  }

  // -- schedules -----------------------------------------------------------------

  async function schedulesPage(page) {
    document.title = "Schedules · taskgate";
    const signal = page.abort.signal;
    const rows = h("tbody", {});
    const canWrite = allowed("write");
    replace(main(), h("h1", {}, "Schedules"),
      h("div", { class: "scroll" }, h("table", {},
        h("caption", {}, "Schedules, by name"),
        h("thead", {}, h("tr", {},
          ["Name", "Operation", "Recurrence", "State", "Next run", "Last run", "Runs"].map((c) => h("th", { scope: "col" }, c)),
          canWrite ? h("th", { scope: "col" }, "Actions") : null)),
        rows)));
    const draw = async () => {
      const items = [];
      for (let after = null; ;) {
        const list = await api("/v1/schedules?limit=200" + (after ? "&after=" + encodeURIComponent(after) : ""), { signal });
        items.push(...list.items);
        if (!list.next_after || items.length >= 2000) break;
        after = list.next_after;
      }
      replace(rows, items.length ? items.map((s) => scheduleRow(s, canWrite, draw)) : h("tr", {}, h("td", { colspan: 8, class: "muted" }, "No schedules.")));
    };
    await draw();
    every(10000, () => draw().catch(() => {}), signal);
  }

  function scheduleRow(s, canWrite, redraw) {
    const act = (label, path) => h("button", { type: "button", class: "small", onclick: async (e) => {
      e.target.disabled = true;
      try {
        const answer = await api(`/v1/schedules/${encodeURIComponent(s.id)}/${path}`, { method: "POST" });
        say(path === "run" ? `Schedule ${s.name} started task ${answer.id || ""}.` : `Schedule ${s.name}: ${label.toLowerCase()}d.`, "info");
        await redraw();
      } catch (error) {
        if (!(error instanceof ApiError && error.status === 401)) say(`${label} ${s.name} failed: ${error.message}`, "error");
        e.target.disabled = false;
      }
    } }, label);
    return h("tr", { "data-id": s.id },
      h("td", {}, s.name, h("br"), h("code", { class: "id" }, s.tenant)),
      h("td", {}, s.type),
      h("td", {}, h("code", {}, s.recurrence), s.timezone && s.timezone !== "UTC" ? " " + s.timezone : ""),
      h("td", {}, s.enabled ? h("span", { class: "badge state-running" }, "active") : h("span", { class: "badge state-suspended", title: s.disabled_reason || "" }, "paused")),
      h("td", {}, when(s.next_run)),
      h("td", {}, s.last_task_id ? link("/tasks/" + s.last_task_id, when(s.last_run_at)) : "–"),
      h("td", {}, link("/tasks?schedule_id=" + encodeURIComponent(s.id), String(s.total_run_count))),
      canWrite ? h("td", { class: "actions" },
        s.enabled ? act("Pause", "pause") : act("Resume", "resume"),
        act("Run now", "run")) : null);
  }

  // -- workers -------------------------------------------------------------------

  async function workersPage(page) {
    document.title = "Workers · taskgate";
    if (!allowed("admin")) {
      replace(main(), h("h1", {}, "Workers"), h("p", {}, "Workers serve every tenant: only an admin key sees them."));
      return;
    }
    const rows = h("tbody", {});
    replace(main(), h("h1", {}, "Workers"),
      h("div", { class: "scroll" }, h("table", {},
        h("caption", {}, "Workers, by node"),
        h("thead", {}, h("tr", {}, ["Worker", "Node", "PID", "Running", "Slots", "Last heartbeat", "Started"].map((c) => h("th", { scope: "col" }, c)))),
        rows)));
    const draw = async () => {
      const list = await api("/v1/workers", { signal: page.abort.signal });
      replace(rows, list.items.length ? list.items.map((w) => h("tr", {},
        h("td", {}, h("code", {}, w.id)),
        h("td", {}, w.node),
        h("td", {}, String(w.pid)),
        h("td", {}, String(w.running)),
        h("td", {}, String(w.concurrency)),
        h("td", {}, w.alive ? "" : h("span", { class: "badge state-failed" }, "lost"), " ", ago(w.heartbeat_age)),
        h("td", {}, when(w.started_at)))) : h("tr", {}, h("td", { colspan: 7, class: "muted" }, "No workers are registered.")));
    };
    await draw();
    every(5000, () => draw().catch(() => {}), page.abort.signal);
  }

  // -- start ---------------------------------------------------------------------

  document.addEventListener("click", (event) => {
    const a = event.target.closest("a[data-nav]");
    if (!a || event.defaultPrevented || event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) return;
    event.preventDefault();
    navigate(a.href);
  });
  window.addEventListener("popstate", render);
  document.getElementById("logout").addEventListener("click", logout);
  render();
})();
