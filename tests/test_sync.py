"""sync against real rsync, the real watchman service, and a real sshd on loopback that the tests start."""
import getpass
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pytest

from conftest import REPO, need, requires, skip, tool

SYNC = str(REPO / "tools" / "sync")
RECORD = ".runkit-sync.json"


def write(path, text="x\n"):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def files(folder):
    """Every file under a folder, as sorted relative paths."""
    return sorted(str(p.relative_to(folder)) for p in Path(folder).rglob("*") if p.is_file())


@pytest.fixture
def project(tmp_path, monkeypatch):
    """A source tree with things to sync and things that must stay behind; RESULTS_DIR is SRC/runs."""
    src = tmp_path / "src"
    for name in ["train.py", "lib/pkg/data/loader.py", "sub/notes.md", ".gitignore", "sub/.gitignore",
                 ".syncignore", "cache.log", "sub/scratch.tmp", "sub/deep/scratch.tmp", "top.tmp", "big.bin",
                 ".git/HEAD", ".venv/bin/python", "results/run1/FINISHED", "data/digits.npz",
                 "runs/run2/FINISHED"]:
        write(src / name)
    (src / ".gitignore").write_text("*.log\n")
    (src / "sub/.gitignore").write_text("*.tmp\n")  # nested: applies under sub/ only
    (src / ".syncignore").write_text("/big.bin\n")
    monkeypatch.setenv("RESULTS_DIR", str(src / "runs"))
    monkeypatch.delenv("VIRTUAL_ENV", raising=False)
    yield src
    if shutil.which("watchman"):
        subprocess.run(["watchman", "watch-del", str(src)], check=False, capture_output=True)


SENT = [".gitignore", ".syncignore", "lib/pkg/data/loader.py", "sub/.gitignore", "sub/notes.md", "top.tmp",
        "train.py"]
# Made on the destination after a sync (run outputs, a hand-run job's log, a wandb folder, a file beside sent
# ones): a sync must never delete them, whatever SRC lacks or its ignore files say.
KEPT = ["data/train.npz", "lib/pkg/out.txt", "remote.log", "results/run0/FINISHED", "runs/run0/FINISHED",
        "slurm-7.out", "wandb/run-1/files/log.txt"]


def remote_outputs(dest):
    for name in KEPT:
        write(dest / name)


def deletes_only_what_it_sent(project, dest, *flags, where=None):
    """Sync, let DEST make outputs, delete and un-ignore files in SRC, sync: only files sync sent are gone."""
    where = where or str(dest)
    proc = tool(SYNC, "--once", *flags, project, where, check=0)
    assert files(dest) == sorted(SENT + [RECORD])
    assert f"sync: 7 files synced to {where} in " in proc.stderr and proc.stdout == ""
    remote_outputs(dest)
    (project / "sub/notes.md").unlink()
    shutil.rmtree(project / "lib")
    (project / ".gitignore").write_text("")  # the line that ignored *.log is gone: remote.log is not SRC's
    proc = tool(SYNC, "--once", *flags, project, where, check=0)
    now_sent = sorted(set(SENT) - {"sub/notes.md", "lib/pkg/data/loader.py"} | {"cache.log", RECORD})
    assert files(dest) == sorted(now_sent + KEPT)
    assert not (dest / "lib/pkg/data").exists()  # a folder sync made and emptied goes; lib/pkg holds out.txt
    assert f"sync: 4 files synced to {where} in " in proc.stderr  # .gitignore, cache.log; 2 deleted


@requires("rsync")
def test_once_deletes_only_what_it_sent(project, tmp_path):
    deletes_only_what_it_sent(project, tmp_path / "dest")


@requires("rsync")
def test_a_folder_of_other_files_is_refused_unless_forced(project, tmp_path):
    dest = tmp_path / "dest"
    write(dest / "notes.txt")
    write(dest / "sub/notes.md", "an older copy\n")
    shutil.copy2(project / "train.py", dest / "train.py")  # the same file, made there by hand: not sent
    before = files(dest)
    proc = tool(SYNC, "--once", project, dest, check=2)
    assert "holds files that sync did not send" in proc.stderr and "--force" in proc.stderr
    assert len(proc.stderr.splitlines()) == 1 and files(dest) == before
    tool(SYNC, "--once", "--force", project, dest, check=0)
    (project / "train.py").unlink()
    (project / "sub/notes.md").unlink()
    tool(SYNC, "--once", project, dest, check=0)  # a sync target now: no --force needed
    assert (dest / "notes.txt").exists() and (dest / "train.py").exists()
    assert not (dest / "sub/notes.md").exists()  # overwritten by sync, so sync's to delete
    (tmp_path / "empty").mkdir()
    tool(SYNC, "--once", project, tmp_path / "empty", check=0)


