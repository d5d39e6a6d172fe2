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
  const plots = new Map();
  const POINTS = 240;

  function css(name) {
    return getComputedStyle(document.documentElement).getPropertyValue(name).trim();
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

  function format(value, unit, precision) {
    if (value == null || Number.isNaN(value)) return "—";
    if (unit === "bytes" || unit === "bytes/s") {
      const units = ["B", "KiB", "MiB", "GiB", "TiB"];
      let n = Math.abs(value);
      let i = 0;
      while (n >= 1024 && i < units.length - 1) {
        n /= 1024;
        i += 1;
      }
      return `${(Math.sign(value) * n).toFixed(i ? 1 : 0)} ${units[i]}${unit.endsWith("/s") ? "/s" : ""}`;
    }
    const digits = precision ?? (Math.abs(value) >= 100 ? 0 : Math.abs(value) >= 10 ? 1 : 2);
    const text = value.toLocaleString(undefined, { maximumFractionDigits: digits });
    if (!unit || unit === "count") return text;
    return unit === "%" ? `${text}%` : `${text} ${unit}`;
  }

  /* Columns for uPlot: time, average, min, max; counters become a rate per second. */
  function columns(points, counter) {
    const t = points.map((p) => Date.parse(p.t) / 1000);
    const pick = (key) => points.map((p) => p[key]);
    if (!counter) return [t, pick("avg"), pick("min"), pick("max")];
    const rate = points.map((p, i) => {
      if (i === 0 || p.avg == null || points[i - 1].avg == null) return null;
      const dv = p.avg - points[i - 1].avg;
      const dt = t[i] - t[i - 1];
      return dv >= 0 && dt > 0 ? dv / dt : null;
    });
    return [t, rate, rate, rate];
  }

  function draw(figure, data, span) {
    const canvas = figure.querySelector("[data-canvas]");
    canvas.hidden = false;
    const unit = figure.dataset.kind === "counter" && figure.dataset.unit ? `${figure.dataset.unit}/s` : figure.dataset.unit;
    const accent = css("--accent");
    const axis = { stroke: css("--muted"), grid: { stroke: css("--chart-grid") }, ticks: { stroke: css("--chart-grid") } };
    const narrow = canvas.clientWidth < 420;
    const count = data[1].filter((v) => v != null).length;
    const options = {
      width: Math.max(200, canvas.clientWidth),
      height: 170,
      legend: { show: false },
      cursor: { drag: { x: false, y: false } },
      scales: { x: { time: true, range: () => [span.start.getTime() / 1000, span.end.getTime() / 1000] } },
      axes: [
        { ...axis, space: narrow ? 80 : 60 },
        {
          ...axis,
          values: (u, ticks) => {
            // Enough decimals that neighbouring ticks never read the same.
            const gap = ticks.length > 1 ? Math.abs(ticks[1] - ticks[0]) : 1;
            const precision = gap > 0 ? Math.min(4, Math.max(0, -Math.floor(Math.log10(gap)))) : 0;
            return ticks.map((v) => format(v, unit, precision));
          },
          size: (u, values) => 18 + 7.5 * Math.max(4, ...(values || []).map((v) => String(v).length)),
        },
      ],
      series: [
        {},
        { label: "average", stroke: accent, width: 2, points: { show: count <= 40, size: 5, fill: accent }, value: (u, v) => format(v, unit) },
        { label: "min", stroke: "transparent", points: { show: false } },
        { label: "max", stroke: "transparent", points: { show: false } },
      ],
      bands: [{ series: [3, 2], fill: faded(accent, 0.16) }],
    };
    plots.get(figure)?.destroy();
    canvas.replaceChildren();
    const plot = new window.uPlot(options, data, canvas);
    plots.set(figure, plot);
    figure.dataset.points = String(count);
    figure.querySelector("[data-empty]").hidden = count > 0;
    canvas.hidden = count === 0;
    const last = [...data[1]].reverse().find((v) => v != null);
    figure.querySelector("[data-latest]").textContent = last == null ? "" : format(last, unit);
  }

  let loading = 0;
  async function loadCharts() {
    if (!controls || !window.uPlot) return;
    const span = range();
    if (!span) return;
    const ticket = ++loading;
    const seconds = (span.end - span.start) / 1000;
    const step = Math.max(1, Math.ceil(seconds / POINTS));
    const params = new URLSearchParams({ step: String(step), start: span.start.toISOString(), end: span.end.toISOString() });
    if (controls.host.value) params.set("host", controls.host.value);
    await Promise.all(
      figures.map(async (figure) => {
        try {
          const query = new URLSearchParams(params);
          query.set("field", figure.dataset.field);
          const series = await api("GET", `${base}/metrics?${query}`);
          if (ticket !== loading) return;
          draw(figure, columns(series.points, figure.dataset.kind === "counter"), span);
        } catch (err) {
          figure.querySelector("[data-empty]").textContent = err.message;
          figure.querySelector("[data-empty]").hidden = false;
        }
      }),
    );
  }

  if (controls) {
    controls.addEventListener("change", (event) => {
      const custom = controls.range.value === "custom";
      controls.querySelectorAll("[data-custom]").forEach((n) => (n.hidden = !custom));
      if (custom && event.target === controls.range && !controls.start.value) {
        const now = new Date();
        const local = (d) => new Date(d.getTime() - d.getTimezoneOffset() * 60000).toISOString().slice(0, 16);
        controls.start.value = local(new Date(now.getTime() - 6 * 3600 * 1000));
        controls.end.value = local(now);
      }
      loadCharts();
    });
    controls.addEventListener("submit", (event) => event.preventDefault());
    const resize = new ResizeObserver(() => {
      plots.forEach((plot, figure) => {
        const width = figure.querySelector("[data-canvas]").clientWidth;
        if (width && Math.abs(width - plot.width) > 2) plot.setSize({ width, height: 170 });
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
