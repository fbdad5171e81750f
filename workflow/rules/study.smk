# Stage 4: each study's blinded forms, codebook and private answer key (study/<id>/study.yaml).
# The inputs are the run files the spec reads (FVs, references, image index), listed by the library.
from vitalstudy.study.forms import study_inputs


rule study_forms:
    input:
        spec="study/{study}/study.yaml",
        run_files=lambda wc: fv_inputs(study_inputs(f"study/{wc.study}/study.yaml", RUN), f"study {wc.study}"),
    output:
        manifest=f"{RUN}/04_study/{{study}}/forms/manifest.json",
        codebook=f"{RUN}/04_study/{{study}}/forms/codebook.csv",
        script=f"{RUN}/04_study/{{study}}/forms/google_form.gs",
        answer_key=f"{RUN}/04_study/{{study}}/private/answer_key.json",
    params:
        weights=json.dumps(config["models"].get("weights", {}), sort_keys=True),
    log:
        f"{RUN}/logs/study_forms/{{study}}.log",
    shell:
        "vitalstudy forms --spec {input.spec:q} --run {RUN:q} --out {RUN:q}/04_study/{wildcards.study} "
        "--model-weights {params.weights:q} > {log:q} 2>&1"


def study_forms_outputs():
    return [f"{RUN}/04_study/{s}/forms/manifest.json" for s in config.get("study", {}).get("studies", [])]
