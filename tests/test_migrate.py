"""`engram migrate`: a whole store, every tenant, to another store, losslessly; and exports
that carry vectors."""

from __future__ import annotations

import io
import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from click.testing import CliRunner

from engramdb import Memory, access
from engramdb.cli import main
from engramdb.embedders.test import TestEmbedder
from engramdb.migrate import check, migrate


class CountingEmbedder(TestEmbedder):
    """The test embedder, counting the texts it embeds: a migration must embed none."""

    def __init__(self) -> None:
        super().__init__()
        self.texts = 0

    def embed_batch(self, texts: Sequence[str]) -> np.ndarray:
        self.texts += len(texts)
        return super().embed_batch(texts)


def _fill(path: Path) -> dict[str, str]:
    with Memory(path, embedder="test") as mem:
        mem.add(
            [
                {"role": "user", "content": "I live in Lisbon.", "timestamp": "2024-01-10"},
                {
                    "role": "user",
                    "content": "My sister Inês is a doctor.",
                    "timestamp": "2024-01-11",
                },
                {
                    "role": "user",
                    "content": "I moved to Porto yesterday!",
                    "timestamp": "2024-05-29",
                },
            ],
            user_id="maya",
            session_id="s1",
        )
        (bob,) = mem.add("I work at Globex.", user_id="bob", agent_id="bot")
        mem.update(bob, "I work at Initech.")
        gone = mem.add("forget me", user_id="bob", agent_id="bot")[0]
        mem.delete(gone)
        acme = mem.for_tenant("acme")
        (kept,) = acme.add("acme private note", user_id="x")
        acme.archive(kept)
        _, token = access.create_key(acme, "writer")
        access.create_webhook(acme, "http://127.0.0.1:9/hook")
    return {"token": token, "bob": bob}


def _export(mem: Memory) -> list[str]:
    out = io.StringIO()
    mem.export(out)
    return out.getvalue().splitlines()[1:]


def test_a_store_moves_whole_and_the_check_finds_it_equal(tmp_path: Path) -> None:
    made = _fill(tmp_path / "a.db")
    counting = CountingEmbedder()
    with (
        Memory(tmp_path / "a.db", embedder="test") as src,
        Memory(tmp_path / "b.db", embedder=counting, consolidate="off") as dst,
    ):
        report = migrate(src, dst, verify=False)
        assert counting.texts == 0  # vectors moved, not computed again
        check(src, dst, report)  # (its searches embed their queries)
        assert report.exports_equal and report.search_agreement == 1.0 and not report.problems
        assert set(report.tenants) == {"default", "acme"}
        for tenant in ("default", "acme"):
            a, b = src.for_tenant(tenant), dst.for_tenant(tenant)
            assert _export(a) == _export(b)
            assert [(e.memory_id, e.event, e.after) for e in a.events(limit=1000)] == [
                (e.memory_id, e.event, e.after) for e in b.events(limit=1000)
            ]
        assert [e.event for e in dst.history(made["bob"])] == ["create", "update"]
        moved = dst.facts(user_id="maya", include_expired=True).items
        assert {(f.value, f.valid_to is None) for f in moved} >= {
            ("Lisbon", False),
            ("Porto", True),
        }
        assert dst.for_tenant("acme").list(user_id="x").items[0].archived_at is not None
        key = access.authenticate(dst, made["token"])  # the same key works on the new store
        assert (key.tenant, key.role) == ("acme", "writer")
        assert [h.url for h, _ in access.webhooks(dst.for_tenant("acme"))] == [
            "http://127.0.0.1:9/hook"
        ]
        again = migrate(src, dst)  # an interrupted migration is simply run again
        assert again.exports_equal and all(t["records"] == 0 for t in again.tenants.values())


def test_the_command_reports_and_refuses_nothing_silently(tmp_path: Path) -> None:
    _fill(tmp_path / "a.db")
    result = CliRunner().invoke(
        main,
        ["migrate", "--from", str(tmp_path / "a.db"), "--to", f"sqlite:///{tmp_path / 'c.db'}",
         "--json"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["exports_equal"] is True and report["tenants"]["acme"]["api_keys"] == 1
    bad = CliRunner().invoke(main, ["migrate", "--from", "nosuch://x", "--to", "y.db"])
    assert bad.exit_code == 1 and "nosuch://" in bad.output


def test_an_export_with_vectors_imports_without_embedding(tmp_path: Path) -> None:
    with Memory(tmp_path / "a.db", embedder="test") as src:
        src.add(["I moved to Porto.", "I love sushi."], user_id="maya")
        out = io.StringIO()
        src.export(out, vectors=True)
    records = [json.loads(line) for line in out.getvalue().splitlines()]
    assert all("embedding" in r for r in records[1:])
    counting = CountingEmbedder()
    with Memory(tmp_path / "b.db", embedder=counting, consolidate="off") as dst:
        dst.import_records(records)
        assert counting.texts == 0 and dst.stats()["jobs_pending"] == 0
        assert dst.search("Porto", user_id="maya")[0].text.startswith("Maya lives in Porto")
    other = CountingEmbedder()
    other.name = "test:another-model"  # vectors of another model are embedded again
    with Memory(tmp_path / "c.db", embedder=other, consolidate="off") as dst:
        dst.import_records(records)
        assert other.texts == len(records) - 1
