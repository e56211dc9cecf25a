"""`roost ads ...` through the real command line (in process): a campaign with money written as
amounts, a creative checked like generated copy, refusals that say why, and the audit."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from roost.cli import app


def test_a_campaign_from_the_command_line(ws) -> None:
    runner = CliRunner()

    def roost(*args: str):
        return runner.invoke(app, ["--home", str(ws.home), "ads", *args])

    made = roost("advertisers", "add", "Stride", "--json")
    assert made.exit_code == 0, made.output
    advertiser = json.loads(made.stdout)["id"]
    campaign = roost(
        "campaigns", "add", "--advertiser", str(advertiser), "--name", "spring", "--bid", "0.80",
        "--daily-budget", "50", "--total-budget", "500.000001", "--keyword", "running", "--lang", "en",
        "--block", "violence", "--url", "https://stride.example/spring", "--json",
    )  # fmt: skip
    assert campaign.exit_code == 0, campaign.output
    fields = json.loads(campaign.stdout)
    assert (fields["bid_micros"], fields["daily_budget_micros"], fields["total_budget_micros"]) == (
        800_000,
        50_000_000,
        500_000_001,
    )
    cid = str(fields["id"])

    text = "Stride shoes: light and quick for your morning run in the park https://stride.example/spring"
    assert roost("creatives", "add", cid, text).exit_code == 0
    refused = roost("creatives", "add", cid, "Guaranteed to make you faster https://stride.example/spring")
    assert refused.exit_code != 0 and "blocked claim" in refused.output
    listed = json.loads(roost("creatives", "list", cid, "--json").stdout)
    assert [c["text"] for c in listed] == [text]

    bad = roost("campaigns", "add", "--advertiser", str(advertiser), "--name", "x", "--bid", "0.1234567",
                "--daily-budget", "1", "--total-budget", "1", "--url", "https://x.example")  # fmt: skip
    assert bad.exit_code != 0 and "6 decimal places" in bad.output
    assert roost("campaigns", "pause", cid).exit_code == 0
    assert json.loads(roost("campaigns", "show", cid, "--json").stdout)["status"] == "paused"
    assert roost("campaigns", "show", "99").exit_code != 0
    audit = roost("audit", "--json")
    assert audit.exit_code == 0 and json.loads(audit.stdout) == {"problems": []}
    safety = json.loads(roost("safety", "Flooding in Leeds, homes evacuated", "--json").stdout)
    assert safety["categories"] == ["disasters"]
