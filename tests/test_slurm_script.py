"""The sbatch script as a pure function (runkit.sweeps.slurm.script.render): what each option makes of it,
read without SLURM, as `runbatch --slurm --dry-run` prints it."""
from runkit.sweeps.slurm.options import Options
from runkit.sweeps.slurm.script import render


def specs(n, experiment="exp"):
    return [{"name": f"r{i}", "run_dir": f"/res/{experiment}/r{i}", "argv": ["true"], "experiment": experiment}
            for i in range(n)]


def sbatch(script):
    return [line.removeprefix("#SBATCH ") for line in script.splitlines() if line.startswith("#SBATCH ")]


def test_one_run_per_task_is_an_array_over_the_specs_that_execs_the_task_runner():
    script = render("/res/batches/b", specs(3), Options(), lib="/code/lib", python="/venv/bin/python")
    assert script.startswith("#!/bin/bash\n") and script.endswith("\n")
    assert sbatch(script)[:6] == ["--job-name=exp", "--array=0-2", "--output=/res/batches/b/.tasks/%a/slurm-%A_%a.log",
                                  "--open-mode=append", "--requeue", "--signal=B:USR1@120"]
    assert script.splitlines()[-1] == ('exec /venv/bin/python -m runkit.sweeps.slurm.task /res/batches/b/specs.jsonl '
                                       '"$SLURM_ARRAY_TASK_ID"')
    assert "export PYTHONPATH=/code/lib${PYTHONPATH:+:$PYTHONPATH}" in script.splitlines()
    assert "export RUNKIT_SLURM_MAX_REQUEUES=20" in script.splitlines()
    assert "RUNKIT_SLURM_SRUN" not in script and "RUNKIT_CODE_SNAPSHOT" not in script


def test_a_later_array_of_a_packed_batch_names_its_own_script_links_and_first_task():
    options = Options(runs_per_task=4, throttle=2, max_requeues=3)
    script = render("/res/batches/b", specs(10), options, restart_changed=True, part=1, first=5)
    assert "--array=0-2%2" in sbatch(script)  # 10 runs, 4 a task: 3 tasks
    assert "--output=/res/batches/b/.tasks.1/%a/slurm-%A_%a.log" in sbatch(script)
    assert "# Resubmit by hand: sbatch /res/batches/b/job.1.sbatch" in script
    assert script.splitlines()[-1].endswith('"$SLURM_ARRAY_TASK_ID" --first=5 --runs-per-task=4 --restart-changed')
    assert "export RUNKIT_SLURM_MAX_REQUEUES=3" in script.splitlines()


def test_resources_and_flags_become_sbatch_lines_and_a_value_with_spaces_is_quoted():
    options = Options(partition="gpu", time="1:00:00", gres="gpu:1", cpus=4, mem="16G", account="lab", qos="high",
                      dependency="afterok:12", sbatch_args=["--constraint=a100", "--comment=two words"],
                      nodes=2, gpus_per_node=4, job_name="mine")
    lines = sbatch(render("/res/batches/b", specs(1, "a b"), options))
    assert lines[0] == "--job-name=mine"
    for line in ("--nodes=2", "--ntasks-per-node=4", "--gpus-per-node=4", "--partition=gpu", "--time=1:00:00",
                 "--gres=gpu:1", "--cpus-per-task=4", "--mem=16G", "--account=lab", "--qos=high",
                 "--dependency=afterok:12", "--constraint=a100", '"--comment=two words"'):
        assert line in lines


def test_a_job_name_is_the_experiment_only_when_all_share_a_plain_one():
    assert "--job-name=runkit" in sbatch(render("/b", specs(1, "a b"), Options()))
    assert "--job-name=runkit" in sbatch(render("/b", specs(1, "x") + specs(1, "y"), Options()))
    assert "--job-name=tune_lr-2" in sbatch(render("/b", specs(2, "tune_lr-2"), Options()))


def test_a_frozen_batch_runs_the_task_runner_and_the_runs_from_its_snapshot():
    script = render("/res/batches/b", specs(1), Options(nodes=2), frozen="/proj", lib="/proj/lib",
                    python="/venv/bin/python").splitlines()
    assert "export PYTHONPATH=/res/batches/b/code/lib${PYTHONPATH:+:$PYTHONPATH}" in script
    assert "export RUNKIT_CODE_SNAPSHOT=/res/batches/b/code" in script and "export RUNKIT_SLURM_SRUN=1" in script
    outside = render("/res/batches/b", specs(1), Options(), frozen="/proj", lib="/site/lib").splitlines()
    assert "export PYTHONPATH=/site/lib${PYTHONPATH:+:$PYTHONPATH}" in outside  # a lib outside the project stays
