// Interpreter for STUDY (generated above): builds pages and items with FormApp.
function buildForm() {
  var folder = DriveApp.getFolderById(STIMULI_FOLDER_ID);
  var form = FormApp.create(STUDY.title).setDescription(STUDY.description)
    .setCollectEmail(false).setProgressBar(true);
  form.addTextItem().setTitle(STUDY.participant_item).setRequired(true);

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
  Logger.log('Form: ' + form.getEditUrl());
}
