// The taskgate dashboard: the schedules and workers pages.
"use strict";

(() => {
  const { h, replace, link, when, ago, say, allowed, ApiError, api, every, main } = window.taskgate;

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
      canWrite ? h("td", { class: "row-actions" },
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

  Object.assign(window.taskgate, { schedulesPage, workersPage });
})();
