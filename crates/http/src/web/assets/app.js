// Lacuna web UI: the only script. Progressive enhancement only — every page works without it.
// Served from /assets/app.js under a CSP that forbids inline script.
(function () {
  "use strict";

  // Search as you type: fetch the server-rendered result fragment and swap it in.
  function searchAsYouType(input) {
    var url = input.getAttribute("data-search-url");
    var target = document.getElementById(input.getAttribute("data-search-target"));
    if (!url || !target) return;
    var timer = null;
    var seq = 0;
    input.addEventListener("input", function () {
      clearTimeout(timer);
      timer = setTimeout(function () {
        var mine = ++seq;
        var q = input.value.trim();
        fetch(url + "?q=" + encodeURIComponent(q), {
          credentials: "same-origin",
          headers: { "Accept": "text/html" }
        })
          .then(function (r) {
            if (r.redirected || r.status === 401) { window.location.reload(); return null; }
            return r.ok ? r.text() : null;
          })
          .then(function (html) {
            if (html !== null && mine === seq) {
              target.innerHTML = html;
              target.setAttribute("data-query", q);
            }
          })
          .catch(function () { /* keep the last results */ });
      }, 180);
    });
  }

  // Toolbars with data-autosubmit apply a changed select or date at once.
  function autosubmit(form) {
    form.addEventListener("change", function (e) {
      if (e.target && (e.target.tagName === "SELECT" || e.target.type === "date")) form.submit();
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    Array.prototype.forEach.call(document.querySelectorAll("[data-search-url]"), searchAsYouType);
    Array.prototype.forEach.call(document.querySelectorAll("form[data-autosubmit]"), autosubmit);
  });
})();
