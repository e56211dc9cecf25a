import json

from typer.testing import CliRunner

from roost.cli import app
from roost.firehose.consumers import Registry
from roost.firehose.log import Log
from tests.conftest import FORMATS_DIR, need
from tests.firehose.conftest import seed_log

runner = CliRunner()


def _roost(ws, *args: str):
    return runner.invoke(app, ["--home", str(ws.home), *args])


def _json(ws, *args: str):
    result = _roost(ws, *args, "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_consumers_add_list_entitle_revoke_audit(fh_ws) -> None:
    added = _json(
        fh_ws, "firehose", "consumers", "add", "acme", "--lang", "en", "--keyword", "#news", "--no-reposts"
    )
    key = added["key"]
    assert key.startswith("rfh_") and added["consumer"]["entitlements"]["reposts"] is False
    assert Registry(fh_ws.consumers_db).authenticate(key).name == "acme"
    listed = _roost(fh_ws, "firehose", "consumers", "list", "--json").stdout
    assert "acme" in listed and key not in listed and key.split("_")[-1] not in listed

    changed = _json(fh_ws, "firehose", "consumers", "entitle", "acme", "--lang", "ja", "--sample", "0.25")
    assert changed["entitlements"]["languages"] == ["ja"] and changed["entitlements"]["sample_rate"] == 0.25
    assert _json(fh_ws, "firehose", "consumers", "revoke", "acme")["revoked_at"]
    actions = [e["action"] for e in _json(fh_ws, "firehose", "consumers", "audit", "acme")]
    assert actions == ["revoke", "entitle", "add"]


def test_consumer_commands_fail_clearly(fh_ws) -> None:
    bad = _roost(fh_ws, "firehose", "consumers", "add", "x", "--lang", "English")
    assert bad.exit_code == 1 and "ISO 639" in bad.output
    missing = _roost(fh_ws, "firehose", "consumers", "revoke", "nobody")
    assert missing.exit_code == 1 and "no consumer named 'nobody'" in missing.output
    _roost(fh_ws, "firehose", "consumers", "add", "twice")
    again = _roost(fh_ws, "firehose", "consumers", "add", "twice")
    assert again.exit_code == 1 and "exists" in again.output


def test_admin_keys(fh_ws) -> None:
    made = _json(fh_ws, "firehose", "admin-key", "create", "--label", "ops")
    assert made["key"].startswith("rfa_")
    key_id = made["admin_key"]["key_id"]
    assert [k["label"] for k in _json(fh_ws, "firehose", "admin-key", "list")] == ["ops"]
    assert Registry(fh_ws.consumers_db).check_admin(made["key"]) is not None
    assert _json(fh_ws, "firehose", "admin-key", "revoke", key_id)["revoked_at"]
    assert Registry(fh_ws.consumers_db).check_admin(made["key"]) is None


def test_status_and_compact(fh_ws) -> None:
    head = seed_log(fh_ws, 500)
    assert _json(fh_ws, "firehose", "status")["head"] == head
    report = _json(fh_ws, "firehose", "compact")
    assert report["horizon"] == 0 and report["posts_dropped"] == 0  # one segment: nothing sealed yet


def test_import_to_log_appends_what_the_importer_reads(fh_ws) -> None:
    source = need(FORMATS_DIR / "twitter_v2_filtered_stream.jsonl")
    report = _json(fh_ws, "import", "--to-log", str(source))
    posts = report["files"][0]["counts"]["posts"]
    events = list(Log(fh_ws.firehose_dir).iter_events())
    assert posts > 0 and sum(1 for e in events if e.type == "post") == posts
    assert [e.seq for e in events] == list(range(len(events)))
    assert not (fh_ws.raw_dir / "raw.db").exists()  # the log, not the raw store
