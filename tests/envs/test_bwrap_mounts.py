"""The sandbox's mount table: a checkout or venv under /tmp (a clone there) stays visible after
the private /tmp is mounted over it, read-only."""
from envs import bwrap


def _mounts(args: list[str]) -> list[tuple[str, str]]:
    """(option, path) for the mount options, in order."""
    return [(args[i], args[i + 1]) for i in range(len(args) - 1)
            if args[i] in ("--ro-bind", "--tmpfs", "--dir")]


def test_trees_under_tmp_are_bound_after_the_private_tmp(tmp_path):
    checkout = tmp_path / "clone"
    checkout.mkdir()
    mounts = _mounts(bwrap.command(["true"], read_only=[str(checkout)]))
    private_tmp = mounts.index(("--tmpfs", "/tmp"))
    path = str(checkout.resolve())
    assert path.startswith("/tmp/")
    assert mounts.index(("--ro-bind", path)) > private_tmp, "hidden by the private /tmp"
    parents = [i for i, (option, p) in enumerate(mounts) if option == "--dir" and
               path.startswith(p + "/")]
    assert parents and min(parents) > private_tmp, "its folders are made inside the private /tmp"
    assert mounts.index(("--ro-bind", "/usr")) < private_tmp
