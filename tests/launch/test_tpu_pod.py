"""launch/tpu_pod.sh --dry-run prints the exact gcloud commands a pod run needs, in order."""
import os
import subprocess

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SCRIPT = os.path.join(ROOT, "launch", "tpu_pod.sh")


def _dry_run(*extra):
    args = ["bash", SCRIPT, "--name", "sdpo-test", "--zone", "us-east5-a", "--accelerator",
            "v5p-64", "--project", "my-proj", "--spot", "--dry-run", *extra, "--",
            "--config=configs/chart_8b.py", "--workdir=gs://bucket/runs/x",
            "--config.train.num_steps=7"]
    return subprocess.run(args, capture_output=True, text=True, timeout=60)


def test_dry_run_prints_create_copy_install_and_run_on_all_workers():
    out = _dry_run()
    assert out.returncode == 0, out.stderr
    cmds = [line[2:] for line in out.stdout.splitlines() if line.startswith("+ ")]
    assert len(cmds) == 6, f"expected create, archive, scp, untar, setup, run; got:\n{out.stdout}"
    create, archive, scp, untar, setup, run = cmds
    assert create.startswith("gcloud compute tpus tpu-vm create sdpo-test")
    for flag in ("--zone=us-east5-a", "--project=my-proj", "--accelerator-type=v5p-64", "--spot"):
        assert flag in create, f"{flag} missing from the create command: {create}"
    assert archive.startswith("git -C ") and "archive" in archive and "HEAD" in archive
    assert "scp" in scp and "--worker=all" in scp
    assert "--worker=all" in untar and "tar" in untar
    assert "--worker=all" in setup and "launch/setup.sh\\ tpu" in setup
    assert "--worker=all" in run
    for piece in ("python\\ -m\\ sdpo_jax.main", "--config=configs/chart_8b.py",
                  "--workdir=gs://bucket/runs/x", "--config.train.num_steps=7"):
        assert piece in run, f"{piece} missing from the run command: {run}"


def test_local_workdir_is_refused_with_a_reason():
    out = subprocess.run(["bash", SCRIPT, "--name", "n", "--zone", "z", "--accelerator", "v5p-8",
                          "--dry-run", "--", "--config=configs/chart_8b.py", "--workdir=/tmp/x"],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 2
    assert "gs://" in out.stderr


def test_missing_required_flag_is_named():
    out = subprocess.run(["bash", SCRIPT, "--zone", "z", "--accelerator", "v5p-8", "--dry-run",
                          "--", "--config=c.py", "--workdir=gs://b/x"],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 2
    assert "--name is required" in out.stderr
