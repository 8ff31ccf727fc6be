-- A timer whose handler fails is not claimed again before `not_before` (exponential backoff by
-- `attempts`), so a timer that keeps failing neither spins nor holds back the timers due after it.
ALTER TABLE timers ADD COLUMN attempts integer NOT NULL DEFAULT 0, ADD COLUMN not_before timestamptz;
DROP INDEX timers_due;
CREATE INDEX timers_due ON timers (deadline) INCLUDE (not_before);
