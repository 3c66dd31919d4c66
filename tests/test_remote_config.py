"""`pivot remote`: remotes in .pivot/config (for git) and .pivot/config.local."""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest

from pivot.project import GITIGNORE


def test_add_list_modify_remove(ws):
    ws.pivot("remote", "add", "-d", "team", "s3://bucket/pivot")
    ws.pivot("remote", "add", "nas", "/mnt/nas/pivot")
    ws.pivot("remote", "modify", "team", "endpointurl", "http://127.0.0.1:9000")
    ws.pivot("remote", "modify", "team", "jobs", "8")
    ws.pivot("remote", "modify", "team", "profile", "me", "--local")
    assert ws.read(".pivot/config") == (
        '[remote "team"]\n'
        "url = s3://bucket/pivot\n"
        "endpointurl = http://127.0.0.1:9000\n"
        "jobs = 8\n"
        "\n"
        "[core]\n"
        "remote = team\n"
        "\n"
        '[remote "nas"]\n'
        "url = /mnt/nas/pivot\n"
    )
    assert ws.read(".pivot/config.local") == '[remote "team"]\nprofile = me\n'
    listed = ws.pivot_json("remote", "list")
    assert [(r["name"], r["url"], r["default"], r["options"]) for r in listed] == [
        ("nas", "/mnt/nas/pivot", False, {}),
        ("team", "s3://bucket/pivot", True, {"endpointurl": "http://127.0.0.1:9000", "jobs": "8", "profile": "me"}),
    ]
    text = ws.pivot("remote", "list").stdout
    assert "* team\ts3://bucket/pivot\t(read-write) endpointurl=http://127.0.0.1:9000 jobs=8 profile=me\n" in text

    ws.pivot("remote", "modify", "team", "jobs", "--unset")
    ws.pivot("remote", "remove", "team")
    assert ws.read(".pivot/config") == '[core]\n\n[remote "nas"]\nurl = /mnt/nas/pivot\n'
    assert ws.read(".pivot/config.local") == ""
    assert ws.pivot("remote", "default").stdout == "No default remote.\n"
    ws.pivot("remote", "default", "nas")
    assert ws.pivot("remote", "default").stdout == "nas\n"


def test_edits_keep_comments_and_other_sections(ws):
    ws.write(".pivot/config", "# team settings\n[cache]\ntype = hardlink  \n")
    ws.pivot("remote", "add", "-d", "store", "../store")
    assert ws.read(".pivot/config") == (
        "# team settings\n[cache]\ntype = hardlink  \n\n"
        '[remote "store"]\nurl = ../store\n\n[core]\nremote = store\n'
    )
    ws.pivot("remote", "remove", "store")
    assert ws.read(".pivot/config") == "# team settings\n[cache]\ntype = hardlink  \n\n[core]\n"


def test_config_local_wins_key_by_key(ws):
    ws.pivot("remote", "add", "-d", "team", "s3://bucket/pivot")
    ws.pivot("remote", "add", "--local", "-d", "mine", "/tmp/mine")
    ws.pivot("remote", "modify", "team", "url", "s3://other/pivot", "--local")
    listed = {r["name"]: r for r in ws.pivot_json("remote", "list")}
    assert listed["team"]["url"] == "s3://other/pivot" and listed["team"]["source"] == ".pivot/config.local"
    assert listed["mine"]["default"] and not listed["team"]["default"]


def test_relative_paths_are_relative_to_the_project_root(ws):
    (ws.root / ".pivot").mkdir()
    (ws.root / "sub").mkdir()
    ws.pivot("remote", "add", "store", "../../store", cwd="sub")
    assert ws.pivot_json("remote", "list")[0]["url"] == "../store"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("add", "x", "webdav://host/p"), "remote 'x': unsupported URL scheme 'webdav://' in 'webdav://host/p'"),
        (("add", "bad name", "/tmp/x"), "invalid remote name 'bad name'"),
        (("modify", "nope", "jobs", "2"), "unknown remote 'nope' (add it first: `pivot remote add nope URL`)"),
        (("modify", "team", "colour", "red"), "unknown key 'colour' for s3 remote 'team' (known: endpointurl, jobs, profile, region, url)"),
        (("modify", "team", "jobs", "many"), "remote 'team': jobs must be a positive integer, not 'many'"),
        (("modify", "team", "secret_access_key", "abc", "--local"), "pivot never stores credentials ('secret_access_key')"),
        (("modify", "team", "region"), "give VALUE, or --unset without a VALUE"),
        (("remove", "nope"), "unknown remote 'nope' (not in .pivot/config or .pivot/config.local)"),
        (("add", "team", "/tmp/x"), "remote 'team' already exists in .pivot/config (s3://bucket/pivot)"),
    ],
)
def test_bad_input_is_one_line_naming_the_key(ws, args, message):
    ws.pivot("remote", "add", "team", "s3://bucket/pivot")
    result = ws.pivot("remote", *args, expect=None)
    assert result.exit_code != 0
    assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert "Traceback" not in result.output
    assert "abc" not in ws.read(".pivot/config") + (ws.read(".pivot/config.local") if (ws.root / ".pivot/config.local").exists() else "")


def test_a_broken_config_file_is_named(ws):
    ws.write(".pivot/config", "[remote \"x\"\nurl = /tmp\n")
    result = ws.pivot("remote", "list", expect=1)
    assert result.stderr.startswith("ERROR: .pivot/config is invalid:")
    assert len(result.stderr.strip().splitlines()) == 1


@pytest.mark.skipif(shutil.which("git") is None, reason="needs git")
def test_git_shares_config_and_ignores_config_local(ws):
    subprocess.run(["git", "init", "-q", str(ws.root)], check=True)
    ws.write("lr.txt", "1\n")
    ws.write("dvc.yaml", "stages:\n  s:\n    cmd: cp lr.txt out.txt\n    deps: [lr.txt]\n    outs: [out.txt]\n")
    ws.pivot("run")
    ws.pivot("remote", "add", "-d", "team", "s3://bucket/p")
    ws.pivot("remote", "modify", "team", "profile", "me", "--local")

    def ignored(path: str) -> bool:
        return subprocess.run(["git", "check-ignore", "-q", path], cwd=ws.root).returncode == 0

    assert not ignored(".pivot/config") and not ignored(".pivot/locks/s.json")
    assert ignored(".pivot/config.local") and ignored(".pivot/cache")


def test_an_old_gitignore_written_by_pivot_is_brought_up_to_date(ws):
    old = "# pivot: commit locks/, ignore the rest\n/*\n!/locks/\n!/.gitignore\n"
    ws.write(".pivot/.gitignore", old)
    ws.pivot("remote", "add", "team", "s3://bucket/p")
    assert ws.read(".pivot/.gitignore") == GITIGNORE
    ws.write(".pivot/.gitignore", "/*\n")  # the user's own: left alone
    ws.pivot("remote", "add", "two", "s3://bucket/q")
    assert ws.read(".pivot/.gitignore") == "/*\n"
