"""deploy/prometheus/alerts.yml (SPEC §13): valid for Prometheus (`promtool check
rules`), each alert proven by its unit tests (`promtool test rules`), and written
against metrics /metrics really exports. promtool comes from Debian's prometheus
package (`scripts/system-packages.sh test` installs it)."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from analytics.tasks import ROLLUP_LOCK
from echonest_analytics.locks import job_lock
from streams.aggregation import LOCK_NAME as AGGREGATION_LOCK

from .test_metrics import TOKEN, playback_batch, scrape, stream_make

RULES_DIR = Path(__file__).resolve().parents[2] / "deploy" / "prometheus"
RULES = RULES_DIR / "alerts.yml"


def promtool(*args: str) -> subprocess.CompletedProcess:
    binary = shutil.which("promtool")
    assert binary, "promtool is missing: run scripts/system-packages.sh test (Debian prometheus)"
    return subprocess.run(
        [binary, *args], cwd=RULES_DIR, capture_output=True, text=True, timeout=60
    )


def test_the_alert_rules_pass_promtool_check_rules():
    result = promtool("check", "rules", str(RULES))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS: 6 rules found" in result.stdout


def test_promtool_check_rules_refuses_a_broken_rule(tmp_path):
    broken = tmp_path / "broken.yml"
    broken.write_text(RULES.read_text().replace("> 0.01", "> > 0.01", 1))
    assert promtool("check", "rules", str(broken)).returncode != 0


def test_each_alert_fires_and_stays_quiet_as_its_unit_tests_say():
    result = promtool("test", "rules", "alerts.test.yml")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


@pytest.mark.django_db
def test_the_rules_use_only_metrics_that_metrics_exports(client, settings):
    settings.METRICS_TOKEN = TOKEN
    stream_make()
    client.post("/analytics/events", playback_batch("launch-party", 1), content_type="text/plain")
    client.post("/analytics/events", b"[]", content_type="text/plain")
    client.get("/api/analytics/usage")
    with job_lock(ROLLUP_LOCK):
        pass
    with pytest.raises(RuntimeError), job_lock(AGGREGATION_LOCK):
        raise RuntimeError("failed run")
    exported = {name for name, _ in scrape(client)}
    used = set(re.findall(r"\bechonest_[a-z_]+", RULES.read_text()))
    assert {"echonest_aggregation_lag_seconds", "echonest_open_alerts"} <= used
    assert used <= exported, sorted(used - exported)
    # The job names the rules pick are the jobs' own.
    assert f'job_name="{ROLLUP_LOCK}"' in RULES.read_text()
    assert f'job_name="{AGGREGATION_LOCK}"' in RULES.read_text()
