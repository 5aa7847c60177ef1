"""The WorkflowRun aggregate: events, errors, replay checks, snapshots, properties."""
