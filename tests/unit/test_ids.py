"""UUIDv7 task ids and Proxmox UPIDs."""

from __future__ import annotations

import os
import random
import subprocess
import sys
import time
import uuid
from itertools import pairwise

import pytest

from taskgate import ids
from taskgate.errors import InvalidId
from taskgate.ids import (
    UPID_RE,
    Upid,
    UpidFactory,
    new_task_id,
    node_name,
    parse_task_id,
    upid_field,
    upid_user,
    uuid7,
    uuid7_time,
)

# -- UUIDv7 ----------------------------------------------------------------------------


def test_uuid7_version_and_variant_bits() -> None:
    for _ in range(1000):
        value = uuid7()
        assert value.version == 7
        assert value.variant == uuid.RFC_4122
        assert value.int >> 76 & 0xF == 0x7
        assert value.int >> 62 & 0b11 == 0b10


def test_uuid7_is_strictly_increasing() -> None:
    values = [uuid7() for _ in range(20_000)]
    assert all(a.int < b.int for a, b in pairwise(values))
    texts = [str(v) for v in values]
    assert texts == sorted(texts)  # the text form sorts the same way (the store relies on it)


def test_uuid7_stays_increasing_when_a_millisecond_overflows() -> None:
    # a clock stuck on one millisecond: the 12-bit counter overflows, the time moves on
    values = [uuid7(now_ms=1) for _ in range(10_000)]
    assert all(a.int < b.int for a, b in pairwise(values))


def test_uuid7_embeds_its_millisecond(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ids, "_last_ms", 0)
    monkeypatch.setattr(ids, "_seq", 0)
    value = uuid7(now_ms=1_700_000_000_123)
    assert value.int >> 80 == 1_700_000_000_123
    assert uuid7_time(str(value)) == 1_700_000_000.123


def test_new_task_id_carries_the_time() -> None:
    task_id = new_task_id()
    assert uuid.UUID(task_id).version == 7
    assert abs(uuid7_time(task_id) - time.time()) < 60
    assert task_id == task_id.lower()


@pytest.mark.parametrize(
    "text",
    [
        "0190F2A4-1234-7ABC-8DEF-0123456789AB",
        "{0190f2a4-1234-7abc-8def-0123456789ab}",
        "urn:uuid:0190f2a4-1234-7abc-8def-0123456789ab",
        "0190f2a412347abc8def0123456789ab",
    ],
)
def test_parse_task_id_gives_the_canonical_form(text: str) -> None:
    assert parse_task_id(text) == "0190f2a4-1234-7abc-8def-0123456789ab"


@pytest.mark.parametrize(
    "text", ["", "x", "0190f2a4-1234-7abc-8def-0123456789a", "../etc", None, 5]
)
def test_parse_task_id_refuses_non_uuids(text: object) -> None:
    with pytest.raises(InvalidId) as info:
        parse_task_id(text)  # type: ignore[arg-type]
    assert info.value.status == 400


# -- UPID --------------------------------------------------------------------------------

AWKWARD = [
    "",
    " ",
    ":",
    "/",
    "::",
    "a:b",
    "x/y",
    "has space",
    "tab\there",
    "new\nline",
    "cr\rlf",
    "nbsp\u00a0here",
    "em\u2003space",
    "ünïcödé",
    "vm:100/disk 0",
    "UPID:a:b:",
    "a" * 300,
    "@",
    "root@pam",
    "user@pve!token",
]
NODES = ["pve1", "my_host.example.com", "-", "", "a" * 100, "a" * 62 + "-b", "höst", "1", "_x_"]


@pytest.mark.parametrize("node", NODES)
def test_every_upid_passes_pves_regex(node: str) -> None:
    factory = UpidFactory(node)
    for text in AWKWARD:
        for upid in (
            factory.new(text, text, text, time.time()),
            factory.new("vzdump", text, "root@pam", 0),
            factory.new(text, None, "", 2**40),
            factory.new("t", "", text, -1),
        ):
            assert UPID_RE.match(upid), upid
            decoded = Upid.decode(upid)
            assert decoded.encode() == upid


