// Study form behaviour: paging, Prolific parameters, timings, and submission.
// Hosted (http/https): POST to the collection server, then its completion page.
// Opened from disk (file:): offer the response as a JSON download to send to the researchers.
(function () {
  "use strict";
  var meta = JSON.parse(document.getElementById("vs-manifest").textContent);
  var form = document.getElementById("study");
  var pages = Array.prototype.slice.call(form.querySelectorAll(".page"));
  var status = document.getElementById("status");
  var params = new URLSearchParams(window.location.search);
  var prolificKeys = ["PROLIFIC_PID", "STUDY_ID", "SESSION_ID"];
  var prolific = null;
  prolificKeys.forEach(function (k) {
    if (params.get(k)) { prolific = prolific || {}; prolific[k] = params.get(k); }
  });
  var pid = document.getElementById("participant_id");
  if (prolific && prolific.PROLIFIC_PID) { pid.value = prolific.PROLIFIC_PID; pid.readOnly = true; }

  var current = 0, shownAt = Date.now(), startedAt = null, timings = {}, submissionId = null;

  function show(index) {
    pages.forEach(function (p, i) { p.hidden = i !== index; });
    current = index; shownAt = Date.now(); status.textContent = "";
    window.scrollTo(0, 0);
  }

  function value(name) {
    var els = form.elements[name];
    if (!els) return "";
    if (els.length !== undefined && !els.tagName) {
      for (var i = 0; i < els.length; i++) if (els[i].checked) return els[i].value;
      return "";
    }
    if (els.type === "radio") return els.checked ? els.value : "";
    return els.value.trim();
  }

  // A question's main answer is named by its id; further fields (2AFC confidence) by "<id>:<field>".
  function names(q) {
    return q.fields.map(function (f, i) { return i === 0 ? q.question_id : q.question_id + ":" + f.field; });
  }

  function missingOn(page) {
    var ids = (page.getAttribute("data-questions") || "").split(" ").filter(Boolean);
    var missing = [];
    meta.questions.forEach(function (q) {
      if (ids.indexOf(q.question_id) < 0 || !q.required) return;
      if (names(q).some(function (n) { return value(n) === ""; })) missing.push(q.label);
    });
    if (page.contains(pid) && !/^[A-Za-z0-9_.@+-]{1,128}$/.test(pid.value.trim())) {
      missing.unshift("your participant ID (letters, digits or _.@+- only)");
    }
    return missing;
  }

  function answers() {
    var out = {};
    meta.questions.forEach(function (q) {
      if (q.type === "two_afc") {
        var n = names(q), choice = value(n[0]), conf = value(n[1]);
        if (choice && conf) out[q.question_id] = {choice: choice, confidence: parseInt(conf, 10)};
        return;
      }
      var v = value(q.question_id);
      if (v === "") return;
      out[q.question_id] = q.fields[0].kind === "likert" ? parseInt(v, 10) : v;
    });
    return out;
  }

  function uuid4() {
    if (window.crypto && crypto.randomUUID) return crypto.randomUUID();
    var b = crypto.getRandomValues(new Uint8Array(16));
    b[6] = (b[6] & 0x0f) | 0x40; b[8] = (b[8] & 0x3f) | 0x80;
    var h = Array.prototype.map.call(b, function (x) { return (x + 0x100).toString(16).slice(1); }).join("");
    return h.slice(0, 8) + "-" + h.slice(8, 12) + "-" + h.slice(12, 16) + "-" + h.slice(16, 20) + "-" + h.slice(20);
  }

  function isoNow() { return new Date().toISOString().replace(/\.\d{3}Z$/, "Z"); }

  function payload() {
    submissionId = submissionId || uuid4();
    return {
      format: meta.format, submission_id: submissionId, study_id: meta.study_id,
      manifest_version: meta.manifest_version, subset: meta.subset, participant_id: pid.value.trim(),
      prolific: prolific, started_at: startedAt, submitted_at: isoNow(), answers: answers(),
      timings_ms: timings
    };
  }

  function finish(message) {
    form.hidden = true;
    var done = document.getElementById("done");
    done.hidden = false;
    done.querySelector("p").textContent = message;
  }

  function download(data) {
    var blob = new Blob([JSON.stringify(data, null, 2)], {type: "application/json"});
    var a = document.createElement("a");
    a.href = URL.createObjectURL(blob);
    a.download = "response-" + data.submission_id + ".json";
    document.body.appendChild(a); a.click(); a.remove();
    finish("Your answers were saved as " + a.download + ". Please send this file to the researchers.");
  }

  function offerDownload(data, message) {
    status.textContent = message + " ";
    var b = document.createElement("button");
    b.type = "button"; b.textContent = "Download answers"; b.onclick = function () { download(data); };
    status.appendChild(b);
  }

  function submit() {
    var data = payload();
    if (!/^https?:$/.test(window.location.protocol)) { download(data); return; }
    status.textContent = "Sending...";
    fetch("api/submit", {method: "POST", headers: {"Content-Type": "application/json"}, body: JSON.stringify(data)})
      .then(function (r) {
        if (r.ok) { window.location.href = "complete?submission=" + encodeURIComponent(data.submission_id); return; }
        return r.json().catch(function () { return {}; }).then(function (body) {
          if (r.status === 409) status.textContent = "This participant ID has already taken part.";
          else if (r.status === 400 || r.status === 413) status.textContent = "Not accepted: " + (body.error || r.status);
          else offerDownload(data, "The answers could not be stored here (" + r.status + "). Try again, or");
        });
      })
      .catch(function () { offerDownload(data, "The server could not be reached. Try again, or"); });
  }

  var known = {};
  meta.questions.forEach(function (q) { known[q.question_id] = true; });
  form.addEventListener("change", function (e) {
    var qid = (e.target.name || "").split(":")[0];
    if (known[qid]) timings[qid] = Date.now() - shownAt;
  });

  form.addEventListener("click", function (e) {
    var action = e.target.getAttribute && e.target.getAttribute("data-action");
    if (!action) return;
    e.preventDefault();
    if (action === "back") { show(current - 1); return; }
    var missing = missingOn(pages[current]);
    if (missing.length) { status.textContent = "Please answer: " + missing.join(", "); return; }
    if (current === 0 && !startedAt) startedAt = isoNow();
    if (action === "next") show(current + 1); else submit();
  });

  show(0);
})();