@requires("rsync")
@pytest.mark.parametrize("record", ['{"sent": ["../outside.py"]}', '{"sent": ["/etc/hosts"]}', "{"])
def test_a_record_that_sync_did_not_write_is_refused(project, tmp_path, record):
    dest = tmp_path / "dest"
    write(dest / RECORD, record)
    proc = tool(SYNC, "--once", project, dest, check=2)
    assert f"{RECORD} is not a record that sync wrote" in proc.stderr and files(dest) == [RECORD]


@requires("rsync")
def test_results_folder_that_is_a_symlink_survives(project, tmp_path):
    dest, scratch = tmp_path / "dest", tmp_path / "scratch"
    write(scratch / "run0/FINISHED")
    shutil.rmtree(project / "results")
    tool(SYNC, "--once", project, dest, check=0)
    (dest / "results").symlink_to(scratch)  # clusters often point results at a scratch disk
    tool(SYNC, "--once", project, dest, check=0)
    assert (dest / "results").is_symlink() and (dest / "results/run0/FINISHED").exists()


@requires("rsync")
def test_results_dir_that_is_a_local_symlink_is_not_sent(project, tmp_path):
    shutil.rmtree(project / "runs")
    (project / "runs").symlink_to(tmp_path / "scratch")  # RESULTS_DIR=SRC/runs, on a scratch disk
    dest = tmp_path / "dest"
    tool(SYNC, "--once", project, dest, check=0)
    write(dest / "runs/run0/FINISHED")
    tool(SYNC, "--once", project, dest, check=0)
    assert not (dest / "runs").is_symlink() and (dest / "runs/run0/FINISHED").exists()


@requires("rsync")
def test_dry_run_lists_changes_and_changes_nothing(project, tmp_path):
    dest = tmp_path / "dest"
    tool(SYNC, "--once", project, dest, check=0)
    remote_outputs(dest)
    (project / "sub/notes.md").unlink()
    write(project / "new.py")
    before = {name: (dest / name).stat().st_mtime_ns for name in files(dest)}
    proc = tool(SYNC, "--dry-run", project, dest, check=0)
    assert {name: (dest / name).stat().st_mtime_ns for name in files(dest)} == before
    lines = proc.stdout.splitlines()
    assert [line for line in lines if line.startswith((">", "*"))] == [">f+++++++++ new.py",
                                                                      "*deleting   sub/notes.md"]
    assert "sync: 2 files would change (dry run)" in proc.stderr


@pytest.mark.parametrize("src, dest, message", [
    ("missing", "{tmp}/dest", "SRC missing is not a folder"),
    ("{src}", "{src}/inside", "overlaps SRC"),
    ("{src}", "{tmp}", "overlaps SRC"),
    pytest.param("{src}", "{tmp}/no/such/dest", "parent folder", marks=requires("rsync")),
    ("{src}", "host::module/x", "rsync daemon"),
])
def test_bad_arguments_exit_2_and_write_nothing(project, tmp_path, src, dest, message):
    before = files(tmp_path)
    proc = tool(SYNC, "--once", src.format(src=project), dest.format(src=project, tmp=tmp_path), check=2,
                cwd=tmp_path)
    assert message in proc.stderr and len(proc.stderr.splitlines()) == 1 and "Traceback" not in proc.stderr
    assert files(tmp_path) == before


def test_a_host_that_begins_with_a_dash_is_refused(project, tmp_path):
    proc = tool(SYNC, "--once", project, "--", "-oProxyCommand=touch pwned:proj", check=2, cwd=tmp_path)
    assert "begins with '-'" in proc.stderr and len(proc.stderr.splitlines()) == 1
    assert not (tmp_path / "pwned").exists()


HOME_DESTS = ["~", "~/.", "{home}", "{home}/", "{home}/sub/..", "{home}/..", "{tmp}/to_home", "/"]


