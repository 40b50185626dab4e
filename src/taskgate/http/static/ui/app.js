// The taskgate dashboard, last part: signing in and out, and which page a path shows.
"use strict";

(() => {
  const { ROOT, UI, KEY, NEXT, session, h, replace, say, ApiError, headers, failure, main, notFound, navigate, overviewPage, listPage, taskPage, schedulesPage, workersPage } = window.taskgate;

  let view = null; // the page on screen: { abort: AbortController }

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

  // -- start ---------------------------------------------------------------------

  document.addEventListener("click", (event) => {
    const a = event.target.closest("a[data-nav]");
    if (!a || event.defaultPrevented || event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) return;
    event.preventDefault();
    navigate(a.href);
  });
  window.addEventListener("popstate", render);
  document.getElementById("logout").addEventListener("click", logout);

  Object.assign(window.taskgate, { expired, render, showLogin });
  render();
})();
