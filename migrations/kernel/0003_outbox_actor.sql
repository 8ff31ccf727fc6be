-- Who acted: the principal (token subject) whose request or command caused the event. It travels beside
-- the envelope in the `cs-actor` broker header — the envelope's keys are fixed — so the relay reads it here.
ALTER TABLE outbox ADD COLUMN actor text;