@requires("rsync")
@pytest.mark.parametrize("dest", HOME_DESTS)
def test_a_home_folder_or_one_above_it_is_refused(project, tmp_path, dest):
    home = tmp_path / "users/me"
    write(home / "sub/.profile")
    (tmp_path / "to_home").symlink_to(home)
    before = files(tmp_path)
    proc = tool(SYNC, "--once", "--force", project, dest.format(home=home, tmp=tmp_path), check=2, cwd=tmp_path,
                env=dict(os.environ, HOME=str(home)))
    assert "a home folder or a folder above one" in proc.stderr and len(proc.stderr.splitlines()) == 1
    assert files(tmp_path) == before


@requires("rsync")
def test_a_remote_shell_that_prints_a_banner_is_refused(project, tmp_path):
    """A login script that prints on stdout must not make sync misread where DEST is and what it holds."""
    rsh = tmp_path / "chatty-ssh"
    rsh.write_text('#!/bin/sh\nshift\necho "Welcome to the cluster"\nexec sh -c "$*"\n')  # runs here, chatting
    rsh.chmod(0o755)
    proc = tool(SYNC, "--once", "--rsh", rsh, project, f"cluster:{tmp_path}/dest", check=2)
    assert "is the shell clean" in proc.stderr and len(proc.stderr.splitlines()) == 1
    assert not (tmp_path / "dest").exists()


@pytest.mark.parametrize("flags, lines", [(["--settle", "0"], 1), (["--retries", "0"], 1), (["--bogus"], 2),
                                          (["--settle", "soon"], 2)])  # argparse's: a usage line first
def test_bad_flags_exit_2(project, tmp_path, flags, lines):
    proc = tool(SYNC, *flags, project, tmp_path / "dest", check=2)
    assert "see sync --help" in proc.stderr and len(proc.stderr.splitlines()) == lines
    assert not (tmp_path / "dest").exists()


def bin_with(tmp_path, *programs):
    """A PATH folder holding only the named programs, to show what sync does when the others are missing."""
    folder = tmp_path / "bin"
    folder.mkdir()
    for name in programs:
        (folder / name).symlink_to(shutil.which(name))
    return str(folder)


@pytest.mark.parametrize("have, args, missing", [
    ((), ["--once"], "rsync is not installed"),
    pytest.param(("rsync",), ["--once", "--rsh", "ssh -p 1"], "ssh is not installed", marks=requires("rsync")),
    pytest.param(("rsync",), [], "watchman is not installed", marks=requires("rsync")),
])
def test_missing_program_exits_2(project, tmp_path, have, args, missing):
    dest = "127.0.0.1:/tmp/x" if "--rsh" in args else str(tmp_path / "dest")
    env = dict(os.environ, PATH=bin_with(tmp_path, *have))
    proc = tool(sys.executable, SYNC, *args, project, dest, check=2, env=env)
    assert missing in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "dest").exists()


@requires("rsync", "ssh")
def test_unreachable_host_exits_2(project, tmp_path):
    port = free_port()  # nothing listens there
    proc = tool(SYNC, "--once", "--rsh", f"ssh -F /dev/null -p {port}", project, "127.0.0.1:/tmp/x", check=2)
    assert "cannot reach 127.0.0.1" in proc.stderr and "Connection refused" in proc.stderr


