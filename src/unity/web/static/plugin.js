/* Plugin page: enable/disable, run now, health, the config form and the charts.
 * Everything goes through the JSON API (/api/plugins/v2/{id}/...). */
(() => {
  "use strict";

  const { api, toast, fail, busy, showErrors, clearErrors, announce } = window.Unity;
  const head = document.getElementById("plugin");
  if (!head) return;
  const pluginId = head.dataset.pluginId;
  const base = `/api/plugins/v2/${encodeURIComponent(pluginId)}`;
  const refreshLive = () => {
    document.getElementById("plugin-live")?.refreshLive?.();
    document.getElementById("plugin-history")?.refreshLive?.();
  };
  const MASK = "********";

  /* -- actions ------------------------------------------------------------- */

  function showToggle(button, enabled) {
    button.dataset.enabled = String(enabled);
    button.textContent = enabled ? "Disable" : "Enable";
    button.classList.toggle("primary", !enabled);
  }

  function runReport(result) {
    const body = document.createElement("div");
    const facts = document.createElement("p");
    const badge = document.createElement("span");
    badge.className = `badge status-${result.status}`;
    badge.textContent = result.status.replace("_", " ");
    facts.append(badge, ` in ${Math.round(result.duration_ms)} ms · ${result.metrics_count} document(s) stored`);
    body.append(facts);
    if (result.error) {
      const error = document.createElement("p");
      error.className = "alert error";
      error.textContent = result.error;
      body.append(error);
    }
    if (result.data) {
      const details = document.createElement("details");
      details.open = true;
      const summary = document.createElement("summary");
      summary.textContent = "Collected document";
      const pre = document.createElement("pre");
      pre.className = "run-data";
      pre.textContent = JSON.stringify(result.data, null, 2);
      details.append(summary, pre);
      body.append(details);
    }
    return body;
  }

  head.addEventListener("click", async (event) => {
    const button = event.target.closest("[data-action]");
    if (!button || button.disabled) return;
    const action = button.dataset.action;
    await busy(button, async () => {
      try {
        if (action === "toggle") {
          const enabling = button.dataset.enabled !== "true";
          const detail = await api("POST", `${base}/${enabling ? "enable" : "disable"}`);
          showToggle(button, detail.enabled);
          toast(`${detail.name} ${detail.enabled ? "enabled" : "disabled"}`);
        } else if (action === "run") {
          const result = await api("POST", `${base}/execute`);
          const section = document.getElementById("run-result");
          section.querySelector("[data-run-body]").replaceChildren(runReport(result));
          section.hidden = false;
          section.focus();
          announce(`Run finished: ${result.status}`);
          loadCharts();
        } else if (action === "health") {
          const health = await api("GET", `${base}/health`);
          toast(`Health: ${health.status}${health.message ? ` — ${health.message}` : ""}`);
        }
        refreshLive();
      } catch (err) {
        fail(err);
      }
    });
  });

  /* -- config form --------------------------------------------------------------- */

  const form = document.querySelector("[data-config-form]");

  function fieldError(wrap, message) {
    const target = wrap.querySelector("[data-error-for]");
    target.textContent = message;
    target.hidden = false;
    wrap.querySelector("input, select, textarea")?.setAttribute("aria-invalid", "true");
  }

  function itemValue(text, type) {
    if (type === "integer" || type === "number") {
      const n = Number(text);
      return Number.isNaN(n) ? text : n;
    }
    return text;
  }

  /* The form as a config object: empty fields are left out (the schema default applies). */
  function collect() {
    const config = {};
    let problems = 0;
    for (const wrap of form.querySelectorAll("[data-field]")) {
      const name = wrap.dataset.field;
      const widget = wrap.dataset.widget;
      const fallback = JSON.parse(wrap.dataset.default || "null");
      const input = wrap.querySelector("input:not([type=radio]), select, textarea");
      if (widget === "boolean") {
        if (input.checked !== Boolean(fallback)) config[name] = input.checked;
      } else if (widget === "targets") {
        const chosen = [...wrap.querySelectorAll("input:checked")].map((n) => n.value);
        if (chosen.length) config[name] = chosen;
      } else if (widget === "select") {
        if (input.value !== "" && input.value !== String(fallback ?? "")) config[name] = input.value;
      } else if (widget === "number" || widget === "integer") {
        if (input.validity.badInput) {
          fieldError(wrap, "Enter a number.");
          problems += 1;
        } else if (input.value.trim() !== "") {
          config[name] = itemValue(input.value.trim(), widget);
        }
      } else if (widget === "list") {
        const items = input.value.split("\n").map((s) => s.trim()).filter(Boolean);
        if (items.length) config[name] = items.map((s) => itemValue(s, wrap.dataset.itemType));
      } else if (widget === "json") {
        const raw = input.value.trim();
        if (raw) {
          try {
            config[name] = JSON.parse(raw);
          } catch (err) {
            fieldError(wrap, `Not valid JSON: ${err.message}`);
            problems += 1;
          }
        }
      } else if (widget === "secret") {
        const source = wrap.querySelector("input[type=radio]:checked").value;
        if (source === "credential") {
          const chosen = wrap.querySelector("[data-secret-credential]").value;
          if (chosen) config[name] = { $credential: chosen };
          else {
            fieldError(wrap, "Choose a stored credential.");
            problems += 1;
          }
        } else {
          const value = wrap.querySelector("[data-secret-value]").value;
          if (value) config[name] = value;
          else if (wrap.querySelector("[data-secret]").dataset.stored === "true") config[name] = MASK;
        }
      } else if (input.value !== "") {
        config[name] = input.value;
      }
    }
    return problems ? null : config;
  }

  if (form) {
    form.addEventListener("change", (event) => {
      const radio = event.target.closest("input[type=radio]");
      if (!radio) return;
      const box = radio.closest("[data-secret]");
      const useCredential = radio.value === "credential";
      box.querySelector("[data-secret-value]").hidden = useCredential;
      box.querySelector("[data-secret-credential]").hidden = !useCredential;
    });

    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      const status = form.querySelector("[data-form-status]");
      clearErrors(form);
      status.textContent = "";
      const config = collect();
      if (config === null) {
        form.querySelector('[aria-invalid="true"]')?.focus();
        return;
      }
      await busy(event.submitter, async () => {
        try {
          await api("PUT", `${base}/config`, config);
          form.querySelectorAll("[data-secret]").forEach((box) => {
            const input = box.querySelector("[data-secret-value]");
            if (input.value) {
              box.dataset.stored = "true";
              input.value = "";
              input.placeholder = "Stored: leave empty to keep";
            }
          });
          status.textContent = `Saved at ${new Date().toLocaleTimeString()}`;
          toast("Configuration saved");
          refreshLive();
        } catch (err) {
          if (err.status === 422) {
            showErrors(form, err);
            status.textContent = "Not saved: see the errors above.";
          } else fail(err);
        }
      });
    });
  }

  /* -- charts ----------------------------------------------------------------------- */

  const controls = document.querySelector("[data-chart-controls]");
  const figures = [...document.querySelectorAll("[data-chart]")];
  const timelines = [...document.querySelectorAll("[data-state-chart]")];
  const plots = new Map();
  const picked = new Map(); // field -> Map(item -> shown), what the reader ticked
  const POINTS = 240;
  const SHOWN_ITEMS = 8;
  const HEIGHT = 190;
  const FOCUS_SPAN = 2 * 3600 * 1000; // the range around a notification's time (?at=)
  const interval = Number(controls?.dataset.interval) || 60;
  // Readable on the light and the dark surface alike; the first is the theme's accent.
  const PALETTE = ["#e8803a", "#3aa17e", "#c64f9b", "#8a6bd1", "#c9a227", "#2f9fc4", "#d1544b", "#7f8c2f", "#9a7660"];
  const BYTES = { B: 1, bytes: 1, KiB: 1024, MiB: 1024 ** 2, GiB: 1024 ** 3, TiB: 1024 ** 4 };
  const BYTE_NAMES = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];

  function css(name) {
    return getComputedStyle(document.documentElement).getPropertyValue(name).trim();
  }

  function colour(index) {
    return index === 0 ? css("--accent") : PALETTE[(index - 1) % PALETTE.length];
  }

  /* "#2f5bd3" at an opacity, for the min–max band (canvas needs a plain colour). */
  function faded(hex, alpha) {
    const m = /^#([0-9a-f]{2})([0-9a-f]{2})([0-9a-f]{2})$/i.exec(hex);
    if (!m) return "rgba(127, 127, 127, 0.15)";
    return `rgba(${parseInt(m[1], 16)}, ${parseInt(m[2], 16)}, ${parseInt(m[3], 16)}, ${alpha})`;
  }

  function range() {
    const choice = controls.range.value;
    if (choice === "custom") {
      const start = controls.start.value ? new Date(controls.start.value) : null;
      const end = controls.end.value ? new Date(controls.end.value) : new Date();
      if (start && start < end) return { start, end };
      return null;
    }
    const end = new Date();
    return { start: new Date(end.getTime() - Number(choice) * 1000), end };
  }

  function number(value, digits) {
    return value.toLocaleString(undefined, { maximumFractionDigits: digits, minimumFractionDigits: 0 });
  }

  function defaultDigits(value) {
    const a = Math.abs(value);
    return a >= 100 ? 0 : a >= 10 ? 1 : 2;
  }

  /* A length of time for people: 850 ms, 42 s, 12 min, 5.5 h, 3.2 d. */
  function duration(seconds) {
    const a = Math.abs(seconds);
    const sign = seconds < 0 ? "-" : "";
    if (a === 0) return "0 s";
    if (a < 1) return `${sign}${number(a * 1000, 0)} ms`;
    if (a < 120) return `${sign}${number(a, a < 10 ? 1 : 0)} s`;
    if (a < 7200) return `${sign}${number(a / 60, 1)} min`;
    if (a < 172800) return `${sign}${number(a / 3600, 1)} h`;
    return `${sign}${number(a / 86400, 1)} d`;
  }

  /* Bytes (or KiB, MiB...) in the binary unit that suits `scaleOf`, the largest value shown. */
  function bytes(value, base, scaleOf, digits) {
    const inBytes = value * BYTES[base];
    let index = 0;
    let top = Math.abs(scaleOf * BYTES[base]);
    while (top >= 1024 && index < BYTE_NAMES.length - 1) {
      top /= 1024;
      index += 1;
    }
    const shown = inBytes / 1024 ** index;
    return `${number(shown, digits ?? (index ? defaultDigits(shown) : 0))} ${BYTE_NAMES[index]}`;
  }

  function format(value, unit, options = {}) {
    if (value == null || Number.isNaN(value)) return "—";
    const rate = unit.endsWith("/s");
    const base = rate ? unit.slice(0, -2) : unit;
    if (base in BYTES) return bytes(value, base, options.scale ?? value, options.digits) + (rate ? "/s" : "");
    if (!rate && (base === "s" || base === "ms")) return duration(base === "ms" ? value / 1000 : value);
    const text = number(value, options.digits ?? defaultDigits(value));
    if (!unit || unit === "count") return text;
    if (unit === "count/s") return `${text}/s`;
    return unit === "%" ? `${text}%` : `${text} ${unit}`;
  }

  /* Tick labels: one unit for the whole axis and enough decimals that neighbours differ. */
  function tickLabels(ticks, unit) {
    const scale = Math.max(...ticks.map(Math.abs), 0);
    const gap = ticks.length > 1 ? Math.abs(ticks[1] - ticks[0]) : 1;
    const base = unit.endsWith("/s") ? unit.slice(0, -2) : unit;
    let shown = gap;
    if (base in BYTES) {
      let top = scale * BYTES[base];
      shown = gap * BYTES[base];
      while (top >= 1024) {
        top /= 1024;
        shown /= 1024;
      }
    }
    const digits = shown > 0 ? Math.min(4, Math.max(0, -Math.floor(Math.log10(shown)))) : 0;
    return ticks.map((v) => format(v, unit, { scale, digits }));
  }

  /* A run of empty buckets shorter than a couple of collection intervals is the
   * jitter of the schedule, not an outage: join the line across it (undefined),
   * and keep real gaps as null, which uPlot leaves blank. */
  function bridge(t, ys, step) {
    const limit = step + 2 * interval;
    let previous = -1;
    for (let i = 0; i < ys.length; i += 1) {
      if (ys[i] == null) continue;
      if (previous >= 0 && i - previous > 1 && t[i] - t[previous] <= limit) {
        for (let k = previous + 1; k < i; k += 1) ys[k] = undefined;
      }
      previous = i;
    }
    return ys;
  }

  /* A counter's rate per second from one sample to the next; none across a gap or a reset. */
  function rates(t, values, step) {
    const limit = step + 2 * interval;
    let previous = -1;
    return values.map((v, i) => {
      if (v == null) return null;
      const before = previous;
      previous = i;
      if (before < 0) return null;
      const dt = t[i] - t[before];
      const dv = v - values[before];
      return dt > 0 && dt <= limit && dv >= 0 ? dv / dt : null;
    });
  }

  function columns(points, counter, step) {
    const t = points.map((p) => Date.parse(p.t) / 1000);
    const pick = (key) => points.map((p) => p[key]);
    if (counter) {
      const rate = bridge(t, rates(t, pick("avg"), step), step);
      return [t, rate, rate, rate];
    }
    return [t, bridge(t, pick("avg"), step), bridge(t, pick("min"), step), bridge(t, pick("max"), step)];
  }

  function itemColumns(items, counter, step) {
    const t = (items[0]?.points || []).map((p) => Date.parse(p.t) / 1000);
    return [
      t,
      ...items.map((s) => {
        const avg = s.points.map((p) => p.avg);
        return bridge(t, counter ? rates(t, avg, step) : avg, step);
      }),
    ];
  }

  function unitOf(figure) {
    return figure.dataset.kind === "counter" && figure.dataset.unit ? `${figure.dataset.unit}/s` : figure.dataset.unit;
  }

  /* -- alert overlays: each threshold rule of the metric as a dashed line, and the
   * times an alert of the plugin fired as shaded spans (from /api/alerts/periods). */

  let periods = [];
  const SEVERITY_COLOUR = { critical: "--bad", warning: "--warn", info: "--info" };

  function thresholdsOf(figure) {
    try {
      return JSON.parse(figure.dataset.thresholds || "[]");
    } catch {
      return [];
    }
  }

  /* The y range, widened so every threshold line is on the chart. */
  function yRange(figure) {
    const limits = thresholdsOf(figure).map((t) => t.value);
    return (u, min, max) => {
      const low = Math.min(...limits, ...(min == null ? [] : [min]));
      const high = Math.max(...limits, ...(max == null ? [] : [max]));
      if (!Number.isFinite(low) || !Number.isFinite(high)) return [0, 1];
      return window.uPlot.rangeNum(low, high, 0.1, true);
    };
  }

  function drawOverlays(u, figure, span) {
    const { ctx } = u;
    const { left, top, width, height } = u.bbox;
    const from = span.start.getTime() / 1000;
    const to = span.end.getTime() / 1000;
    ctx.save();
    let shaded = 0;
    for (const p of periods) {
      const start = Math.max(from, Date.parse(p.start) / 1000);
      const end = Math.min(to, p.end ? Date.parse(p.end) / 1000 : to);
      if (end <= start) continue;
      const x0 = u.valToPos(start, "x", true);
      const x1 = u.valToPos(end, "x", true);
      ctx.fillStyle = faded(css(SEVERITY_COLOUR[p.severity] || "--bad"), 0.14);
      ctx.fillRect(x0, top, Math.max(2, x1 - x0), height);
      shaded += 1;
    }
    let drawn = 0;
    for (const t of thresholdsOf(figure)) {
      const y = u.valToPos(t.value, "y", true);
      if (!(y >= top - 1 && y <= top + height + 1)) continue;
      ctx.strokeStyle = css(SEVERITY_COLOUR[t.severity] || "--bad");
      ctx.lineWidth = 1.5 * devicePixelRatio;
      ctx.setLineDash([6 * devicePixelRatio, 4 * devicePixelRatio]);
      ctx.beginPath();
      ctx.moveTo(left, y);
      ctx.lineTo(left + width, y);
      ctx.stroke();
      drawn += 1;
    }
    ctx.restore();
    // What was drawn, for people using assistive technology and for tests.
    figure.dataset.thresholdsDrawn = String(drawn);
    figure.dataset.periodsDrawn = String(shaded);
  }

  function baseOptions(canvas, span, unit, figure) {
    const axis = { stroke: css("--muted"), grid: { stroke: css("--chart-grid") }, ticks: { stroke: css("--chart-grid") } };
    const narrow = canvas.clientWidth < 420;
    return {
      width: Math.max(200, canvas.clientWidth),
      height: HEIGHT,
      legend: { show: false },
      cursor: { drag: { x: false, y: false } },
      scales: {
        x: { time: true, range: () => [span.start.getTime() / 1000, span.end.getTime() / 1000] },
        ...(thresholdsOf(figure).length ? { y: { range: yRange(figure) } } : {}),
      },
      hooks: { draw: [(u) => drawOverlays(u, figure, span)] },
      axes: [
        { ...axis, space: narrow ? 80 : 60 },
        {
          ...axis,
          values: (u, ticks) => tickLabels(ticks, unit),
          size: (u, values) => 18 + 7.5 * Math.max(4, ...(values || []).map((v) => String(v).length)),
        },
      ],
    };
  }

  function mount(figure, options, data) {
    const canvas = figure.querySelector("[data-canvas]");
    plots.get(figure)?.destroy();
    canvas.replaceChildren();
    canvas.hidden = false;
    const plot = new window.uPlot(options, data, canvas);
    plots.set(figure, plot);
    return plot;
  }

  function finish(figure, count, latest) {
    figure.dataset.points = String(count);
    figure.querySelector("[data-empty]").hidden = count > 0;
    const canvas = figure.querySelector("[data-canvas], [data-timeline]");
    canvas.hidden = count === 0;
    figure.querySelector("[data-latest]").textContent = latest;
  }

  function draw(figure, series, span) {
    const unit = unitOf(figure);
    const data = columns(series.points, figure.dataset.kind === "counter", series.step);
    const accent = css("--accent");
    const count = data[1].filter((v) => v != null).length;
    const options = baseOptions(figure.querySelector("[data-canvas]"), span, unit, figure);
    options.series = [
      {},
      { label: "average", stroke: accent, width: 2, spanGaps: false, points: { show: count <= 40, size: 5, fill: accent }, value: (u, v) => format(v, unit) },
      { label: "min", stroke: "transparent", spanGaps: false, points: { show: false } },
      { label: "max", stroke: "transparent", spanGaps: false, points: { show: false } },
    ];
    options.bands = [{ series: [3, 2], fill: faded(accent, 0.16) }];
    mount(figure, options, data);
    const last = [...data[1]].reverse().find((v) => v != null);
    finish(figure, count, last == null ? "" : format(last, unit));
  }

  /* One line per item, and a checkbox per item to show or hide it. */
  function drawItems(figure, series, span) {
    const unit = unitOf(figure);
    const field = figure.dataset.field;
    const items = series.items || [];
    const data = itemColumns(items, figure.dataset.kind === "counter", series.step);
    const choice = picked.get(field) || new Map();
    picked.set(field, choice);
    // Unless the reader chose, the busiest items are shown: on a host with a
    // dozen idle loop devices the real disks are what matters.
    const peak = data.slice(1).map((ys) => Math.max(-Infinity, ...ys.filter((v) => v != null).map(Math.abs)));
    const rank = new Map(items.map((s, i) => [i, i]).sort((a, b) => peak[b[0]] - peak[a[0]] || a[0] - b[0]).map(([i], r) => [i, r]));
    const shown = items.map((s, i) => choice.get(s.item) ?? rank.get(i) < SHOWN_ITEMS);
    const count = data.slice(1).reduce((n, ys) => n + ys.filter((v) => v != null).length, 0);
    const options = baseOptions(figure.querySelector("[data-canvas]"), span, unit, figure);
    options.series = [
      {},
      ...items.map((s, i) => ({
        label: s.item,
        stroke: colour(i),
        width: 1.6,
        show: shown[i],
        spanGaps: false,
        points: { show: count <= 40 * items.length, size: 4, fill: colour(i) },
        value: (u, v) => format(v, unit),
      })),
    ];
    const plot = mount(figure, options, data);
    const picker = figure.querySelector("[data-items]");
    const boxes = items.map((s, i) => {
      const label = document.createElement("label");
      label.className = "check item-check";
      const box = document.createElement("input");
      box.type = "checkbox";
      box.checked = shown[i];
      box.dataset.item = s.item;
      box.addEventListener("change", () => {
        choice.set(s.item, box.checked);
        plot.setSeries(i + 1, { show: box.checked });
      });
      const swatch = document.createElement("span");
      swatch.className = "swatch";
      swatch.style.background = colour(i); // CSSOM, not a style attribute: the CSP allows it
      const name = document.createElement("span");
      name.textContent = s.item;
      label.append(box, swatch, name);
      return label;
    });
    if (series.items_omitted) {
      const more = document.createElement("span");
      more.className = "muted small";
      more.textContent = `${series.items_omitted} more not shown`;
      boxes.push(more);
    }
    picker.replaceChildren(picker.querySelector("legend"), ...boxes);
    picker.hidden = items.length === 0;
    figure.dataset.items = String(items.length);
    figure.classList.toggle("wide", items.length > 4);
    finish(figure, count, items.length ? `${items.length} item${items.length === 1 ? "" : "s"}` : "");
  }

  /* -- state timelines ------------------------------------------------------------ */

  const SVG = "http://www.w3.org/2000/svg";
  const STATE_NAMES = { on: "yes", off: "no", mixed: "changed", none: "no data" };

  function stateOf(point) {
    if (!point.count || point.avg == null) return "none";
    if (point.min === point.max) return point.avg > 0 ? "on" : "off";
    return "mixed";
  }

  function clock(seconds) {
    return new Date(seconds * 1000).toLocaleString(undefined, { month: "short", day: "numeric", hour: "2-digit", minute: "2-digit" });
  }

  function timelineRow(name, points, span, step) {
    const from = span.start.getTime() / 1000;
    const to = span.end.getTime() / 1000;
    const width = 1000;
    const x = (t) => Math.min(width, Math.max(0, ((t - from) / (to - from)) * width));
    const row = document.createElement("div");
    row.className = "timeline-row";
    const label = document.createElement("span");
    label.className = "timeline-label";
    label.textContent = name;
    const svg = document.createElementNS(SVG, "svg");
    svg.setAttribute("viewBox", `0 0 ${width} 18`);
    svg.setAttribute("preserveAspectRatio", "none");
    svg.setAttribute("class", "timeline-bar");
    let run = null;
    const runs = [];
    for (const point of points) {
      const t = Date.parse(point.t) / 1000;
      const state = stateOf(point);
      if (run && run.state === state) run.end = t + step;
      else {
        run = { state, start: t, end: t + step };
        runs.push(run);
      }
    }
    for (const r of runs) {
      const rect = document.createElementNS(SVG, "rect");
      rect.setAttribute("x", String(x(r.start)));
      rect.setAttribute("width", String(Math.max(0.5, x(r.end) - x(r.start))));
      rect.setAttribute("y", "0");
      rect.setAttribute("height", "18");
      rect.setAttribute("class", `state-${r.state}`);
      const title = document.createElementNS(SVG, "title");
      title.textContent = `${STATE_NAMES[r.state]}: ${clock(r.start)} – ${clock(r.end)}`;
      rect.append(title);
      svg.append(rect);
    }
    row.append(label, svg);
    return { row, runs };
  }

  function drawTimeline(figure, series, span) {
    const box = figure.querySelector("[data-timeline]");
    const rows = series.items ? series.items.map((s) => [s.item, s.points]) : [["", series.points]];
    const built = rows.map(([name, points]) => timelineRow(name, points, span, series.step));
    const axis = document.createElement("div");
    axis.className = "timeline-axis small muted";
    const left = document.createElement("span");
    left.textContent = clock(span.start.getTime() / 1000);
    const right = document.createElement("span");
    right.textContent = clock(span.end.getTime() / 1000);
    axis.append(left, right);
    box.replaceChildren(...built.map((b) => b.row), axis);
    const count = rows.reduce((n, [, points]) => n + points.filter((p) => p.count).length, 0);
    const known = built.length === 1 ? built[0].runs.filter((r) => r.state !== "none") : [];
    const latest = known.length ? STATE_NAMES[known[known.length - 1].state] : built.length > 1 ? `${built.length} items` : "";
    finish(figure, count, latest);
  }

  // Whole minutes, or whole hours past an hour: the hub then answers from its
  // rollup tiers instead of scanning every stored document.
  function tierStep(step) {
    if (step >= 3600) return Math.ceil(step / 3600) * 3600;
    if (step >= 60) return Math.ceil(step / 60) * 60;
    return step;
  }

  let loading = 0;
  async function loadCharts() {
    if (!controls) return;
    const span = range();
    if (!span) return;
    const ticket = ++loading;
    const seconds = (span.end - span.start) / 1000;
    // Never finer than the collection interval: emptier buckets would read as gaps.
    const step = tierStep(Math.max(1, Math.ceil(seconds / POINTS), Math.ceil(interval)));
    const params = new URLSearchParams({ step: String(step), start: span.start.toISOString(), end: span.end.toISOString() });
    if (controls.host.value) params.set("host", controls.host.value);
    try {
      const query = new URLSearchParams({ plugin_id: pluginId, start: params.get("start"), end: params.get("end") });
      if (controls.host.value) query.set("host", controls.host.value);
      const found = await api("GET", `/api/alerts/periods?${query}`);
      if (ticket !== loading) return;
      periods = found.items;
    } catch {
      periods = []; // the charts still draw without the alert periods
    }
    const jobs = [...figures.map((f) => [f, "chart"]), ...timelines.map((f) => [f, "state"])];
    await Promise.all(
      jobs.map(async ([figure, what]) => {
        if (what === "chart" && !window.uPlot) return;
        try {
          const query = new URLSearchParams(params);
          query.set("field", figure.dataset.field);
          const series = await api("GET", `${base}/metrics?${query}`);
          if (ticket !== loading) return;
          if (what === "state") drawTimeline(figure, series, span);
          else if (figure.dataset.perItem === "true") drawItems(figure, series, span);
          else draw(figure, series, span);
        } catch (err) {
          figure.querySelector("[data-empty]").textContent = err.message;
          figure.querySelector("[data-empty]").hidden = false;
        }
      }),
    );
  }

  const localInput = (d) => new Date(d.getTime() - d.getTimezoneOffset() * 60000).toISOString().slice(0, 16);

  /* A notification's link (?at=...): the chart range centred on that time. */
  const focus = controls?.dataset.at ? new Date(controls.dataset.at) : null;
  if (focus && !Number.isNaN(focus.getTime())) {
    const half = FOCUS_SPAN / 2;
    controls.range.value = "custom";
    controls.start.value = localInput(new Date(focus.getTime() - half));
    controls.end.value = localInput(new Date(focus.getTime() + half));
    controls.querySelectorAll("[data-custom]").forEach((n) => (n.hidden = false));
  }

  if (controls) {
    controls.addEventListener("change", (event) => {
      const custom = controls.range.value === "custom";
      controls.querySelectorAll("[data-custom]").forEach((n) => (n.hidden = !custom));
      if (custom && event.target === controls.range && !controls.start.value) {
        const now = new Date();
        controls.start.value = localInput(new Date(now.getTime() - 6 * 3600 * 1000));
        controls.end.value = localInput(now);
      }
      loadCharts();
    });
    controls.addEventListener("submit", (event) => event.preventDefault());
    const resize = new ResizeObserver(() => {
      plots.forEach((plot, figure) => {
        const width = figure.querySelector("[data-canvas]").clientWidth;
        if (width && Math.abs(width - plot.width) > 2) plot.setSize({ width, height: HEIGHT });
      });
    });
    figures.forEach((figure) => resize.observe(figure));
    document.addEventListener("unity:theme", loadCharts);
    window.addEventListener("load", loadCharts);
    setInterval(() => {
      if (!document.hidden && controls.range.value !== "custom") loadCharts();
    }, 10000);
  }
})();
