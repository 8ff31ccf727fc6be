-- An export cursor moves only as an export records: from the end of the last recorded export to the end of
-- the one just recorded (audit_exports, same transaction). The app role needs UPDATE to move it; without
-- this guard it could move it anywhere — forward past entries never exported (which retention would then
-- drop with their partition) or back (exporting a range twice). A superuser (an operator's repair, a restore)
-- is not held to it.
CREATE FUNCTION audit_export_cursor_moves() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF current_setting('is_superuser') = 'on' THEN
        RETURN NEW;
    END IF;
    IF NEW.tenant_id IS DISTINCT FROM OLD.tenant_id OR NOT EXISTS (
        SELECT 1 FROM audit_exports x
        WHERE x.tenant_id = OLD.tenant_id AND x.from_seq = OLD.exported_to + 1 AND x.to_seq = NEW.exported_to
    ) THEN
        RAISE EXCEPTION 'the audit export cursor of % moves only to the end of the export recorded after it',
            OLD.tenant_id USING ERRCODE = 'check_violation', CONSTRAINT = 'audit_export_cursors_moves';
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER audit_export_cursors_moves BEFORE UPDATE ON audit_export_cursors
    FOR EACH ROW EXECUTE FUNCTION audit_export_cursor_moves();