class Watching:
    """`sync SRC DEST` running in the background; its stderr lines are collected as they come."""

    def __init__(self, *argv, env=None):
        # SIGINT ignored, as a background job of a script inherits it: Ctrl-C (stop) must stop it all the same
        self.proc = subprocess.Popen(["bash", "-c", "trap '' INT; exec \"$0\" \"$@\"", SYNC, *map(str, argv)],
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        self.lines = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.proc.stderr:
            self.lines.append(line.rstrip("\n"))

    def syncs(self):
        return [line for line in self.lines if " synced to " in line]

    def wait_for(self, condition, what, timeout=20):
        deadline = time.monotonic() + timeout
        while not condition():
            assert self.proc.poll() is None, f"sync exited {self.proc.returncode}: {self.lines}"
            assert time.monotonic() < deadline, f"timed out waiting for {what}; stderr: {self.lines}"
            time.sleep(0.05)

    def settled(self, quiet=1.0):
        """The number of syncs once none has been logged for `quiet` seconds (a sync logs after it copied)."""
        count = -1
        while count != len(self.syncs()):
            count = len(self.syncs())
            time.sleep(quiet)
        return count

    def stop(self):
        """Ctrl-C: a clean exit 0, no traceback."""
        self.proc.send_signal(signal.SIGINT)
        assert self.proc.wait(timeout=10) == 0, self.lines
        time.sleep(0.1)
        assert self.lines[-1] == "sync: stopped" and not any("Traceback" in line for line in self.lines)


def follow_edits(project, dest, watching):
    """Edits, new files, renames, deletions, ignored files and a burst each reach DEST as they should."""
    watching.wait_for(lambda: len(watching.syncs()) == 1, "the initial sync")
    assert files(dest) == sorted(SENT + [RECORD])
    remote_outputs(dest)

    (project / "train.py").write_text("edited\n")
    write(project / "sub/new.py")
    (project / "sub/notes.md").rename(project / "sub/renamed.md")
    (project / ".syncignore").unlink()
    write(project / "ignored.log")
    write(project / "results/run3/FINISHED")
    watching.wait_for(lambda: (dest / "sub/renamed.md").exists() and not (dest / ".syncignore").exists(),
                      "edits to arrive")
    assert (dest / "train.py").read_text() == "edited\n" and (dest / "sub/new.py").exists()
    assert (dest / "big.bin").exists()  # no longer ignored once .syncignore is gone
    assert not (dest / "sub/notes.md").exists() and not (dest / "ignored.log").exists()
    assert not (dest / "results/run3").exists()

    before = watching.settled()
    for i in range(200):  # a burst, faster than --settle: one sync
        write(project / f"burst/f{i}.py", str(i))
    watching.wait_for(lambda: len(list((dest / "burst").glob("*.py"))) == 200 if (dest / "burst").exists()
                      else False, "the burst to arrive")
    assert watching.settled() == before + 1, watching.syncs()
    assert "sync: 200 files synced" in watching.syncs()[-1]

    shutil.rmtree(project / "burst")
    watching.wait_for(lambda: not (dest / "burst").exists(), "deletions to arrive")
    for name in KEPT:
        assert (dest / name).exists(), f"remote output {name} was deleted"


@requires("rsync", "watchman")
def test_watch_follows_changes_to_a_local_folder(project, tmp_path):
    dest = tmp_path / "dest"
    watching = Watching("--settle", "0.5", project, dest)
    try:
        follow_edits(project, dest, watching)
        watching.stop()
    finally:
        watching.proc.kill()


@requires("rsync", "watchman")
def test_a_git_checkout_is_one_sync(tmp_path):
    src, dest = tmp_path / "repo", tmp_path / "dest"
    git = ["git", "-C", str(src), "-c", "user.name=t", "-c", "user.email=t@t"]
    for i in range(100):
        write(src / f"pkg/m{i}.py", "main\n")
    subprocess.run(["git", "init", "-q", "-b", "main", str(src)], check=True)
    subprocess.run(git + ["add", "."], check=True)
    subprocess.run(git + ["commit", "-qm", "main"], check=True)
    subprocess.run(git + ["checkout", "-qb", "other"], check=True)
    for i in range(100):
        write(src / f"pkg/m{i}.py", "other\n")
    subprocess.run(git + ["commit", "-qam", "other"], check=True)
    watching = Watching("--settle", "0.3", src, dest)
    try:
        watching.wait_for(lambda: len(watching.syncs()) == 1, "the initial sync")
        before = watching.settled()
        subprocess.run(git + ["checkout", "-q", "main"], check=True)
        watching.wait_for(lambda: all((dest / f"pkg/m{i}.py").read_text() == "main\n" for i in range(100)),
                          "the checkout to arrive")
        assert watching.settled() == before + 1, watching.syncs()
        assert "sync: 100 files synced" in watching.syncs()[-1]
        assert not (dest / ".git").exists()
        watching.stop()
    finally:
        watching.proc.kill()
        subprocess.run(["watchman", "watch-del", str(src)], check=False, capture_output=True)


@requires("rsync", "watchman")
def test_watch_starts_the_watchman_service_when_it_is_not_running(project, tmp_path):
    state = Path(tempfile.mkdtemp(prefix="wm", dir="/tmp"))  # short: the socket path must fit 108 bytes
    env = dict(os.environ, TMPDIR=str(state))  # watchman keeps its socket under TMPDIR: a service of our own
    try:
        watching = Watching("--settle", "0.2", project, tmp_path / "dest", env=env)
        try:
            watching.wait_for(lambda: len(watching.syncs()) == 1, "the initial sync")
            assert (state / f"{getpass.getuser()}-state" / "sock").exists()
            write(project / "later.py")
            watching.wait_for(lambda: (tmp_path / "dest/later.py").exists(), "a change to arrive")
            watching.stop()
        finally:
            watching.proc.kill()
    finally:
        subprocess.run(["watchman", "shutdown-server"], check=False, env=env, capture_output=True, timeout=30)
        shutil.rmtree(state, ignore_errors=True)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Sshd:
    """A real sshd on 127.0.0.1 that accepts one key generated for the test; `rsh` is the ssh to reach it."""

    def __init__(self, folder):
        self.folder, self.port = folder, free_port()
        (folder / "home").mkdir(parents=True)
        for key in ("host_key", "client_key"):
            subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(folder / key)], check=True)
        (folder / "authorized_keys").write_text((folder / "client_key.pub").read_text())
        host_key = (folder / "host_key.pub").read_text().split()
        (folder / "known_hosts").write_text(f"[127.0.0.1]:{self.port} {host_key[0]} {host_key[1]}\n")
        (folder / "sshd_config").write_text("\n".join([
            f"Port {self.port}", "ListenAddress 127.0.0.1", f"HostKey {folder / 'host_key'}",
            f"AuthorizedKeysFile {folder / 'authorized_keys'}", "StrictModes no", "UsePAM no",
            "PasswordAuthentication no", "KbdInteractiveAuthentication no", f"PidFile {folder / 'sshd.pid'}",
            f"SetEnv HOME={folder / 'home'}", ""]))  # a home of the test's own: sync must refuse it
        self.rsh = (f"ssh -F /dev/null -p {self.port} -i {folder / 'client_key'} -o IdentitiesOnly=yes "
                    f"-o UserKnownHostsFile={folder / 'known_hosts'} -o StrictHostKeyChecking=yes")
        self.proc = None

    def start(self):
        self.proc = subprocess.Popen([SSHD, "-D", "-e", "-f", str(self.folder / "sshd_config")],
                                     stdout=subprocess.DEVNULL, stderr=open(self.folder / "sshd.log", "a"))
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                assert self.proc.poll() is None, (self.folder / "sshd.log").read_text()
                assert time.monotonic() < deadline, "sshd did not start listening"
                time.sleep(0.05)

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=10)


