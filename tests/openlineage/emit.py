"""Reports one run of a job to the control plane with the real OpenLineage client (its HTTP transport,
pointed at the public endpoint): START, then COMPLETE with the datasets' schema and the output's column
lineage. Usage: emit.py <public base URL> <bearer token> <run id>. Exits non-zero if any emit fails."""

import sys
from datetime import datetime, timezone

from openlineage.client import OpenLineageClient
from openlineage.client.event_v2 import InputDataset, Job, OutputDataset, Run, RunEvent, RunState
from openlineage.client.facet_v2 import column_lineage_dataset, schema_dataset
from openlineage.client.transport.http import ApiKeyTokenProvider, HttpConfig, HttpTransport

PRODUCER = "https://github.com/control-plane/tests/openlineage"
NAMESPACE = "postgres://warehouse:5432"


def schema(*columns):
    return schema_dataset.SchemaDatasetFacet(
        fields=[schema_dataset.SchemaDatasetFacetFields(name=name, type=kind) for name, kind in columns]
    )


def main(url, token, run_id):
    config = HttpConfig(url=url, endpoint="api/v1/lineage", auth=ApiKeyTokenProvider({"apiKey": token}))
    client = OpenLineageClient(transport=HttpTransport(config))
    job = Job(namespace="etl", name="orders.daily_totals")
    orders = InputDataset(
        namespace=NAMESPACE,
        name="public.orders",
        facets={"schema": schema(("id", "BIGINT"), ("amount", "NUMERIC"), ("placed_at", "TIMESTAMP"))},
    )
    lineage = column_lineage_dataset.ColumnLineageDatasetFacet(
        fields={
            "day": column_lineage_dataset.Fields(
                inputFields=[column_lineage_dataset.InputField(namespace=NAMESPACE, name="public.orders", field="placed_at")]
            ),
            "total": column_lineage_dataset.Fields(
                inputFields=[column_lineage_dataset.InputField(namespace=NAMESPACE, name="public.orders", field="amount")]
            ),
        }
    )
    totals = OutputDataset(
        namespace=NAMESPACE,
        name="public.daily_totals",
        facets={"schema": schema(("day", "DATE"), ("total", "NUMERIC")), "columnLineage": lineage},
    )
    for state in (RunState.START, RunState.COMPLETE):
        event = RunEvent(
            eventType=state,
            eventTime=datetime.now(timezone.utc).isoformat(),
            run=Run(runId=run_id),
            job=job,
            producer=PRODUCER,
            inputs=[orders],
            outputs=[totals],
        )
        client.emit(event)


if __name__ == "__main__":
    main(*sys.argv[1:4])
