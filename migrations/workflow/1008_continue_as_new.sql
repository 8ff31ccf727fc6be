-- Continue-as-new: an instance whose history grew long ends as `ContinuedAsNew` and goes on as a new
-- instance (`WorkflowContinuedAsNew` names it).
ALTER TABLE process_state DROP CONSTRAINT process_state_status_check;
ALTER TABLE process_state ADD CONSTRAINT process_state_status_check
    CHECK (status IN ('Created', 'Running', 'AssigningTask', 'AwaitingAgent', 'AwaitingApproval', 'Waiting',
                      'Compensating', 'Completed', 'Failed', 'Cancelled', 'ContinuedAsNew'));
