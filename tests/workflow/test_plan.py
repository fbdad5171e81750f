"""The workflow's planning (vitalstudy.workflow), tested without Snakemake on the shipped configs,
and the rule files checked to only declare."""

import json
import re
from collections import Counter
from pathlib import Path
from types import SimpleNamespace as Wildcards

import pytest
import yaml

from vitalstudy.config import validate
from vitalstudy.fv.registry import get_method
from vitalstudy.fv.settings import runs_kind
from vitalstudy.models import get_spec
from vitalstudy.workflow import PlanError, WorkflowPlan

REPO = Path(__file__).resolve().parents[2]
RULE_FILES = sorted((REPO / "workflow" / "rules").glob("*.smk")) + [REPO / "Snakefile"]
# Python that is logic rather than declaration: definitions, loops, comprehensions.
LOGIC = re.compile(r"^\s*(def|class|for|while)\b|\bfor\s+\w[\w, ]*\s+in\b|\blambda\b")


def plan_of(name: str, **overrides) -> WorkflowPlan:
    config = yaml.safe_load((REPO / "config" / f"{name}.yaml").read_text())
    config.update(overrides)
    return WorkflowPlan(validate(config, check_paths=False), cores=2, spec_root=REPO / "study")


@pytest.fixture(scope="module")
def demo():
    return plan_of("config")


@pytest.fixture(scope="module")
def full():
    """The full demo (six classes, a circuit, accentuations) under the demo's run name."""
    return plan_of("demo-full", run="demo")


@pytest.fixture(scope="module")
def paper():
    return plan_of("paper")


def test_rule_files_only_declare():
    """No def, loop or comprehension in a rule file; common.smk alone may hold a lambda (Snakemake's
    checkpoint lookup, handed to the plan)."""
    found = []
    for path in RULE_FILES:
        for number, line in enumerate(path.read_text().splitlines(), 1):
            code = re.sub(r'"[^"]*"|\'[^\']*\'|#.*', "", line)  # strings and comments are not logic
            if LOGIC.search(code) and not (path.name == "common.smk" and "lambda" in code and "for" not in code):
                found.append(f"{path.name}:{number}: {line.strip()}")
    assert not found, "logic in rule files (move it to vitalstudy.workflow):\n" + "\n".join(found)


def test_demo_jobs_run_the_kinds_each_method_runs(demo):
    classes = demo.config["targets"]["classes"]
    by_method = {}
    for job in demo.generation_jobs:
        by_method.setdefault(job.method, []).extend(job.targets)
        assert len(job.targets) <= demo.config["generate"]["targets_per_job"]
        assert job.record == f"results/demo/02_fv/{job.model}/{job.method}/_jobs/seed{job.seed}-b{job.batch}.json"
    assert list(by_method) == ["vital", "vital_lrp", "fourier", "maco", "deepinversion"]
    neurons = [f"head_c{c}" for c in demo.config["targets"]["neurons"][0]["channels"]]
    assert by_method.pop("deepinversion") == classes  # DeepInversion serves class targets only
    # generate.target_kinds: each VITAL runs the kind of the paper's table it stands in (1 and 3)
    assert by_method.pop("vital") == classes and by_method.pop("vital_lrp") == neurons
    assert all(targets == classes + neurons for targets in by_method.values())  # Fourier, MACO: both tables
    assert demo.model_threads == 2 and demo.gpu == 1  # device auto: model jobs declare a GPU (from the config)


def test_fv_records_are_looked_up_and_missing_ones_named(demo):
    job = demo.generation_jobs[0]
    fvs = [(job.model, job.method, t, job.seed) for t in job.targets]
    assert demo.fv_records(fvs, "test") == [job.record]
    with pytest.raises(PlanError, match="figure needs efficientnet_lite0/vital/n01440764 seed 7, which no generation"):
        demo.fv_records([("efficientnet_lite0", "vital", "n01440764", 7)], "figure")


def test_job_inputs_settings_and_outputs(full):
    wc = Wildcards(model="efficientnet_lite0", method="vital", seed="0", batch="000")
    assert full.generation_inputs(wc) == ["results/demo/01_references/efficientnet_lite0/_jobs/b000.json"]
    maco = Wildcards(model="efficientnet_lite0", method="maco", seed="0", batch="000")
    assert full.generation_inputs(maco) == ["results/demo/02_fv/_assets/maco_spectrum_224.npz"]
    assert full.generation_inputs(Wildcards(**{**vars(maco), "method": "fourier"})) == []
    settings = json.loads(full.generation_config(maco))["generate"]
    assert set(settings) == {"batch_size", "checkpoint_every", "mixed_precision", "maco"}
    outputs = full.all_outputs()
    assert len(outputs) == len(set(outputs))
    assert "results/demo/03_metrics/tables/table1.csv" in outputs
    assert "results/demo/06_figures/efficientnet_lite0/circuits.png" in outputs
    assert "results/demo/05_responses/demo/text_similarity.csv" in outputs
    assert set(full.generation_outputs()) <= set(outputs)


