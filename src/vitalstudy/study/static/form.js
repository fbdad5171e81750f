// Study form behaviour: screens, progress, consent, autosave and resume, submission with retries.
// Hosted (http/https): POST to the collection server (which stays the authority: a submission id is
// stored once however often it is sent), then its completion page. Opened from disk (file:): offer
// the response as a JSON download to send to the researchers.
// Every answer is saved in localStorage under the study, form version and participant id, so a
// reload or a closed tab resumes at the same screen with the earlier answers kept.
(function () {
  "use strict";
  var meta = JSON.parse(document.getElementById("vs-manifest").textContent);
  var form = document.getElementById("study");
  var pages = Array.prototype.slice.call(form.querySelectorAll(".page"));
  var status = document.getElementById("status");
  var zoom = document.getElementById("zoom");
  var hosted = /^https?:$/.test(window.location.protocol);
  var params = new URLSearchParams(window.location.search);
  var PID = /^[A-Za-z0-9_.@+-]{1,128}$/;
  var RETRY_MS = [1000, 2000, 4000, 8000, 16000];
  var prolific = null;
  ["PROLIFIC_PID", "STUDY_ID", "SESSION_ID"].forEach(function (k) {
    if (params.get(k)) { prolific = prolific || {}; prolific[k] = params.get(k); }
  });
  var pid = document.getElementById("participant_id");
  var given = (prolific && prolific.PROLIFIC_PID) || params.get("participant_id");
  if (given) { pid.value = given; pid.readOnly = true; }

  var state = {subset: meta.subset, current: 0, values: {}, timings: {}, startedAt: null, submissionId: null,
               submitted: null};
  var shownAt = Date.now(), sending = false;

  // ---------------------------------------------------------------- saving and restoring
  function storageKey() {
    return "vs-study:" + meta.study_id + ":" + meta.manifest_version + ":" + pid.value.trim();
  }
  function save() {
    if (!PID.test(pid.value.trim())) return;
    try { window.localStorage.setItem(storageKey(), JSON.stringify(state)); } catch (e) { /* private mode */ }
  }
  function saved() {
    if (!PID.test(pid.value.trim())) return null;
    try { return JSON.parse(window.localStorage.getItem(storageKey()) || "null"); } catch (e) { return null; }
  }
  function forget() {
    try { window.localStorage.removeItem(storageKey()); } catch (e) { /* nothing kept */ }
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
  function setValue(name, v) {
    var els = form.elements[name];
    if (!els) return;
    if (els.length !== undefined && !els.tagName) {
      for (var i = 0; i < els.length; i++) els[i].checked = els[i].value === v;
    } else if (els.type === "radio") { els.checked = els.value === v; } else { els.value = v; }
  }

  // Resume: answers back in their inputs, then the screen the participant was on.
  function restore() {
    var old = saved();
    if (!old || !(old.submitted || (old.current > 0 && old.subset === meta.subset))) return false;
    if (old.submitted && hosted) {
      window.location.replace("complete?submission=" + encodeURIComponent(old.submitted));
      return true;
    }
    state = old;
    Object.keys(state.values).forEach(function (n) { setValue(n, state.values[n]); });
    var agree = document.getElementById("consent_agree");
    if (agree && state.current > pageIndex("consent")) agree.checked = true;
    show(Math.min(state.current, pages.length - 1));
    return true;
  }

  function pageIndex(kind) {
    for (var i = 0; i < pages.length; i++) if (pages[i].getAttribute("data-kind") === kind) return i;
    return -1;
  }

  function show(index) {
    pages.forEach(function (p, i) { p.hidden = i !== index; });
    state.current = index; shownAt = Date.now(); status.textContent = "";
    save();
    window.scrollTo(0, 0);
  }

  // ---------------------------------------------------------------- answers
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
    if (page.contains(pid) && !PID.test(pid.value.trim())) {
      missing.unshift("your participant ID (letters, digits or _.@+- only)");
    }
    var agree = page.querySelector("#consent_agree");
    if (agree && !agree.checked) missing.unshift("the consent box (tick it to take part, or choose Decline)");
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
    if (!state.submissionId) { state.submissionId = uuid4(); save(); }  // kept, so every retry is the same submission
    return {
      format: meta.format, submission_id: state.submissionId, study_id: meta.study_id,
      manifest_version: meta.manifest_version, subset: meta.subset, participant_id: pid.value.trim(),
      prolific: prolific, started_at: state.startedAt, submitted_at: isoNow(), answers: answers(),
      timings_ms: state.timings
    };
  }

  // ---------------------------------------------------------------- endings
  function end(id, message) {
    form.hidden = true;
    var box = document.getElementById(id);
    box.hidden = false;
    box.querySelector("p").textContent = message;
    window.scrollTo(0, 0);
  }

  function download(data) {
    var blob = new Blob([JSON.stringify(data, null, 2)], {type: "application/json"});
    var a = document.createElement("a");
    a.href = URL.createObjectURL(blob);
    a.download = "response-" + data.submission_id + ".json";
    document.body.appendChild(a); a.click(); a.remove();
    end("done", "Your answers were saved as " + a.download + ". Please send this file to the researchers.");
  }

  function button(id, text, onclick) {
    var b = document.createElement("button");
    b.type = "button"; b.id = id; b.textContent = text; b.onclick = onclick;
    status.appendChild(b);
  }

  function offerDownload(data, message) {
    status.textContent = message + " ";
    button("retry", "Try again", function () { send(payload(), 0); });
    button("download", "Download answers", function () { download(data); });
  }

  function retryLater(attempt, why) {
    if (attempt >= RETRY_MS.length) {
      sending = false;
      offerDownload(payload(), why + " Your answers are kept on this device. Try again later, or");
      return;
    }
    var wait = RETRY_MS[attempt];
    status.textContent = why + " Trying again in " + Math.round(wait / 1000) + " s (attempt " + (attempt + 2) +
      " of " + (RETRY_MS.length + 1) + ")...";
    window.setTimeout(function () { send(payload(), attempt + 1); }, wait);
  }

  function send(data, attempt) {
    sending = true;
    status.textContent = attempt ? status.textContent : "Sending...";
    fetch("api/submit", {method: "POST", headers: {"Content-Type": "application/json"}, body: JSON.stringify(data)})
      .then(function (r) {
        if (r.ok) {
          state = {subset: meta.subset, submitted: data.submission_id, current: 0, values: {}, timings: {}};  // answers leave the device
          save();
          window.location.href = "complete?submission=" + encodeURIComponent(data.submission_id);
          return;
        }
        return r.json().catch(function () { return {}; }).then(function (body) {
          if (r.status === 408 || r.status === 429 || (r.status >= 500 && r.status !== 501)) {
            retryLater(attempt, "The server is busy (" + r.status + ")."); return;
          }
          sending = false;
          if (r.status === 409) status.textContent = body.error && /assigned/.test(body.error)
            ? "Not accepted: " + body.error : "This participant ID has already taken part.";
          else if (r.status === 400 || r.status === 413) status.textContent = "Not accepted: " + (body.error || r.status);
          else offerDownload(data, "The answers could not be stored here (" + r.status + "). Try again, or");
        });
      })
      .catch(function () { retryLater(attempt, "The server could not be reached."); });
  }

  function submit() {
    if (sending) return;
    var data = payload();
    if (!hosted) { download(data); return; }
    send(data, 0);
  }

  // The collection server decides the subset; a participant on another subset's page is sent on to
  // theirs. A static host has no /api/assign (404, 501): nothing to check there.
  function checkAssignment(then) {
    if (!hosted || !meta.subset) { then(); return; }
    fetch("api/assign", {method: "POST", headers: {"Content-Type": "application/json"},
                         body: JSON.stringify({participant_id: pid.value.trim()})})
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (body) {
        if (body && body.subset && body.subset !== meta.subset) {
          // their own page opens past the welcome screen they have just read
          state = {subset: body.subset, current: 1, values: {}, timings: {}, startedAt: isoNow(), submissionId: null};
          save();
          params.set("participant_id", pid.value.trim());
          window.location.replace(body.page + "?" + params.toString());
          return;
        }
        then();
      })
      .catch(function () { then(); });
  }

  function decline() {
    forget();
    if (hosted && meta.subset) {  // the assignment is all the server holds about this person: drop it
      fetch("api/decline", {method: "POST", headers: {"Content-Type": "application/json"},
                            body: JSON.stringify({participant_id: pid.value.trim()})}).catch(function () {});
    }
    var text = meta.declined;
    if (prolific) text += " On Prolific, please return the study.";
    end("declined", text);
  }

  // ---------------------------------------------------------------- events
  var known = {};
  meta.questions.forEach(function (q) { known[q.question_id] = true; });
  function record(e) {
    if (e.target.id === "consent_agree") status.textContent = "";
    var name = e.target.name || "";
    if (!name || name === "participant_id") return;
    var qid = name.split(":")[0];
    if (known[qid]) state.timings[qid] = Date.now() - shownAt;
    state.values[name] = value(name);
    status.textContent = "";
    save();
  }
  form.addEventListener("change", record);
  form.addEventListener("input", record);

  form.addEventListener("click", function (e) {
    var target = e.target.closest ? e.target.closest("[data-action], [data-zoom]") : null;
    if (!target) return;
    if (target.hasAttribute("data-zoom")) {
      var big = zoom.querySelector("img") || zoom.insertBefore(document.createElement("img"), zoom.firstChild);
      big.src = target.querySelector("img").src;
      big.alt = "enlarged " + target.querySelector("img").alt;
      zoom.showModal();
      return;
    }
    var action = target.getAttribute("data-action");
    e.preventDefault();
    if (action === "back") { show(state.current - 1); return; }
    if (action === "decline") { decline(); return; }
    var missing = missingOn(pages[state.current]);
    if (missing.length) { status.textContent = "Please answer: " + missing.join(", "); return; }
    if (state.current === 0) {
      if (given || !restore()) {
        checkAssignment(function () {
          if (!state.startedAt) state.startedAt = isoNow();
          if (action === "next") show(1); else submit();
        });
      }
      return;
    }
    if (action === "next") show(state.current + 1); else submit();
  });
  form.addEventListener("submit", function (e) { e.preventDefault(); });  // Enter in a text box
  zoom.addEventListener("click", function () { zoom.close(); });

  if (!(given && restore())) show(0);
})();
