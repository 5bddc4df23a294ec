/* powercrud-async dashboard: live indicator, pause, selection, modal. htmx does the rest;
   everything here is an enhancement (pages read fine without it). */
(function () {
  "use strict";
  var PAUSE_KEY = "pca-live-paused";
  var lastUpdate = Date.now();
  var failed = false;

  function paused() {
    try { return window.localStorage.getItem(PAUSE_KEY) === "1"; } catch (e) { return false; }
  }
  function setPaused(value) {
    try { window.localStorage.setItem(PAUSE_KEY, value ? "1" : "0"); } catch (e) { /* private mode */ }
  }
  function selected() {
    return document.querySelectorAll('input[name="tasks"][form="pca-bulk"]:checked').length;
  }
  function confirming() {
    return !!document.querySelector("#pca-flash [data-pca-confirm]");
  }
  function menuOpen() {
    return !!document.querySelector("[data-pca-region] details.pca-menu[open]");
  }
  function navigating() {
    /* A keyboard user inside a live region would lose their place at every refresh. */
    var active = document.activeElement;
    return !!(active && active !== document.body && active.closest && active.closest("[data-pca-region]")
      && active.matches(":focus-visible"));
  }

  /* The filter every poller uses: one request per region, only when it can be seen and used. */
  window.pcaPoll = function () {
    return !document.hidden && !paused() && selected() === 0 && !confirming() && !menuOpen() && !navigating();
  };

  function ago(ms) {
    var s = Math.max(0, Math.round(ms / 1000));
    if (s < 2) return "just now";
    if (s < 60) return s + " s ago";
    return Math.floor(s / 60) + " min ago";
  }

  var lastState = "";
  function renderLive() {
    var live = document.querySelector("[data-pca-live]");
    if (!live) return;
    /* A region that stopped polling (a job that finished) has nothing live to report. */
    var region = document.querySelector(live.getAttribute("data-region") || "[data-pca-region]");
    live.hidden = !region || (region.getAttribute("hx-trigger") || "").indexOf("every") < 0;
    if (live.hidden) return;
    var text = live.querySelector("[data-pca-live-text]");
    var toggle = live.querySelector("[data-pca-live-toggle]");
    var status = live.querySelector("[data-pca-live-status]");
    var n = selected();
    var state, label;
    if (paused()) {
      state = "paused";
      label = "Paused · updated " + ago(Date.now() - lastUpdate);
    } else if (n > 0) {
      state = "held";
      label = "Paused while " + n + (n === 1 ? " job is" : " jobs are") + " selected";
    } else if (confirming() || menuOpen()) {
      state = "held";
      label = "Paused while you choose";
    } else if (navigating()) {
      state = "held";
      label = "Paused while you move through the list";
    } else if (failed) {
      state = "stale";
      label = "Stale · refresh failed, last updated " + ago(Date.now() - lastUpdate);
    } else {
      state = "live";
      label = "Live · updated " + ago(Date.now() - lastUpdate);
    }
    live.setAttribute("data-state", state);
    text.textContent = label;
    toggle.textContent = paused() ? "Resume" : "Pause";
    toggle.setAttribute("aria-pressed", paused() ? "true" : "false");
    if (state !== lastState) {
      status.textContent = state === "live" ? "Live updates on" : label;
      lastState = state;
    }
  }

  function refreshNow() {
    if (window.htmx) window.htmx.trigger(document.body, "pca-refresh");
  }

  function matchingInput() {
    return document.querySelector('#pca-bulk input[name="matching"]');
  }
  function updateSelection() {
    var n = selected();
    var out = document.querySelector("[data-pca-selected]");
    var boxCount = document.querySelectorAll('input[name="tasks"][form="pca-bulk"]').length;
    var wide = document.querySelector("[data-pca-select-matching]");
    var matching = matchingInput();
    if (matching && n < boxCount) { matching.remove(); matching = null; }
    if (wide) {
      wide.hidden = !(n > 0 && n === boxCount);
      wide.textContent = matching ? "Select only this page" : wide.getAttribute("data-label") || wide.textContent;
      if (!wide.hasAttribute("data-label")) wide.setAttribute("data-label", wide.textContent);
    }
    if (out) out.textContent = matching ? "All " + wide.getAttribute("data-count") + " matching selected" : n + " selected";
    /* Offer only what applies to the selection, with how many jobs it applies to. */
    var chosen = document.querySelectorAll('input[name="tasks"][form="pca-bulk"]:checked');
    document.querySelectorAll("[data-pca-bulk]").forEach(function (b) {
      var name = b.getAttribute("data-pca-bulk");
      if (!b.hasAttribute("data-label")) b.setAttribute("data-label", b.textContent);
      var fits = Array.prototype.filter.call(chosen, function (box) {
        return !box.hasAttribute("data-actions") || (" " + box.getAttribute("data-actions") + " ").indexOf(" " + name + " ") >= 0;
      }).length;
      b.disabled = fits === 0;
      b.hidden = n > 0 && fits === 0;
      b.textContent = b.getAttribute("data-label") + (n > 0 && fits < n && !matching ? " (" + fits + ")" : "");
    });
    /* The header's box, and the bulk bar's for phones, where the header is folded away. */
    var boxes = document.querySelectorAll('input[name="tasks"][form="pca-bulk"]');
    document.querySelectorAll("[data-pca-select-all]").forEach(function (all) {
      all.checked = boxes.length > 0 && n === boxes.length;
      all.indeterminate = n > 0 && n < boxes.length;
    });
    renderLive();
  }

  document.addEventListener("change", function (event) {
    var t = event.target;
    if (t.matches && t.matches("[data-pca-select-all]")) {
      document.querySelectorAll('input[name="tasks"][form="pca-bulk"]').forEach(function (b) { b.checked = t.checked; });
    }
    if (t.matches && (t.matches("[data-pca-select-all]") || t.matches('input[name="tasks"]'))) updateSelection();
  });

  document.addEventListener("click", function (event) {
    var toggle = event.target.closest && event.target.closest("[data-pca-live-toggle]");
    if (toggle) {
      setPaused(!paused());
      renderLive();
      if (!paused()) refreshNow();
      return;
    }
    var wide = event.target.closest && event.target.closest("[data-pca-select-matching]");
    if (wide) {
      var current = matchingInput();
      if (current) {
        current.remove();
      } else {
        var input = document.createElement("input");
        input.type = "hidden";
        input.name = "matching";
        input.value = wide.getAttribute("data-query");
        document.getElementById("pca-bulk").appendChild(input);
      }
      updateSelection();
      return;
    }
    var dismiss = event.target.closest && event.target.closest("[data-pca-dismiss]");
    if (dismiss) {
      event.preventDefault();
      var flash = document.getElementById("pca-flash");
      if (flash) flash.innerHTML = "";
      renderLive();
      return;
    }
    document.querySelectorAll("details.pca-menu[open]").forEach(function (menu) {
      if (!menu.contains(event.target)) menu.removeAttribute("open");
    });
  });

  /* Choosing an item of a ⋯ menu closes it. */
  document.addEventListener("submit", function (event) {
    var menu = event.target.closest && event.target.closest("details.pca-menu");
    if (menu) menu.removeAttribute("open");
  }, true);

  /* Keyboard shortcuts (listed on the "?" overlay). Never while typing in a field. */
  function typing(target) {
    return !!(target && target.closest && target.closest("input, textarea, select, [contenteditable]"));
  }
  function rowLinks() {
    return Array.prototype.slice.call(document.querySelectorAll("#pca-results tbody tr .pca-job-link"));
  }
  function currentRow() {
    var active = document.activeElement;
    return active && active.closest ? active.closest("#pca-results tbody tr") : null;
  }
  function moveRow(step) {
    var links = rowLinks();
    if (!links.length) return;
    var row = currentRow();
    var index = row ? links.indexOf(row.querySelector(".pca-job-link")) : -1;
    var next = links[Math.max(0, Math.min(links.length - 1, index < 0 ? 0 : index + step))];
    next.focus();
    next.scrollIntoView({block: "nearest"});
  }
  function shortcut(event) {
    if (event.ctrlKey || event.metaKey || event.altKey || typing(event.target)) return false;
    var keys = document.getElementById("pca-keys");
    if (event.key === "?") {
      if (keys && !keys.open && keys.showModal) keys.showModal();
      return true;
    }
    if (keys && keys.open) return false;
    if (event.key === "/") {
      var box = document.querySelector("#pca-q, #pca-stream-q, .pca-filters input[type=search]");
      if (box) { box.focus(); box.select(); return true; }
      return false;
    }
    if (event.key === "j" || event.key === "k") { moveRow(event.key === "j" ? 1 : -1); return true; }
    var row = currentRow();
    if (event.key === "x" && row) {
      var box2 = row.querySelector('input[type=checkbox][name="tasks"]');
      if (box2) { box2.click(); return true; }
    }
    if (event.key === "r") {
      var scope = row || document.getElementById("pca-detail-body");
      var retry = scope && scope.querySelector('button[name="action"][value="retry"]');
      if (retry) { retry.click(); return true; }
    }
    return false;
  }
  document.addEventListener("keydown", function (event) {
    if (shortcut(event)) event.preventDefault();
  });

  /* Copy a job id; density of the list, remembered. */
  var DENSE_KEY = "pca-dense";
  function dense() {
    try { return window.localStorage.getItem(DENSE_KEY) === "1"; } catch (e) { return false; }
  }
  function applyDensity() {
    document.body.classList.toggle("pca-dense", dense());
    document.querySelectorAll("[data-pca-density]").forEach(function (b) {
      b.hidden = false;
      b.setAttribute("aria-pressed", dense() ? "true" : "false");
      b.textContent = dense() ? "Comfortable rows" : "Compact rows";
    });
    document.querySelectorAll("[data-pca-copy]").forEach(function (b) {
      b.hidden = !(navigator.clipboard && window.isSecureContext);
    });
    var keysOpen = document.querySelector("[data-pca-keys-open]");
    if (keysOpen) keysOpen.hidden = false;
  }
  document.addEventListener("click", function (event) {
    var t = event.target.closest ? event.target : null;
    if (!t) return;
    var copy = t.closest("[data-pca-copy]");
    if (copy) {
      navigator.clipboard.writeText(copy.getAttribute("data-pca-copy")).then(function () {
        copy.textContent = "Copied";
        copy.setAttribute("data-copied", "");
      });
      return;
    }
    var density = t.closest("[data-pca-density]");
    if (density) {
      try { window.localStorage.setItem(DENSE_KEY, dense() ? "0" : "1"); } catch (e) { /* private mode */ }
      applyDensity();
      return;
    }
    var keysButton = t.closest("[data-pca-keys-open]");
    if (keysButton) {
      var dialog = document.getElementById("pca-keys");
      if (dialog && dialog.showModal) dialog.showModal();
    }
  });
  document.addEventListener("htmx:afterSettle", applyDensity);
  document.addEventListener("DOMContentLoaded", applyDensity);

  document.addEventListener("keydown", function (event) {
    if (event.key !== "Escape") return;
    document.querySelectorAll("details.pca-menu[open]").forEach(function (menu) {
      menu.removeAttribute("open");
      var summary = menu.querySelector("summary");
      if (summary) summary.focus();
    });
  });

  document.addEventListener("toggle", function () { renderLive(); }, true);

  document.addEventListener("visibilitychange", function () {
    var ms = parseInt(document.body.getAttribute("data-refresh-ms") || "0", 10);
    if (!document.hidden && ms && Date.now() - lastUpdate > ms && window.pcaPoll()) refreshNow();
  });

  document.addEventListener("htmx:afterSwap", function (event) {
    var target = event.detail && event.detail.target;
    if (!target) return;
    if (target.id === "pca-modal-body") {
      var dialog = document.getElementById("pca-modal");
      if (dialog && !dialog.open && dialog.showModal) dialog.showModal();
    }
    if (target.id === "pca-flash" && !target.querySelector("[data-pca-confirm]")) {
      document.querySelectorAll('input[name="tasks"][form="pca-bulk"]:checked').forEach(function (b) { b.checked = false; });
    }
  });

  /* A region replaces itself (outerHTML), so its request may be reported on an element that is
     no longer in the page: judge by the request's target, which is the region. */
  function regionRequest(event) {
    var d = event.detail || {};
    var elt = d.target || d.elt;
    return !!(elt && elt.hasAttribute && elt.hasAttribute("data-pca-region"));
  }
  document.addEventListener("htmx:afterRequest", function (event) {
    if (!regionRequest(event)) return;
    if (event.detail.successful) {
      lastUpdate = Date.now();
      failed = false;
    } else {
      failed = true;
    }
    renderLive();
  });
  document.addEventListener("htmx:sendError", function (event) {
    if (regionRequest(event)) { failed = true; renderLive(); }
  });

  /* A chip, sort or page link clicked before the search box's delayed request went out still
     carries the words typed so far, so the list always matches the box and the URL. */
  document.addEventListener("htmx:configRequest", function (event) {
    var elt = event.detail.elt;
    var box = document.getElementById("pca-q");
    if (!box || !elt || elt.tagName !== "A" || !elt.closest("#pca-results")) return;
    var url = new URL(event.detail.path, window.location.href);
    if ((url.searchParams.get("q") || "") === box.value.trim()) return;
    if (box.value.trim()) url.searchParams.set("q", box.value.trim()); else url.searchParams.delete("q");
    url.searchParams.delete("page");
    event.detail.path = url.pathname + url.search;
  });

  /* A refresh replaces the region: what the reader had unfolded stays unfolded. */
  var keptOpen = [];
  document.addEventListener("htmx:beforeSwap", function (event) {
    var target = event.detail && event.detail.target;
    if (!target || !target.querySelectorAll) return;
    keptOpen = Array.prototype.map.call(target.querySelectorAll("details[data-pca-keep-open][open]"),
      function (d) { return d.id; });
  });
  document.addEventListener("htmx:afterSwap", function () {
    keptOpen.forEach(function (id) {
      var d = document.getElementById(id);
      if (d) d.open = true;
    });
    keptOpen = [];
  });

  document.addEventListener("htmx:afterSettle", function () { updateSelection(); });

  document.addEventListener("close", function (event) {
    if (event.target && event.target.id === "pca-modal") {
      var body = document.getElementById("pca-modal-body");
      if (body) body.innerHTML = "";
    }
  }, true);

  document.addEventListener("DOMContentLoaded", function () {
    lastUpdate = Date.now();
    /* Small screens: fold the less used filters unless one of them is in use. */
    var more = document.querySelector("[data-pca-more]");
    if (more && !more.hasAttribute("data-active") && window.matchMedia("(max-width: 640px)").matches) {
      more.open = false;
    }
    updateSelection();
    window.setInterval(renderLive, 1000);
  });
})();
