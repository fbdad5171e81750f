// Interpreter for STUDY (generated above): builds pages and items with FormApp, and assigns
// participants to parts (doGet) so that they never choose one.
var HOLD_MS = STUDY.hold_seconds * 1000;  // an assigned participant who has not submitted by then frees the place

function buildForm() {
  var folder = DriveApp.getFolderById(STIMULI_FOLDER_ID);
  var form = FormApp.create(STUDY.title).setDescription(STUDY.description)
    .setCollectEmail(false).setProgressBar(true);
  var pidItem = form.addTextItem().setTitle(STUDY.participant_item).setRequired(true);

  function image(name) {
    var files = folder.getFilesByName(name);
    if (!files.hasNext()) throw new Error('stimulus ' + name + ' is not in the Drive folder');
    return files.next().getBlob();
  }

  function addItem(item) {
    if (item.kind === 'image') {
      form.addImageItem().setImage(image(item.file)).setTitle(item.title);
    } else if (item.kind === 'scale') {
      form.addScaleItem().setTitle(item.title).setBounds(item.min, item.max)
        .setLabels(item.low, item.high).setRequired(item.required);
    } else if (item.kind === 'text') {
      form.addTextItem().setTitle(item.title).setRequired(item.required);
    } else {
      form.addMultipleChoiceItem().setTitle(item.title).setChoiceValues(item.options)
        .setRequired(item.required);
    }
  }

  function addPage(page) {
    var brk = form.addPageBreakItem().setTitle(page.title).setHelpText(page.help);
    page.items.forEach(addItem);
    return brk;
  }

  STUDY.shared.forEach(addPage);
  var subsets = Object.keys(STUDY.branches);
  var chooser = subsets.length ? form.addMultipleChoiceItem().setTitle(STUDY.subset_item).setRequired(true) : null;
  var firstPages = subsets.map(function (s) { return STUDY.branches[s].map(addPage)[0]; });
  var tailPages = STUDY.tail.map(addPage);
  if (chooser) {
    chooser.setChoices(subsets.map(function (s, i) { return chooser.createChoice(s, firstPages[i]); }));
    // A page break's target applies on reaching it linearly, i.e. at the end of the page before it:
    // the end of subset i-1 must skip subsets i.. and go on to the demographics (or submit).
    var after = tailPages.length ? tailPages[0] : FormApp.PageNavigationType.SUBMIT;
    firstPages.slice(1).forEach(function (p) { p.setGoToPage(after); });
  }
  PropertiesService.getScriptProperties().setProperties({
    FORM_ID: form.getId(), PARTICIPANT_ITEM_ID: String(pidItem.getId()),
    SUBSET_ITEM_ID: chooser ? String(chooser.getId()) : '', ASSIGNMENT_KEY: Utilities.getUuid()
  });
  Logger.log('Form: ' + form.getEditUrl() + ' - now deploy this project as a web app (see the top of this file)');
}

// ---------------------------------------------------------------- balanced assignment (web app)
// The rule of the collection server (study/assignment.py): a new participant id gets the least-filled part, where a
// part's fill is its submitted responses plus participants assigned less than HOLD_MS ago who have
// not submitted; ties are broken by an HMAC of the id under a key this project keeps secret (made by
// buildForm). The same id always gets the same part back.

function normaliseId(id) { return String(id).normalize('NFKC').trim().toLowerCase(); }

function leastFilled(fill, order) {
  var low = Math.min.apply(null, order.map(function (s) { return fill[s]; }));
  return order.filter(function (s) { return fill[s] === low; })[0];
}

function tieOrder(key, pid, subsets) {
  function mac(s) {
    return Utilities.computeHmacSha256Signature(pid + '\u0000' + s, key)
      .map(function (b) { return ('0' + (b & 0xff).toString(16)).slice(-2); }).join('');
  }
  var macs = {};
  subsets.forEach(function (s) { macs[s] = mac(s); });
  return subsets.slice().sort(function (a, b) { return macs[a] < macs[b] ? -1 : macs[a] > macs[b] ? 1 : 0; });
}

function assignSubset(participantId, now) {
  var props = PropertiesService.getScriptProperties();
  var lock = LockService.getScriptLock();
  lock.waitLock(30000);
  try {
    var pid = normaliseId(participantId), held = 'assigned:' + pid;
    var known = props.getProperty(held);
    if (known) {
      props.setProperty(held, known.split('|')[0] + '|' + now);
      return known.split('|')[0];
    }
    var subsets = Object.keys(STUDY.branches), fill = {}, submitted = {};
    subsets.forEach(function (s) { fill[s] = 0; });
    FormApp.openById(props.getProperty('FORM_ID')).getResponses().forEach(function (response) {
      var who = null, part = null;
      response.getItemResponses().forEach(function (r) {
        var title = r.getItem().getTitle();
        if (title === STUDY.participant_item) who = normaliseId(r.getResponse());
        if (title === STUDY.subset_item) part = r.getResponse();
      });
      if (part in fill) fill[part] += 1;
      if (who) submitted[who] = part;
    });
    var all = props.getProperties();
    Object.keys(all).forEach(function (name) {
      if (name.indexOf('assigned:') !== 0 || submitted[name.slice(9)] !== undefined) return;
      var parts = all[name].split('|');
      if (now - Number(parts[1]) < HOLD_MS && parts[0] in fill) fill[parts[0]] += 1;
    });
    var subset = submitted[pid] in fill ? submitted[pid]
      : leastFilled(fill, tieOrder(props.getProperty('ASSIGNMENT_KEY'), pid, subsets));
    props.setProperty(held, subset + '|' + now);
    return subset;
  } finally {
    lock.releaseLock();
  }
}

// GET <web app URL>?PROLIFIC_PID=... (or ?participant_id=...): the participant's part, then the
// form pre-filled with their id and part. Without an id: a page asking for it.
function doGet(e) {
  var params = (e && e.parameter) || {};
  var pid = String(params.PROLIFIC_PID || params.participant_id || '').trim();
  if (!/^[A-Za-z0-9_.@+-]{1,128}$/.test(pid)) {
    return HtmlService.createHtmlOutput('<form method="get" target="_top"><p><label>Participant ID ' +
      '<input name="participant_id" maxlength="128" autocomplete="off"></label></p>' +
      '<p><button type="submit">Start</button></p></form>').setTitle(STUDY.title);
  }
  var props = PropertiesService.getScriptProperties();
  var form = FormApp.openById(props.getProperty('FORM_ID'));
  var response = form.createResponse().withItemResponse(
    form.getItemById(Number(props.getProperty('PARTICIPANT_ITEM_ID'))).asTextItem().createResponse(pid));
  if (props.getProperty('SUBSET_ITEM_ID')) {
    response = response.withItemResponse(form.getItemById(Number(props.getProperty('SUBSET_ITEM_ID')))
      .asMultipleChoiceItem().createResponse(assignSubset(pid, Date.now())));
  }
  var url = response.toPrefilledUrl();
  return HtmlService.createHtmlOutput('<p><a href="' + url.replace(/"/g, '&quot;') + '" target="_top">' +
    'Start the study</a></p><script>window.top.location.href = ' + JSON.stringify(url) + ';</script>')
    .setTitle(STUDY.title);
}
