// Renders this server's openapi.json: operations by tag, their parameters, bodies and
// responses, the schemas, and a small form to try each call. No libraries, no network
// beyond this server.
"use strict";
(function () {
  const METHODS = ["get", "post", "put", "patch", "delete"];

  function h(tag, attrs, ...children) {
    const el = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === null || v === undefined || v === false) continue;
      if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
      else el.setAttribute(k, v === true ? "" : String(v));
    }
    for (const child of children.flat()) {
      if (child === null || child === undefined || child === false) continue;
      el.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return el;
  }

  // A few inline marks of the descriptions: `code` and **bold**; everything else is text.
  function prose(text) {
    const out = h("p");
    const parts = String(text || "").split(/(`[^`]+`|\*\*[^*]+\*\*)/);
    for (const part of parts) {
      if (part.startsWith("`") && part.endsWith("`") && part.length > 1) out.append(h("code", {}, part.slice(1, -1)));
      else if (part.startsWith("**") && part.endsWith("**") && part.length > 3) out.append(h("strong", {}, part.slice(2, -2)));
      else out.append(document.createTextNode(part));
    }
    return out;
  }

  function refName(ref) {
    return ref.split("/").pop();
  }

  function typeLabel(schema) {
    if (!schema) return "any";
    if (schema.$ref) return refName(schema.$ref);
    if (schema.anyOf || schema.oneOf) return (schema.anyOf || schema.oneOf).map(typeLabel).join(" | ");
    let type = Array.isArray(schema.type) ? schema.type.join(" | ") : schema.type || "any";
    if (schema.type === "array" && schema.items) type = typeLabel(schema.items) + "[]";
    if (schema.format) type += ` (${schema.format})`;
    return type;
  }

  function constraints(schema) {
    const out = [];
    if (!schema) return out;
    if (schema.enum) out.push("one of: " + schema.enum.join(", "));
    for (const key of ["minimum", "exclusiveMinimum", "maximum", "minLength", "maxLength", "pattern", "default"]) {
      if (schema[key] !== undefined) out.push(`${key}: ${JSON.stringify(schema[key])}`);
    }
    return out;
  }

  function schemaView(schema, depth) {
    depth = depth || 0;
    const box = h("div", { class: "schema" });
    if (!schema) return box;
    if (schema.$ref) {
      const name = refName(schema.$ref);
      box.append(h("a", { href: "#schema-" + name }, name));
      return box;
    }
    box.append(h("span", { class: "type" }, typeLabel(schema)));
    if (schema.description) box.append(" — ", schema.description);
    const notes = constraints(schema);
    if (notes.length) box.append(h("div", { class: "muted" }, notes.join("; ")));
    if (depth > 6) return box;
    for (const alt of schema.anyOf || schema.oneOf || []) {
      if (alt.type !== "null") box.append(schemaView(alt, depth + 1));
    }
    if (schema.items && !schema.items.$ref) box.append(schemaView(schema.items, depth + 1));
    const props = schema.properties || {};
    const required = new Set(schema.required || []);
    const names = Object.keys(props);
    if (names.length) {
      const rows = names.map((name) =>
        h("tr", {},
          h("td", {}, h("code", {}, name), required.has(name) ? h("span", { class: "req" }, " required") : null),
          h("td", {}, schemaView(props[name], depth + 1)))
      );
      box.append(h("table", {}, h("tr", {}, h("th", {}, "field"), h("th", {}, "schema")), rows));
    }
    if (schema.additionalProperties && typeof schema.additionalProperties === "object") {
      box.append(h("div", { class: "muted" }, "values: "), schemaView(schema.additionalProperties, depth + 1));
    }
    return box;
  }

  function parametersView(params) {
    if (!params.length) return null;
    return h("table", {},
      h("tr", {}, h("th", {}, "parameter"), h("th", {}, "in"), h("th", {}, "type"), h("th", {}, "description")),
      params.map((p) =>
        h("tr", {},
          h("td", {}, h("code", {}, p.name), p.required ? h("span", { class: "req" }, " required") : null),
          h("td", {}, p.in),
          h("td", {}, typeLabel(p.schema), h("div", { class: "muted" }, constraints(p.schema).join("; "))),
          h("td", {}, p.description || ""))
      ));
  }

  function responsesView(responses) {
    return h("table", {},
      h("tr", {}, h("th", {}, "status"), h("th", {}, "description"), h("th", {}, "body"), h("th", {}, "headers")),
      Object.entries(responses).map(([status, r]) => {
        const content = r.content || {};
        const media = Object.keys(content)[0];
        return h("tr", {},
          h("td", {}, h("code", {}, status)),
          h("td", {}, r.description || ""),
          h("td", {}, media ? [h("div", { class: "muted" }, media), schemaView(content[media].schema)] : "—"),
          h("td", {}, Object.keys(r.headers || {}).join(", ")));
      }));
  }

  function tryView(base, path, method, op) {
    const params = op.parameters || [];
    const fields = {};
    const form = h("div", { class: "try" }, h("strong", {}, "Try it"));
    for (const p of params) {
      const input = h("input", { placeholder: typeLabel(p.schema), "aria-label": p.name });
      fields[p.name] = { param: p, input };
      form.append(h("label", {}, h("code", {}, p.name), ` (${p.in})`, input));
    }
    let body = null;
    if (op.requestBody) {
      body = h("textarea", { "aria-label": "body" }, "{}");
      form.append(h("label", {}, "body (JSON)", body));
    }
    const output = h("pre", {}, "");
    const send = async () => {
      let url = path;
      const query = new URLSearchParams();
      const headers = {};
      for (const { param, input } of Object.values(fields)) {
        const value = input.value.trim();
        if (!value) continue;
        if (param.in === "path") url = url.replace("{" + param.name + "}", encodeURIComponent(value));
        else if (param.in === "query") for (const v of value.split(/\s*;\s*/)) query.append(param.name, v);
        else if (param.in === "header") headers[param.name] = value;
      }
      const key = document.getElementById("api-key").value.trim();
      if (key && !headers.Authorization && !(op.security && op.security.length === 0)) {
        headers.Authorization = "Bearer " + key;
      }
      const init = { method: method.toUpperCase(), headers };
      if (body && body.value.trim()) {
        init.body = body.value;
        headers["Content-Type"] = "application/json";
      }
      const qs = query.toString();
      output.textContent = "…";
      try {
        const res = await fetch(base + url + (qs ? "?" + qs : ""), init);
        const text = await res.text();
        let shown = text;
        try { shown = JSON.stringify(JSON.parse(text), null, 2); } catch (e) { /* not JSON */ }
        const head = [...res.headers.entries()].map(([k, v]) => `${k}: ${v}`).join("\n");
        output.textContent = `${res.status} ${res.statusText}\n${head}\n\n${shown}`;
      } catch (e) {
        output.textContent = "request failed: " + e;
      }
    };
    form.append(h("p", { class: "muted" }, "Repeat a query value by separating values with ';'."),
      h("button", { type: "button", onclick: send }, "Send"), output);
    return form;
  }

  function operationView(base, path, method, op) {
    const id = "op-" + (op.operationId || method + path);
    return h("details", { class: "op", id },
      h("summary", {}, h("span", { class: "method " + method }, method), h("span", { class: "path" }, path),
        h("span", { class: "muted" }, op.summary || "")),
      h("div", { class: "op-body" },
        op.description ? op.description.split(/\n\n+/).map(prose) : null,
        (op.parameters || []).length ? [h("h4", {}, "Parameters"), parametersView(op.parameters)] : null,
        op.requestBody ? [h("h4", {}, "Body", op.requestBody.required ? h("span", { class: "req" }, " required") : ""),
          h("p", {}, op.requestBody.description || ""),
          schemaView(op.requestBody.content["application/json"].schema)] : null,
        h("h4", {}, "Responses"), responsesView(op.responses || {}),
        tryView(base, path, method, op)));
  }

  function render(doc) {
    document.title = doc.info.title;
    document.getElementById("title").textContent = doc.info.title;
    document.getElementById("version").textContent = `version ${doc.info.version} · OpenAPI ${doc.openapi}`;
    const description = document.getElementById("description");
    for (const para of (doc.info.description || "").split(/\n\n+/)) description.append(prose(para.replace(/\n/g, " ")));
    const base = ((doc.servers && doc.servers[0] && doc.servers[0].url) || "/").replace(/\/$/, "");
    const byTag = new Map((doc.tags || []).map((t) => [t.name, { tag: t, ops: [] }]));
    for (const [path, item] of Object.entries(doc.paths)) {
      for (const method of METHODS) {
        const op = item[method];
        if (!op) continue;
        const tag = (op.tags && op.tags[0]) || "other";
        if (!byTag.has(tag)) byTag.set(tag, { tag: { name: tag }, ops: [] });
        byTag.get(tag).ops.push([path, method, op]);
      }
    }
    const main = document.getElementById("main");
    const nav = document.getElementById("nav");
    main.textContent = "";
    for (const { tag, ops } of byTag.values()) {
      if (!ops.length) continue;
      nav.append(h("a", { href: "#tag-" + tag.name }, tag.name));
      main.append(h("section", {}, h("h2", { id: "tag-" + tag.name }, tag.name),
        tag.description ? prose(tag.description) : null,
        ops.map(([path, method, op]) => operationView(base, path, method, op))));
    }
    nav.append(h("a", { href: "#schemas" }, "schemas"));
    main.append(h("h2", { id: "schemas" }, "Schemas"));
    const schemas = (doc.components && doc.components.schemas) || {};
    for (const name of Object.keys(schemas)) {
      main.append(h("h3", { id: "schema-" + name }, name), schemaView(schemas[name]));
    }
    if (location.hash) {
      const target = document.getElementById(location.hash.slice(1));
      if (target) { if (target.tagName === "DETAILS") target.open = true; target.scrollIntoView(); }
    }
  }

  fetch("openapi.json")
    .then((res) => { if (!res.ok) throw new Error(res.status + " " + res.statusText); return res.json(); })
    .then(render)
    .catch((e) => {
      const main = document.getElementById("main");
      main.textContent = "";
      main.append(h("p", { class: "error" }, "Could not load openapi.json: " + e.message));
    });
})();