def test_metrics_and_study_inputs_are_job_records(demo):
    records = demo.metrics_fv_records(Wildcards(model="efficientnet_lite0"))
    assert records == sorted(j.record for j in demo.generation_jobs)
    files = demo.study_files(Wildcards(study="demo"))
    assert any(f.endswith("_jobs/seed0-b000.json") for f in files)
    assert not any(f.endswith(".png") for f in files)  # the FVs themselves are replaced by their jobs
    assert "results/demo/00_index/images.csv" in files or any("01_references" in f for f in files)


def test_reference_jobs_batch_each_models_targets(full):
    """One selection job per references.targets_per_job targets of a model (not one per target);
    later stages depend on the record of the job that selects a target's references."""
    [job] = full.reference_jobs
    assert job.targets == tuple(full.targets_of("efficientnet_lite0"))
    assert job.record == "results/demo/01_references/efficientnet_lite0/_jobs/b000.json"
    assert full.references_outputs() == [job.record]
    wc = Wildcards(model="efficientnet_lite0", batch="000")
    assert full.selection_targets_arg(wc) == " ".join(job.targets)
    neurons = [t for t in job.targets if t.startswith("head_c")]
    assert neurons and full.patch_scores(wc) == ["results/demo/01_references/efficientnet_lite0/_patch_scores/head.npz"]
    assert full.patch_scores_option(wc) == "--patch-scores head=results/demo/01_references/efficientnet_lite0/_patch_scores/head.npz"
    assert full.neuron_references(Wildcards(model="efficientnet_lite0")) == [job.record]
    with pytest.raises(PlanError, match="figure needs the references of efficientnet_lite0/n01440764, which no"):
        full.reference_records("efficientnet_lite0", ["n01440764"], "figure")

    small = plan_of("demo-full", run="demo", references={**full.config["references"], "targets_per_job": 3})
    assert [len(j.targets) for j in small.reference_jobs] == [3, 3, 2]
    assert [j.batch for j in small.reference_jobs] == ["000", "001", "002"]
    assert [t for j in small.reference_jobs for t in j.targets] == list(job.targets)
    assert small.patch_scores(Wildcards(model="efficientnet_lite0", batch="000")) == []  # classes only
    first, last = small.reference_jobs[0], small.reference_jobs[-1]
    generation = Wildcards(model="efficientnet_lite0", method="vital", seed="0", batch="000")
    assert small.generation_inputs(generation) == sorted(j.record for j in small.reference_jobs)
    assert small.neuron_references(Wildcards(model="efficientnet_lite0")) == [last.record] != [first.record]


def test_accentuations_read_the_records_of_their_targets_references(demo):
    """An accentuated target's class or neuron is selected by a reference job even when it is not
    itself a target (n01440764 here), and the accentuation jobs depend on that job's record."""
    config = json.loads(json.dumps(demo.config))
    config["targets"]["accentuations"] = [{"image": "skimage_chelsea", "target": "n07920052"},
                                          {"image": "skimage_coffee", "target": "n01440764"}]
    config["generate"]["methods"] += ["vital_accentuation"]
    config["references"]["targets_per_job"] = 4
    plan = WorkflowPlan(config, spec_root=REPO / "study")
    selected = [t for j in plan.reference_jobs for t in j.targets]
    assert selected == plan.targets_of("efficientnet_lite0") + ["n01440764"]
    records = {t: j.record for j in plan.reference_jobs for t in j.targets}
    wc = Wildcards(model="efficientnet_lite0", method="vital_accentuation")
    assert plan.accentuation_references(wc) == [records["n07920052"], records["n01440764"]]
    assert plan.accentuation_metrics_references(wc) == sorted({records["n07920052"], records["n01440764"]})


