// The taskgate dashboard: the task list and a task's page.
"use strict";

(() => {
  const { UI, PAGE_SIZE, STATES, TERMINAL, RETRYABLE, session, h, replace, link, badge, progressBar, percent, when, duration, json, say, allowed, ApiError, api, stream, main, notFound, navigate } = window.taskgate;

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

  Object.assign(window.taskgate, { listPage, taskPage });
})();