SSHD = shutil.which("sshd") or "/usr/sbin/sshd"


@pytest.fixture
def sshd(tmp_path):
    need("sshd", "ssh", "ssh-keygen", "rsync")
    if not os.path.isdir("/run/sshd"):
        if os.geteuid() != 0:
            skip("sshd needs its privilege separation folder /run/sshd; create it as root")
        os.makedirs("/run/sshd", mode=0o755)
    server = Sshd(tmp_path / "ssh")
    server.start()
    yield server
    if server.proc.poll() is None:
        server.stop()


def test_once_over_ssh_deletes_only_what_it_sent(project, tmp_path, sshd):
    dest = tmp_path / "remote"
    deletes_only_what_it_sent(project, dest, "--rsh", sshd.rsh, where=f"127.0.0.1:{dest}")


def test_over_ssh_a_folder_of_other_files_is_refused_unless_forced(project, tmp_path, sshd):
    dest = tmp_path / "remote"
    write(dest / "slurm-7.out")
    proc = tool(SYNC, "--once", "--rsh", sshd.rsh, project, f"127.0.0.1:{dest}", check=2)
    assert "holds files that sync did not send" in proc.stderr and files(dest) == ["slurm-7.out"]
    tool(SYNC, "--once", "--force", "--rsh", sshd.rsh, project, f"127.0.0.1:{dest}", check=0)
    shutil.rmtree(project / "sub")
    tool(SYNC, "--once", "--rsh", sshd.rsh, project, f"127.0.0.1:{dest}", check=0)
    assert "slurm-7.out" in files(dest) and not (dest / "sub").exists()


def test_over_ssh_a_home_folder_or_one_above_it_is_refused(project, tmp_path, sshd):
    """The login folder (the user's home) and $HOME (a folder of the test's, set by sshd) are both homes."""
    home = sshd.folder / "home"
    write(home / "sub/.profile")
    before = files(sshd.folder)
    for dest in ["", ".", "~", "~/.", f"{home}/", f"{home}/sub/..", "~/..", "/"]:  # one sshd for all
        proc = tool(SYNC, "--once", "--rsh", sshd.rsh, project, f"127.0.0.1:{dest}", check=2)
        assert "a home folder or a folder above one" in proc.stderr, dest
        assert len(proc.stderr.splitlines()) == 1 and files(sshd.folder) == before, dest


