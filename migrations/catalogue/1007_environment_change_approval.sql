-- The approval a pending prod change waits for: the event id of the `RequestApproval` command catalogue sent
-- for it. Governance's answer carries that id as its causation, and catalogue acts only on the answer to the
-- command it sent — never on an outcome of a request someone else opened about the same change. Changes
-- recorded before this column (NULL) are matched by their subject alone, as they were.
ALTER TABLE environment_changes ADD COLUMN approval_request text;
