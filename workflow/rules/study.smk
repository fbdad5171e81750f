# Stage 4: each study's blinded forms, codebook and private answer key (study/<id>/study.yaml).
# The inputs are the run files the spec reads (the job records of its FVs, references, image
# index), listed by the library (vitalstudy.study.forms, through PLAN.study_files).


rule study_forms:
    input:
        spec=PLAN.study_spec,
        run_files=PLAN.study_files,
    output:
        manifest=PATHS.study.manifest("{study}"),
        codebook=PATHS.study.codebook("{study}"),
        script=PATHS.study.apps_script("{study}"),
        answer_key=PATHS.study.answer_key("{study}"),
    params:
        models=PLAN.study_models,
        run=RUN,
        out=str(PATHS.study.study_dir("{study}")),
    resources:
        **PLAN.cpu_resources,
    log:
        PATHS.log("study_forms", "{study}"),
    shell:
        "{VITALSTUDY} forms --spec {input.spec:q} --run {params.run:q} --out {params.out:q} "
        "--models {params.models:q} > {log:q} 2>&1"
