-- A usage record is identified by (tenant, occurred-at, meter, idempotency key): the meter was left out, so
-- a record of another meter that happened to share a producer's key and time was dropped as a duplicate.
-- The partition key (occurred_at) stays in the primary key, as partitioned tables require; the partitions
-- take the new key from the parent.
ALTER TABLE usage_records DROP CONSTRAINT usage_records_pkey;
ALTER TABLE usage_records ADD CONSTRAINT usage_records_pkey PRIMARY KEY (tenant_id, occurred_at, meter, idempotency_key);
