// The taskgate dashboard, first part: what every page uses (constants, the session,
// building elements, the API and its event streams, navigation). No build step, no
// dependencies: each file is a plain script, loaded in order, sharing `window.taskgate`.
//
// Every page is drawn from the JSON API, with the key typed at login. The key is kept
// in this tab's sessionStorage and sent only as "Authorization: Bearer", never in a
// URL. Text that comes from tasks (messages, logs, labels, results, errors) only ever
// enters the page as text nodes: nothing here parses a string as HTML.
"use strict";

(() => {
  const taskgate = (window.taskgate = {});
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
    if (response.status === 401) taskgate.expired(error.message);
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

  // -- where pages go ----------------------------------------------------------

  function main() {
    return document.getElementById("main");
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
    taskgate.render();
    main().focus({ preventScroll: true });
  }

  Object.assign(taskgate, {
    ROOT,
    UI,
    KEY,
    NEXT,
    PAGE_SIZE,
    STATES,
    TERMINAL,
    RETRYABLE,
    RANK,
    session,
    h,
    append,
    replace,
    link,
    badge,
    progressBar,
    percent,
    when,
    ago,
    duration,
    json,
    say,
    allowed,
    ApiError,
    headers,
    failure,
    api,
    stream,
    sleep,
    every,
    main,
    notFound,
    navigate,
  });
})();
