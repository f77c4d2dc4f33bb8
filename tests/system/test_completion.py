"""Shell completion (smc completion bash|zsh) generated from the command
table, and the man page docs/smc.1: the scripts parse (bash -n, zsh -n),
complete commands, verbs, flags and flag values in a real bash, and name
every command of `smc help` and every flag of each command's --help; the man
page renders without warnings and describes every command. bash, zsh, groff
and man come from scripts/deps.sh test."""
import os
import re
import shutil
import subprocess

import pytest

from smc_dev_fixture import ROOT, smc_bin

MAN = os.path.join(ROOT, "docs", "smc.1")


def commands():
    out = subprocess.run([smc_bin(), "help"], capture_output=True, text=True).stdout
    names = re.findall(r"^  ([a-z]+) ", out, re.M)
    assert len(names) >= 15 and "completion" in names
    return names


def script(shell):
    r = subprocess.run([smc_bin(), "completion", shell], capture_output=True, text=True)
    assert r.returncode == 0 and r.stderr == "", r.stderr
    return r.stdout


@pytest.mark.parametrize("shell", ["bash", "zsh"])
def test_script_parses_and_names_every_command(shell, tmp_path):
    if not shutil.which(shell):
        pytest.fail("%s is missing: scripts/deps.sh test installs it" % shell)
    text = script(shell)
    path = tmp_path / ("smc." + shell)
    path.write_text(text)
    r = subprocess.run([shell, "-n", str(path)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    for c in commands():
        assert re.search(r"^\s+'?%s[):]" % c, text, re.M), "%s: no %s" % (shell, c)


def test_every_flag_of_every_help_is_offered():
    text = script("bash")
    for c in commands():
        helptext = subprocess.run([smc_bin(), c, "--help"], capture_output=True, text=True)
        line = re.search(r"^    %s\) opts='([^']*)'" % c, text, re.M)
        assert line, c
        offered = set(line.group(1).split())
        assert {"--help", "--log-format"} <= offered, c
        for flag in re.findall(r"^\s+(--[a-z][a-z0-9-]+)", helptext.stdout, re.M):
            assert flag in offered, "%s %s" % (c, flag)


def complete(words, cword):
    """COMPREPLY of the bash script for COMP_WORDS=words, COMP_CWORD=cword."""
    prog = 'source <(%s completion bash); COMP_WORDS=(%s); COMP_CWORD=%d; _smc; ' \
           'printf "%%s\\n" "${COMPREPLY[@]}"' % (
               smc_bin(), " ".join("'%s'" % w for w in words), cword)
    r = subprocess.run(["bash", "-c", prog], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    return r.stdout.split()


def test_bash_completes():
    assert complete(["smc", "wor"], 1) == ["worker"]
    assert "completion" in complete(["smc", "c"], 1)
    assert complete(["smc", "machine", "a"], 2) == ["apply"]
    assert complete(["smc", "topics", ""], 2) == ["create", "describe", "trim"]
    assert complete(["smc", "machine", "apply", "--boot"], 3) == ["--bootstrap"]
    assert complete(["smc", "worker", "--log-f"], 2) == ["--log-format"]
    assert complete(["smc", "dev", "--log-format", ""], 3) == ["text", "logfmt", "json"]
    assert complete(["smc", "worker", "--log-level", "d"], 3) == ["debug"]
    assert complete(["smc", "completion", ""], 2) == ["bash", "zsh"]


def test_bad_shell_is_a_usage_error():
    r = subprocess.run([smc_bin(), "completion", "fish"], capture_output=True, text=True)
    assert r.returncode == 2 and "bash|zsh" in r.stderr


def test_man_page_renders_and_names_every_command():
    groff = shutil.which("groff")
    if not groff:
        pytest.fail("groff is missing: scripts/deps.sh test installs groff-base")
    r = subprocess.run([groff, "-man", "-Tutf8", "-ww", "-z", MAN], capture_output=True,
                       text=True)
    assert r.returncode == 0 and r.stderr == "", r.stderr
    r = subprocess.run(["man", "-l", MAN], capture_output=True, text=True,
                       env=dict(os.environ, MANWIDTH="100", MANPAGER="cat", PAGER="cat"))
    assert r.returncode == 0, r.stderr
    page = re.sub(r".\x08", "", r.stdout)
    for c in commands():
        assert re.search(r"^\s+%s\b" % c, page, re.M), "smc.1 does not describe %s" % c
    version = subprocess.run([smc_bin(), "--version"], capture_output=True, text=True)
    assert version.stdout.split()[1] in open(MAN).read().splitlines()[2]
