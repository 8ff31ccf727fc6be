-- The audit consumer appends a batch's entries of every tenant in a few statements (audit/consumer.rs):
-- within its transaction it sets app.system = 'audit', which these policies admit to the log's tables,
-- beside each tenant's own policy. The inbox rows stay under each message's tenant; nothing else sets
-- this scope, and it ends with the transaction.
CREATE POLICY audit_appender ON audit_heads USING (current_setting('app.system', true) = 'audit');
CREATE POLICY audit_appender ON audit_entries USING (current_setting('app.system', true) = 'audit');
CREATE POLICY audit_appender ON audit_tree USING (current_setting('app.system', true) = 'audit');
