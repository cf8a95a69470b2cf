"""A failed export run is announced with the job, the partition, the export's own error text and a link; no data."""

from __future__ import annotations

import datetime as dt

import pytest
from dagster import DagsterEventType, build_run_status_sensor_context
from dagster_msteams import MSTeamsResource

from esr_export_dagster.alerts import AlertChannelsResource
from esr_export_dagster.sensors import export_run_failure_alert

from .alert_servers import RecordingServer
from .conftest import each_stream

pytestmark = [pytest.mark.integration, each_stream]


def test_a_failed_run_is_announced_with_a_link_and_no_stack_trace(harness, tmp_path):
    (record,) = harness.add_due("NTH", dt.date(2021, 7, 31))
    blocker = tmp_path / "file-in-the-way"
    blocker.write_text("")
    result = harness.run(dt.date(2021, 7, 31), "NTH", export_dir=blocker / "export")
    assert not result.success
    run = harness.instance.get_run_by_id(result.run_id)
    failure = next(
        entry.dagster_event
        for entry in harness.instance.all_logs(result.run_id)
        if entry.dagster_event and entry.dagster_event.event_type == DagsterEventType.RUN_FAILURE
    )

    with RecordingServer() as teams:
        harness.alert_channels = AlertChannelsResource(teams=MSTeamsResource(hook_url=teams.url))
        with build_run_status_sensor_context(
            sensor_name="export_run_failure_alert",
            dagster_event=failure,
            dagster_instance=harness.instance,
            dagster_run=run,
            resources=harness.resources(),
        ) as context:
            export_run_failure_alert(context.for_run_failure())

    (text,) = teams.received
    name = harness.stream.name
    assert f"ESR export run failed: job daily_{name}_export_job, partition 2021-07-31|NTH." in text
    assert f"{name}_export_file.open_{name}_export_batches: Opening the export batch failed: ESR_EXPORT_DIR" in text
    assert "is not writable" in text
    # It claims nothing it has not checked.
    assert "no file number was lost" not in text
    assert f"http://dagster.example:3000/runs/{result.run_id}" in text
    assert "Traceback" not in text
    personal = record["applicant"]["lastName"] if "applicant" in record else record["nextAppointmentTraineeLastName"]
    assert personal not in text
