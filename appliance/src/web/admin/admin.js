// The admin console's only script: refreshes the dashboard's numbers every 10 s from
// /api/v1/status, and its charts every minute. Every page works without it.
"use strict";
(function () {
  const tiles = document.getElementById("status");
  if (!tiles) return;
  async function refresh() {
    try {
      const answer = await fetch("/api/v1/status", { credentials: "same-origin" });
      if (!answer.ok) return;
      const status = await answer.json();
      for (const el of tiles.querySelectorAll("[data-stat]")) {
        const value = status.counters[el.dataset.stat] ?? status[el.dataset.stat];
        if (value !== undefined) el.textContent = String(value);
      }
    } catch (e) {
      /* offline for a moment: the next tick tries again */
    }
  }
  setInterval(refresh, 10000);
  // The charts are images: reloaded every minute (a new query defeats no-store caches
  // that some browsers keep for images anyway).
  setInterval(function () {
    for (const img of document.querySelectorAll(".charts img")) {
      img.src = img.src.split("?")[0] + "?t=" + Date.now();
    }
  }, 60000);
})();