def test_upid_fields_are_kept_where_pve_allows_them() -> None:
    factory = UpidFactory("pve1")
    upid = Upid.decode(factory.new("qmstart", "100", "root@pam", 1_700_000_000))
    assert (upid.node, upid.type, upid.id, upid.user) == ("pve1", "qmstart", "100", "root@pam")
    assert upid.pid == os.getpid() & 0xFFFF_FFFF
    assert upid.starttime == 1_700_000_000
    awkward = Upid.decode(factory.new("a:b c", "vm/1", "bob", 0))
    assert (awkward.type, awkward.id, awkward.user) == ("a_b_c", "vm_1", "bob@taskgate")
    assert Upid.decode(factory.new("", None, "", 0)).type == "task"
    assert upid_user("") == "anonymous@taskgate"
    assert upid_field("a:b/c d\te") == "a_b_c_d_e"


def test_node_names() -> None:
    assert node_name("pve1.example.com") == "pve1"
    assert node_name("my_host") == "my-host"
    assert node_name("---") == "taskgate"
    assert node_name("a" * 62 + "-b") == "a" * 62  # never ends with '-'
    assert len(node_name("a" * 100)) == 63
    assert node_name()  # this machine


def test_upid_encode_decode_round_trip() -> None:
    rng = random.Random(7)
    alphabet = "abcXYZ019_-.@!~äé€"
    for _ in range(2000):
        upid = Upid(
            node=rng.choice(["n", "pve-1", "a1b2"]),
            pid=rng.randrange(2**32),
            pstart=rng.randrange(2**32),
            starttime=rng.randrange(2**32),
            type="".join(rng.choices(alphabet, k=rng.randint(1, 12))),
            id="".join(rng.choices(alphabet, k=rng.randint(0, 12))),
            user="".join(rng.choices(alphabet, k=rng.randint(1, 12))),
        )
        text = upid.encode()
        assert UPID_RE.match(text)
        assert Upid.decode(text) == upid


@pytest.mark.parametrize(
    "text",
    [
        "",
        "UPID:pve1:0000000A:0000000B:0000000C:type:id:user",  # no trailing ':'
        "UPID:pve1:A:0000000B:0000000C:type:id:user:",
        "UPID:-pve:0000000A:0000000B:0000000C:type:id:user:",
        "UPID:pve1:0000000A:0000000B:0000000C::id:user:",
        "UPID:pve1:0000000A:0000000B:0000000C:type:id::",
        "upid:pve1:0000000A:0000000B:0000000C:type:id:user:",
    ],
)
def test_decode_refuses_what_pve_refuses(text: str) -> None:
    with pytest.raises(InvalidId):
        Upid.decode(text)


def test_upids_of_one_factory_are_unique() -> None:
    factory = UpidFactory("pve1")
    upids = [factory.new("vzdump", "100", "root@pam", 1_700_000_000) for _ in range(20_000)]
    assert len(set(upids)) == len(upids)


def test_a_restarted_factory_makes_new_upids() -> None:
    # a restart in a process with the same pid, within the same second
    first = UpidFactory("pve1")
    a = {first.new("vzdump", "100", "root@pam", 5) for _ in range(5000)}
    second = UpidFactory("pve1")
    b = {second.new("vzdump", "100", "root@pam", 5) for _ in range(5000)}
    assert len(a) == len(b) == 5000
    assert not (a & b)


def test_a_forked_factory_uses_the_new_pid(monkeypatch: pytest.MonkeyPatch) -> None:
    factory = UpidFactory("pve1")
    parent = Upid.decode(factory.new("t", None, "u", 0))
    monkeypatch.setattr(os, "getpid", lambda: 0x1234)
    child = Upid.decode(factory.new("t", None, "u", 0))
    assert child.pid == 0x1234 and parent.pid != 0x1234


_CHILD = """
import sys
from taskgate.ids import UpidFactory
factory = UpidFactory("pve1")
print("\\n".join(factory.new("vzdump", "100", "root@pam", 1_700_000_000) for _ in range(3000)))
"""


def test_upids_are_unique_across_processes_and_restarts() -> None:
    def run_children() -> list[str]:
        children = [
            subprocess.Popen([sys.executable, "-c", _CHILD], stdout=subprocess.PIPE, text=True)
            for _ in range(4)
        ]
        out: list[str] = []
        for child in children:
            stdout, _ = child.communicate(timeout=60)
            assert child.returncode == 0
            out += stdout.split()
        return out

    upids = run_children() + run_children()  # the second round: the "restarted" service
    here = UpidFactory("pve1")
    upids += [here.new("vzdump", "100", "root@pam", 1_700_000_000) for _ in range(3000)]
    assert len(upids) == 9 * 3000
    assert len(set(upids)) == len(upids)
    assert all(UPID_RE.match(u) for u in upids)
