// Live progress on the jobs page: while a run is going, ask for the latest runs every two seconds.
(function () {
  "use strict";
  var table = document.getElementById("job-runs");
  if (!table) { return; }
  var url = table.getAttribute("data-status-url");
  // Just asked to run: follow for a while even before the run's row appears.
  var patience = table.getAttribute("data-follow") ? 15 : 0;

  function running() { return table.querySelector(".state-running") !== null; }

  function refresh() {
    fetch(url, { credentials: "same-origin", headers: { "Accept": "application/json" } })
      .then(function (r) { return r.ok ? r.json() : []; })
      .then(function (runs) {
        var body = table.querySelector("tbody");
        runs.slice().reverse().forEach(function (run) {
          var row = body.querySelector('tr[data-run="' + run.run_id + '"]');
          if (!row) {
            row = document.createElement("tr");
            row.setAttribute("data-run", run.run_id);
            ["id", "job", "started", "finished", "state", "rows", "error"].forEach(function (name) {
              var cell = document.createElement("td");
              cell.className = name === "finished" ? "finished" : (name === "state" ? "state" :
                (name === "rows" ? "number rows" : ""));
              row.appendChild(cell);
            });
            row.children[0].textContent = run.run_id;
            row.children[1].textContent = run.job;
            row.children[2].textContent = run.started_at;
            body.insertBefore(row, body.firstChild);
          }
          row.querySelector(".finished").textContent = run.finished_at || "";
          var state = row.querySelector(".state");
          state.textContent = run.status;
          state.className = "state state-" + run.status;
          row.querySelector(".rows").textContent = run.rows === null ? "" : run.rows;
        });
        patience -= 1;
        if (running() || patience > 0) { window.setTimeout(refresh, 2000); }
      });
  }

  if (running() || patience > 0) { window.setTimeout(refresh, 2000); }
})();
