/* Applies the saved theme before the page paints (no flash); app.js wires the toggle. */
(function () {
  "use strict";
  try {
    var saved = localStorage.getItem("unity-theme");
    if (saved === "light" || saved === "dark") document.documentElement.dataset.theme = saved;
  } catch (e) { /* storage disabled: follow the system */ }
})();
