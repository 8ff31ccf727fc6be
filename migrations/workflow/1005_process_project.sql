-- The catalogue project an instance runs for (from its WorkflowInstanceStarted), so a project lists its
-- workflows (`Project.workflows`). Filled by the projector; a rebuild fills it for every instance.
ALTER TABLE process_state ADD COLUMN project_id uuid;
CREATE INDEX process_state_by_project ON process_state (tenant_id, project_id, updated_at DESC, instance_id DESC)
    WHERE project_id IS NOT NULL;