def test_paper_reference_jobs_cover_every_target_once(paper):
    size = paper.config["references"]["targets_per_job"]
    for model in paper.models:
        jobs = [j for j in paper.reference_jobs if j.model == model]
        targets = [t for j in jobs for t in j.targets]
        assert targets == paper.targets_of(model) and len(set(targets)) == len(targets)
        assert len(jobs) == -(-len(targets) // size) and all(len(j.targets) <= size for j in jobs)
    assert len(paper.reference_jobs) < 100  # the paper's ~5000 targets in ~50 jobs


def test_circuits_read_the_checkpoint(full, tmp_path):
    circuit = tmp_path / "c.json"
    circuit.write_text(json.dumps({"channels": [{"target": "head_c7"}, {"target": "head_c9"}]}))
    plan = WorkflowPlan(full.config, circuit_file=lambda model, wnid: circuit, spec_root=REPO / "study")
    assert {j.method for j in plan.circuit_jobs} == {"vital", "vital_lrp", "fourier", "maco"}  # the neuron-serving ones
    wc = Wildcards(model="efficientnet_lite0", method="vital", seed="0", wnid="n07920052")
    assert plan.circuit_job_targets_arg(wc) == "head_c7 head_c9"
    # VITAL reads the channels' references, selected by the circuit's own job (of the same targets)
    assert plan.circuit_generation_inputs(wc) == ["results/demo/01_references/efficientnet_lite0/_jobs/circuit-n07920052.json"]
    selection = Wildcards(model="efficientnet_lite0", wnid="n07920052")
    assert plan.selection_targets_arg(selection) == "head_c7 head_c9"
    assert plan.patch_scores(selection) == ["results/demo/01_references/efficientnet_lite0/_patch_scores/head.npz"]
    assert plan.circuit_references(selection) == ["results/demo/01_references/efficientnet_lite0/_jobs/b000.json"]
    assert plan.circuit_references_file(selection) == "results/demo/01_references/efficientnet_lite0/n07920052.json"
    maco = Wildcards(**{**vars(wc), "method": "maco"})
    assert plan.circuit_generation_inputs(maco) == ["results/demo/02_fv/_assets/maco_spectrum_224.npz"]
    assert plan.circuit_methods_arg(wc) == "vital vital_lrp fourier maco"


def test_sample_plan_gives_inner_neurons_to_the_methods_that_serve_them():
    sample = plan_of("sample")
    classes = sample.config["targets"]["classes"]
    by_method = {}
    for job in sample.generation_jobs:
        by_method.setdefault(job.method, []).extend(job.targets)
    neurons = [t for t in by_method["vital"] if t not in classes]
    assert neurons and by_method["fourier"] == by_method["maco"] == classes + neurons
    assert by_method["deepinversion"] == classes  # class logits only
    assert by_method["vital_lrp"] == neurons  # the paper's Table 3 VITAL (generate.target_kinds)
    assert Counter(j.method for j in sample.generation_jobs)["vital"] == 2  # 20 classes + 3 neurons, 16 per job


def test_paper_plan_skips_what_a_model_cannot_run(paper, capsys):
    WorkflowPlan(paper.config, spec_root=REPO / "study")
    notes = capsys.readouterr().err
    for model in paper.models:
        spec = get_spec(model)
        methods = {j.method for j in paper.generation_jobs if j.model == model}
        for method in paper.config["generate"]["methods"]:
            reason = get_method(method).unavailable_on(spec)
            its_targets = [t for kind, of_kind in paper.targets_by_kind(model).items()
                           if runs_kind(paper.config["generate"], method, kind) for t in of_kind]
            assert (method in methods) == (reason is None and bool(its_targets)), (model, method)
            if reason:
                assert f"note: {method} skipped for {model}: {reason}" in notes
    seen = Counter((j.model, j.method, j.seed, t) for j in paper.generation_jobs for t in j.targets)
    assert set(seen.values()) == {1}  # every FV has exactly one writer
    assert len(paper.figures_outputs()) == len(set(paper.figures_outputs()))


def test_target_kinds_narrow_jobs_circuits_grids_and_planned_images():
    """One key decides what a method runs: its jobs, its circuits, the grids' rows and the images
    metrics expect all follow generate.target_kinds, and widening it back restores them."""
    from vitalstudy.metrics.images import planned_images
    from vitalstudy.targets import class_targets, neuron_targets

    def runs(plan):
        config, model = plan.config, "efficientnet_lite0"
        keys = planned_images(config["generate"], get_spec(model), class_targets(config, model),
                              neuron_targets(config, model))
        return ({t for j in plan.generation_jobs if j.method == "vital" for t in j.targets},
                {t for j in plan.generation_jobs if j.method == "fourier" for t in j.targets},
                {j.method for j in plan.circuit_jobs}, plan.grid_methods("classes"), plan.grid_methods("neurons"),
                {k.target for k in keys if k.method == "vital"})

    base = yaml.safe_load((REPO / "config" / "demo-full.yaml").read_text())
    classes = set(base["targets"]["classes"])
    neurons = {f"head_c{c}" for c in base["targets"]["neurons"][0]["channels"]}
    narrowed = dict(base, generate={**base["generate"], "target_kinds": {"vital": ["neuron"], "fourier": ["class"]}})
    vital, fourier, circuit_methods, class_rows, neuron_rows, vital_images = runs(plan_of("demo-full", **narrowed))
    assert vital == vital_images == neurons and fourier == classes
    assert circuit_methods == {"vital", "vital_lrp", "maco"}  # circuits are inner neurons: Fourier no longer runs them
    assert "vital" not in class_rows and "fourier" in class_rows and "deepinversion" not in neuron_rows
    assert "accentuation" not in class_rows + neuron_rows  # accentuations have their own figure
    widened = dict(base, generate={**base["generate"], "target_kinds": {}})
    vital, fourier, circuit_methods, class_rows, neuron_rows, vital_images = runs(plan_of("demo-full", **widened))
    assert vital == fourier == vital_images == classes | neurons and "vital_lrp" in class_rows
    assert circuit_methods == {"vital", "vital_lrp", "fourier", "maco"}


def test_responses_options_come_from_the_config(demo):
    study = Wildcards(study="demo")
    assert demo.held_out_options(study) == "--held-out-model efficientnet_lite2"
    assert demo.simulated_export(study) == ["results/demo/05_responses/demo/simulated/google_forms_export.csv"]
    assert demo.encoder_handle_option(study) == ""
    config = {**demo.config, "models": {**demo.config["models"], "weights": {"efficientnet_lite2": "/w dir/l2.pth"}}}
    plan = WorkflowPlan(config, spec_root=REPO / "study")
    assert plan.held_out_options(study) == "--held-out-model efficientnet_lite2 --held-out-weights '/w dir/l2.pth'"


def test_model_jobs_read_their_own_model_alone(demo):
    """A job that loads one model gets that model's declaration, weight file and sha256 only: swapping
    another model's weight file re-runs none of its jobs; swapping its own re-runs them."""
    lite0 = Wildcards(model="efficientnet_lite0", method="vital", seed="0", batch="000")
    models = json.loads(demo.generation_config(lite0))["models"]
    assert set(models["assets"]) == {"efficientnet_lite0"} and models["weights"] == models["declare"] == {}
    assets = demo.config["models"]["assets"]
    swapped = {**assets, "efficientnet_lite2": {"/w/l2.pth": "0" * 64}}
    other = WorkflowPlan({**demo.config, "models": {**demo.config["models"], "assets": swapped}}, spec_root=REPO / "study")
    assert other.generation_config(lite0) == demo.generation_config(lite0)
    assert other.held_out_models(Wildcards(study="demo")) != demo.held_out_models(Wildcards(study="demo"))
    own = WorkflowPlan({**demo.config, "models": {**demo.config["models"], "assets": {
        **assets, "efficientnet_lite0": {"/w/l0.pth": "1" * 64}}}}, spec_root=REPO / "study")
    assert own.generation_config(lite0) != demo.generation_config(lite0)
    assert own.references_config(lite0) != demo.references_config(lite0)
    assert other.references_config(lite0) == demo.references_config(lite0)
    study = json.loads(demo.study_models(Wildcards(study="demo")))
    assert set(study["assets"]) <= {"efficientnet_lite0", "efficientnet_lite2"} and len(study["assets"]) == 1


def test_a_study_still_collecting_gets_forms_and_report_but_no_figures(demo, tmp_path):
    import shutil

    (tmp_path / "demo").mkdir()
    shutil.copy(REPO / "study" / "demo" / "study.yaml", tmp_path / "demo")
    config = {**demo.config, "study": {**demo.config["study"], "simulate": {"participants": 0, "seed": 0}}}
    collecting = WorkflowPlan(config, spec_root=tmp_path)
    outputs = collecting.all_outputs()
    assert "results/demo/05_responses/demo/validation_report.json" in outputs
    assert not any("06_figures/demo/" in f for f in outputs)
    assert any("06_figures/efficientnet_lite0/" in f for f in outputs)  # model figures need no answers
    assert "no responses yet" in collecting.notices()[0] and demo.notices() == []
    (tmp_path / "demo" / "responses").mkdir()
    (tmp_path / "demo" / "responses" / "export.csv").write_text("Timestamp\n")
    answered = WorkflowPlan(config, spec_root=tmp_path)
    assert any("06_figures/demo/" in f for f in answered.all_outputs()) and answered.notices() == []
