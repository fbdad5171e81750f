// Entry page: send the participant to their subset; they never choose one.
// Served by the collection server: the server assigns the least-filled subset (POST api/assign).
// Opened from disk or a static host (no api/assign): a keyed hash of the participant id picks it,
// the rule of the Python static_subset in study/assignment.py (balanced only in expectation).
(function () {
  "use strict";
  var cfg = JSON.parse(document.getElementById("vs-assign").textContent);
  var entry = document.getElementById("entry");
  var pid = document.getElementById("participant_id");
  var status = document.getElementById("status");
  var params = new URLSearchParams(window.location.search);
  var PID = /^[A-Za-z0-9_.@+-]{1,128}$/;
  var given = params.get("PROLIFIC_PID") || params.get("participant_id");

  function staticSubset(id) {
    var bytes = new TextEncoder().encode(cfg.salt + id.normalize("NFKC").trim().toLowerCase()), h = 0x811c9dc5;
    for (var i = 0; i < bytes.length; i++) h = Math.imul(h ^ bytes[i], 0x01000193) >>> 0;
    return cfg.subsets[h % cfg.subsets.length];
  }

  function go(page, id) {
    params.set("participant_id", id);
    window.location.replace(page + "?" + params.toString());
  }

  function start(id) {
    if (!PID.test(id)) { status.textContent = "Please enter your participant ID (letters, digits or _.@+- only)."; return; }
    if (!/^https?:$/.test(window.location.protocol)) { go("subset-" + staticSubset(id) + ".html", id); return; }
    status.textContent = "Starting...";
    fetch("api/assign", {method: "POST", headers: {"Content-Type": "application/json"},
                         body: JSON.stringify({participant_id: id})})
      .then(function (r) {
        if (r.ok) return r.json().then(function (body) { go(body.page, id); });
        if (r.status === 404 || r.status === 405 || r.status === 501) { go("subset-" + staticSubset(id) + ".html", id); return; }
        return r.json().catch(function () { return {}; }).then(function (body) {
          status.textContent = "Could not start: " + (body.error || r.status) + ". Please try again.";
        });
      })
      .catch(function () { status.textContent = "The server could not be reached. Please try again in a moment."; });
  }

  entry.addEventListener("submit", function (e) { e.preventDefault(); start(pid.value.trim()); });
  if (given) { pid.value = given; pid.readOnly = true; start(given.trim()); }
})();
