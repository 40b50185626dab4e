// The taskgate dashboard: the overview page (counts, queue, charts).
"use strict";

(() => {
  const { STATES, h, replace, link, badge, duration, api, every, main } = window.taskgate;

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

  Object.assign(window.taskgate, { overviewPage });
})();
