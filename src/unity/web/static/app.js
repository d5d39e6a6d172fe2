/* Unity dashboard: behaviour shared by every page. Plain ES2020, no build step.
 *
 * - api(): calls the hub's JSON API with the session cookie and the CSRF header.
 * - Live regions ([data-live-src]) poll an HTML fragment and patch the changed
 *   [data-live] parts in place, announcing state changes to screen readers.
 * - [data-api] buttons and [data-api-form] forms call the API, show field errors
 *   next to their fields and refresh the page's content without a reload.
 */
(() => {
  "use strict";

  const csrf = document.querySelector('meta[name="csrf-token"]')?.content || "";

  class ApiFailure extends Error {
    constructor(status, message, details) {
      super(message);
      this.status = status;
      this.details = details;
    }
  }

  function goLogin() {
    location.assign("/login?next=" + encodeURIComponent(location.pathname + location.search));
  }

  async function api(method, url, body) {
    const headers = { Accept: "application/json" };
    if (csrf) headers["X-CSRF-Token"] = csrf;
    const init = { method, headers, credentials: "same-origin" };
    if (body !== undefined) {
      headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    let res;
    try {
      res = await fetch(url, init);
    } catch (err) {
      throw new ApiFailure(0, "The hub did not answer. Is it running?");
    }
    if (res.status === 401) {
      goLogin();
      throw new ApiFailure(401, "Your session ended: log in again.");
    }
    let data = null;
    if (res.status !== 204) {
      const text = await res.text();
      try {
        data = text ? JSON.parse(text) : null;
      } catch (err) {
        data = text;
      }
    }
    if (!res.ok) {
      const error = (data && data.error) || {};
      throw new ApiFailure(res.status, error.message || `${res.status} ${res.statusText}`, error.details);
    }
    return data;
  }

  function toast(message, kind = "info") {
    const box = document.getElementById("toasts");
    if (!box) return;
    const item = document.createElement("div");
    item.className = `toast ${kind}`;
    item.textContent = message;
    box.append(item);
    setTimeout(() => item.remove(), kind === "error" ? 9000 : 5000);
  }

  function announce(text) {
    const node = document.getElementById("announcer");
    if (node) node.textContent = text;
  }

  function fail(err) {
    toast(err && err.message ? err.message : String(err), "error");
  }

  /* -- dialogs ------------------------------------------------------------- */

  function dialog(build) {
    return new Promise((resolve) => {
      const node = document.createElement("dialog");
      node.className = "dialog";
      const form = document.createElement("form");
      form.method = "dialog";
      form.className = "stack";
      node.append(form);
      build(form);
      document.body.append(node);
      node.addEventListener("close", () => {
        resolve(node.returnValue);
        node.remove();
      });
      node.showModal();
    });
  }

  function confirmDialog(message, action = "Confirm", danger = true) {
    return dialog((form) => {
      const text = document.createElement("p");
      text.textContent = message;
      const buttons = document.createElement("div");
      buttons.className = "form-actions";
      const go = document.createElement("button");
      go.value = "yes";
      go.className = `button ${danger ? "danger" : "primary"}`;
      go.textContent = action;
      const cancel = document.createElement("button");
      cancel.value = "no";
      cancel.className = "button ghost";
      cancel.textContent = "Cancel";
      buttons.append(go, cancel);
      form.append(text, buttons);
      setTimeout(() => cancel.focus(), 0);
    }).then((value) => value === "yes");
  }

  async function copy(text, input) {
    try {
      await navigator.clipboard.writeText(text);
      return true;
    } catch (err) {
      input.select();
      return document.execCommand && document.execCommand("copy");
    }
  }

  function showOnce(title, value, note) {
    return dialog((form) => {
      const heading = document.createElement("h2");
      heading.textContent = title;
      const warn = document.createElement("p");
      warn.className = "alert warning";
      warn.textContent = note;
      const input = document.createElement("input");
      input.readOnly = true;
      input.value = value;
      input.className = "once-value";
      input.setAttribute("aria-label", title);
      input.dataset.onceValue = "";
      const buttons = document.createElement("div");
      buttons.className = "form-actions";
      const copyButton = document.createElement("button");
      copyButton.type = "button";
      copyButton.className = "button primary";
      copyButton.textContent = "Copy";
      copyButton.addEventListener("click", async () => {
        copyButton.textContent = (await copy(value, input)) ? "Copied" : "Select and copy";
      });
      const close = document.createElement("button");
      close.value = "close";
      close.className = "button ghost";
      close.textContent = "Done";
      buttons.append(copyButton, close);
      form.append(heading, warn, input, buttons);
      setTimeout(() => input.select(), 0);
    });
  }

  /* -- live regions ------------------------------------------------------- */

  function keysOf(root) {
    return [...root.querySelectorAll("[data-key]")].map((n) => n.dataset.key).join("\n");
  }

  function statesOf(root) {
    const states = new Map();
    root.querySelectorAll("[data-state-of]").forEach((n) => states.set(n.dataset.stateOf, n.dataset.state));
    return states;
  }

  function morph(region, html) {
    const fresh = document.createElement("template");
    fresh.innerHTML = html;
    const before = statesOf(region);
    if (keysOf(region) !== keysOf(fresh.content)) {
      region.replaceChildren(fresh.content);
    } else {
      fresh.content.querySelectorAll("[data-live]").forEach((node) => {
        const old = region.querySelector(`[data-live="${CSS.escape(node.dataset.live)}"]`);
        if (old && old.outerHTML !== node.outerHTML) old.replaceWith(node);
      });
    }
    const changes = [];
    statesOf(region).forEach((state, name) => {
      if (before.has(name) && before.get(name) !== state) changes.push(`${name} is now ${state}`);
    });
    if (changes.length) announce(changes.join(". "));
    region.dispatchEvent(new CustomEvent("unity:live", { bubbles: true }));
  }

  function startLive(region) {
    const every = Number(region.dataset.liveEvery || 5000);
    let busy = false;
    async function refresh() {
      if (busy) return;
      busy = true;
      try {
        const res = await fetch(region.dataset.liveSrc, { headers: { Accept: "text/html" }, credentials: "same-origin" });
        if (res.status === 401) return goLogin();
        if (res.ok) morph(region, await res.text());
      } catch (err) {
        /* The hub may be restarting: the next poll tries again. */
      } finally {
        busy = false;
      }
    }
    region.refreshLive = refresh;
    const timer = setInterval(() => {
      if (!region.isConnected) clearInterval(timer);
      else if (!document.hidden) refresh();
    }, every);
    document.addEventListener("visibilitychange", () => {
      if (!document.hidden && region.isConnected) refresh();
    });
  }

  /* -- refreshing the page's content after a change --------------------------- */

  async function refreshMain() {
    const res = await fetch(location.href, { headers: { Accept: "text/html" }, credentials: "same-origin" });
    if (res.redirected && new URL(res.url).pathname === "/login") return goLogin();
    const doc = new DOMParser().parseFromString(await res.text(), "text/html");
    const fresh = doc.querySelector("main");
    const main = document.querySelector("main");
    if (!fresh || !main) return;
    const focused = document.activeElement && document.activeElement.id;
    main.replaceChildren(...fresh.childNodes);
    initialise(main);
    if (focused && document.getElementById(focused)) document.getElementById(focused).focus();
  }

  /* -- forms: values and field errors --------------------------------------- */

  function clearErrors(form) {
    form.querySelectorAll("[data-error-for]").forEach((n) => {
      n.hidden = true;
      n.textContent = "";
    });
    form.querySelectorAll('[aria-invalid="true"]').forEach((n) => n.removeAttribute("aria-invalid"));
    const general = form.querySelector("[data-form-error]");
    if (general) {
      general.hidden = true;
      general.textContent = "";
    }
  }

  /* Shows each {loc, msg} next to the field its loc names; the rest at the top. */
  function showErrors(form, err) {
    clearErrors(form);
    const details = Array.isArray(err.details) ? err.details : [];
    const loose = [];
    let first = null;
    for (const detail of details) {
      const loc = (detail.loc || []).map(String);
      const index = loc.findIndex((part) => form.querySelector(`[data-error-for="${CSS.escape(part)}"]`));
      if (index < 0) {
        loose.push(loc.length ? `${loc.join(".")}: ${detail.msg}` : detail.msg);
        continue;
      }
      const name = loc[index];
      const target = form.querySelector(`[data-error-for="${CSS.escape(name)}"]`);
      const rest = loc.slice(index + 1).join(".");
      const message = rest ? `${rest}: ${detail.msg}` : detail.msg;
      target.textContent = target.textContent ? `${target.textContent}; ${message}` : message;
      target.hidden = false;
      const input = form.querySelector(`[name="${CSS.escape(name)}"]`);
      if (input) {
        input.setAttribute("aria-invalid", "true");
        first = first || input;
      }
    }
    const general = form.querySelector("[data-form-error]");
    if (!details.length || loose.length) {
      const text = loose.length ? `${err.message}: ${loose.join("; ")}` : err.message;
      if (general) {
        general.textContent = text;
        general.hidden = false;
      } else {
        toast(text, "error");
      }
    }
    (first || general || form).focus?.();
  }

  function visible(node) {
    return !node.closest("[hidden]");
  }

  /* A dotted name ("matchers.host") fills a nested object. */
  function put(body, name, value) {
    const path = name.split(".");
    let node = body;
    for (const key of path.slice(0, -1)) node = node[key] = node[key] || {};
    node[path[path.length - 1]] = value;
  }

  function formValues(form) {
    const body = {};
    for (const input of form.querySelectorAll("input[name], select[name], textarea[name]")) {
      if (!visible(input) || input.type === "submit") continue;
      const type = input.dataset.type || "string";
      if (type === "boolean") {
        if (input.checked) put(body, input.name, true);
        continue;
      }
      const raw = input.value.trim();
      if (raw === "") {
        if (input.dataset.empty === "null") put(body, input.name, null);
        continue;
      }
      if (type === "integer" || type === "number") {
        put(body, input.name, Number.isNaN(Number(raw)) ? raw : Number(raw));
      } else if (type === "json") {
        /* Sent as typed when it is not JSON: the API's 422 then names the field. */
        try {
          put(body, input.name, JSON.parse(raw));
        } catch (err) {
          put(body, input.name, raw);
        }
      } else if (type === "datetime") {
        put(body, input.name, new Date(raw).toISOString());
      } else {
        put(body, input.name, input.type === "password" || input.tagName === "TEXTAREA" ? input.value : raw);
      }
    }
    return body;
  }

  async function busy(button, work) {
    if (button) {
      button.disabled = true;
      button.setAttribute("aria-busy", "true");
    }
    try {
      return await work();
    } finally {
      if (button && button.isConnected) {
        button.disabled = false;
        button.removeAttribute("aria-busy");
      }
    }
  }

  function fill(template, data) {
    return template.replace(/\{(\w+)\}/g, (_, key) => (data && data[key] != null ? data[key] : ""));
  }

  /* -- event delegation: works for content swapped in later too ------------------- */

  document.addEventListener("click", async (event) => {
    const button = event.target.closest("[data-api]");
    if (!button || button.disabled) return;
    event.preventDefault();
    if (button.dataset.confirm && !(await confirmDialog(button.dataset.confirm, button.textContent.trim()))) return;
    const [method, url] = button.dataset.api.split(" ");
    const body = button.dataset.body ? JSON.parse(button.dataset.body) : undefined;
    await busy(button, async () => {
      try {
        const data = await api(method, url, body);
        toast(fill(button.dataset.done || "Done", data));
        /* A button whose change removes the page itself (a host) goes elsewhere. */
        if (button.dataset.then) location.assign(button.dataset.then);
        else await refreshMain();
      } catch (err) {
        fail(err);
      }
    });
  });

  document.addEventListener("submit", async (event) => {
    const form = event.target.closest("[data-api-form]");
    if (!form) return;
    event.preventDefault();
    const [method, url] = form.dataset.apiForm.split(" ");
    const submit = event.submitter || form.querySelector('[type="submit"]');
    await busy(submit, async () => {
      try {
        const data = await api(method, url, formValues(form));
        clearErrors(form);
        toast(form.dataset.done || "Saved");
        const field = form.dataset.revealField;
        if (field && data && data[field]) {
          await showOnce("Copy it now", data[field], "This is the only time it is shown. Store it where the external plugin can read it.");
        }
        await refreshMain();
      } catch (err) {
        if (err.status === 422 || err.status === 409) showErrors(form, err);
        else fail(err);
      }
    });
  });

  /* Servers: install or remove a stored SSH key in a server's authorized_keys. */
  document.addEventListener("submit", async (event) => {
    const form = event.target.closest("[data-key-form]");
    if (!form) return;
    event.preventDefault();
    const server = encodeURIComponent(form.dataset.keyForm);
    const credential = form.querySelector('[name="credential"]').value;
    const remove = event.submitter && event.submitter.value === "remove";
    if (remove && !(await confirmDialog(`Remove the key ${credential} from ${form.dataset.keyForm}'s authorized_keys?`, "Remove"))) return;
    await busy(event.submitter, async () => {
      try {
        const result = remove
          ? await api("DELETE", `/api/servers/${server}/authorized-keys/${encodeURIComponent(credential)}`)
          : await api("POST", `/api/servers/${server}/authorized-keys`, { credential });
        toast(result.changed ? `Done: ${result.path} changed (backup ${result.backup || "none"})` : "Nothing to change");
        await refreshMain();
      } catch (err) {
        fail(err);
      }
    });
  });

  /* Credentials: reveal after a confirmation, audited by the API. */
  document.addEventListener("click", (event) => {
    const button = event.target.closest("[data-reveal]");
    if (!button || button.disabled) return;
    const box = document.getElementById("reveal-dialog");
    const name = button.dataset.reveal;
    box.querySelector("[data-reveal-name]").textContent = name;
    box.querySelector("[data-reveal-confirm]").hidden = false;
    box.querySelector("[data-reveal-output]").hidden = true;
    box.querySelector("[data-reveal-values]").replaceChildren();
    const go = box.querySelector("[data-reveal-go]");
    go.hidden = false;
    go.onclick = () =>
      busy(go, async () => {
        try {
          const data = await api("POST", `/api/credentials/${encodeURIComponent(name)}/reveal`);
          const list = box.querySelector("[data-reveal-values]");
          for (const [key, value] of Object.entries(data.secret)) {
            const dt = document.createElement("dt");
            dt.textContent = key;
            const dd = document.createElement("dd");
            const area = document.createElement("textarea");
            area.readOnly = true;
            area.rows = value.includes("\n") ? 6 : 1;
            area.value = value;
            area.setAttribute("aria-label", key);
            dd.append(area);
            list.append(dt, dd);
          }
          box.querySelector("[data-reveal-confirm]").hidden = true;
          box.querySelector("[data-reveal-output]").hidden = false;
          go.hidden = true;
        } catch (err) {
          fail(err);
        }
      });
    box.addEventListener("close", () => box.querySelector("[data-reveal-values]").replaceChildren(), { once: true });
    box.showModal();
  });

  /* -- theme -------------------------------------------------------------------- */

  const darkQuery = window.matchMedia("(prefers-color-scheme: dark)");

  function effectiveTheme() {
    return document.documentElement.dataset.theme || (darkQuery.matches ? "dark" : "light");
  }

  function syncThemeButton() {
    const button = document.querySelector("[data-theme-toggle]");
    if (button) button.setAttribute("aria-pressed", String(effectiveTheme() === "dark"));
  }

  document.addEventListener("click", (event) => {
    if (!event.target.closest("[data-theme-toggle]")) return;
    const next = effectiveTheme() === "dark" ? "light" : "dark";
    document.documentElement.dataset.theme = next;
    try {
      localStorage.setItem("unity-theme", next);
    } catch (err) {
      /* Not saved: the choice lasts for this page. */
    }
    syncThemeButton();
    document.dispatchEvent(new CustomEvent("unity:theme"));
  });
  darkQuery.addEventListener("change", () => {
    syncThemeButton();
    document.dispatchEvent(new CustomEvent("unity:theme"));
  });

  /* -- page set-up --------------------------------------------------------------- */

  function initFilter(form) {
    const list = document.querySelector("[data-filter-list]");
    if (!list) return;
    form.querySelectorAll("[data-no-js]").forEach((n) => (n.hidden = true));
    const count = document.querySelector("[data-filter-count]");
    const emptyNote = document.querySelector("[data-filter-empty]");
    const total = list.children.length;
    function apply() {
      const q = form.q.value.trim().toLowerCase();
      const category = form.category.value;
      let shown = 0;
      for (const item of list.children) {
        const match = (!category || item.dataset.category === category) && (!q || item.dataset.search.includes(q));
        item.hidden = !match;
        shown += match ? 1 : 0;
      }
      if (count) count.textContent = `${shown} of ${count.textContent.split(" of ")[1] || total + " plugins"}`;
      if (emptyNote) emptyNote.hidden = shown > 0;
      const params = new URLSearchParams();
      if (q) params.set("q", form.q.value.trim());
      if (category) params.set("category", category);
      history.replaceState(null, "", params.toString() ? `?${params}` : location.pathname);
    }
    form.addEventListener("input", apply);
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      apply();
    });
  }

  function initKindForm(form) {
    const select = form.querySelector("[data-kind-select]");
    function apply() {
      form.querySelectorAll("[data-for-kinds]").forEach((field) => {
        field.hidden = !field.dataset.forKinds.split(" ").includes(select.value);
      });
    }
    select.addEventListener("change", apply);
    apply();
  }

  function initialise(root) {
    root.querySelectorAll("[data-live-src]").forEach(startLive);
    root.querySelectorAll("[data-filter-form]").forEach(initFilter);
    root.querySelectorAll("[data-kind-form]").forEach(initKindForm);
  }

  window.Unity = { api, toast, announce, fail, busy, showErrors, clearErrors, refreshMain, ApiFailure };
  syncThemeButton();
  initialise(document);
})();