def test_missing_remote_parent_folder_exits_2(project, tmp_path, sshd):
    proc = tool(SYNC, "--once", "--rsh", sshd.rsh, project, f"127.0.0.1:{tmp_path}/no/such/proj", check=2)
    assert f"127.0.0.1 has no folder {tmp_path}/no/such; create it first" in proc.stderr
    assert not (tmp_path / "no").exists()


def test_missing_key_fails_fast_instead_of_prompting(project, tmp_path, sshd):
    rsh = sshd.rsh.replace(str(sshd.folder / "client_key"), str(tmp_path / "no_such_key"))
    proc = tool(SYNC, "--once", "--rsh", rsh, project, f"127.0.0.1:{tmp_path}/remote", check=2, timeout=30,
                stdin=subprocess.DEVNULL)
    assert "cannot reach 127.0.0.1" in proc.stderr and "Permission denied" in proc.stderr
    assert not (tmp_path / "remote").exists()


@requires("rsync", "watchman")
def test_watch_over_ssh_follows_changes(project, tmp_path, sshd):
    dest = tmp_path / "remote"
    watching = Watching("--settle", "0.5", "--rsh", sshd.rsh, project, f"127.0.0.1:{dest}")
    try:
        follow_edits(project, dest, watching)
        watching.stop()
    finally:
        watching.proc.kill()


@requires("rsync", "watchman")
def test_watch_retries_while_the_remote_is_away(project, tmp_path, sshd):
    dest = tmp_path / "remote"
    watching = Watching("--settle", "0.2", "--rsh", sshd.rsh, project, f"127.0.0.1:{dest}")
    try:
        watching.wait_for(lambda: len(watching.syncs()) == 1, "the initial sync")
        sshd.stop()
        write(project / "while_away.py")
        watching.wait_for(lambda: any("retrying in 2 s" in line for line in watching.lines), "two retries")
        sshd.start()
        watching.wait_for(lambda: (dest / "while_away.py").exists(), "the sync after the remote came back")
        watching.stop()
    finally:
        watching.proc.kill()


def path_without(folder, *programs):
    """A PATH folder of links to every program on PATH but the named ones: a machine without those."""
    folder.mkdir()
    for directory in os.environ["PATH"].split(os.pathsep):
        for entry in os.scandir(directory) if os.path.isdir(directory) else ():
            link = folder / entry.name
            if entry.name not in programs and not os.path.lexists(link):
                link.symlink_to(entry.path)
    return str(folder)


def test_without_rsync_watchman_and_ssh_these_tests_pass_or_skip_with_the_reason(tmp_path):
    """`make test` on a fresh machine: what needs a missing program is skipped and says which; nothing fails."""
    this = "test_without_rsync_watchman_and_ssh_these_tests_pass_or_skip_with_the_reason"
    path = path_without(tmp_path / "bin", "rsync", "watchman", "ssh", "sshd", "ssh-keygen")
    env = dict(os.environ, PATH=path)
    env.pop("RUNKIT_TESTS_NEED_ALL", None)
    inner = lambda *args, **env_: tool(sys.executable, "-m", "pytest", __file__, "-q", "-rs", "-m", "",  # noqa: E731
                                       "-p", "no:cacheprovider", f"--basetemp={tmp_path / 'inner'}", *args,
                                       env=dict(env, **env_), cwd=REPO)
    proc = inner("-k", f"not {this}")
    assert proc.returncode == 0, proc.stdout
    for reason in [r"needs rsync \(apt-get install rsync; \.ci/run does\)",
                   r"needs rsync, watchman \(apt-get install rsync watchman; ",
                   r"needs (sshd, )?ssh, ssh-keygen, rsync \(apt-get install openssh-client "]:  # the sshd fixture
        assert re.search(reason, proc.stdout), (reason, proc.stdout)
    # CI installs them all (.ci/run): there the sshd fixture's skip fails instead
    strict = inner("-k", "test_once_over_ssh", RUNKIT_TESTS_NEED_ALL="1")
    assert strict.returncode == 1 and "RUNKIT_TESTS_NEED_ALL=1 says" in strict.stdout, strict.stdout
