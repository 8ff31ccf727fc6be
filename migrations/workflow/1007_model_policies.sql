-- Governance's model policies, as its `ModelPolicyPublished` and `ModelPolicyDeprecated` events carry them
-- (each version whole): the versions in force decide which models an agent task may use and how many
-- tokens, by the rules of `kernel::contracts::governance::models` (the most specific level covering the
-- task's project and skill decides; none covering it denies). A published version is immutable, so a
-- redelivered event writes what is there; a deprecation that arrives before its publication leaves a
-- row that stays deprecated.
CREATE TABLE model_policies (
    tenant_id              text        NOT NULL,
    model_policy_id        uuid        NOT NULL,
    name                   text        NOT NULL,
    version                integer     NOT NULL,
    project_id             uuid,
    skill_key              text,
    allowed                jsonb       NOT NULL DEFAULT '[]' CHECK (jsonb_typeof(allowed) = 'array'),
    max_tokens_per_task    integer,
    max_cost_per_day_cents bigint,
    deprecated             boolean     NOT NULL DEFAULT false,
    updated_at             timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT model_policies_pkey PRIMARY KEY (tenant_id, model_policy_id)
);
CREATE INDEX model_policies_in_force ON model_policies (tenant_id, model_policy_id) WHERE NOT deprecated;
SELECT cp_tenant_rls('model_policies');
SELECT cp_grant_app('SELECT, INSERT, UPDATE', 'model_policies');

-- The model policies that decided for a task when it was first offered to its pool (its terms): its
-- completion is checked against them. `[]` while it waits for a policy to cover it; NULL for a task offered
-- before workflow kept terms (not checked).
ALTER TABLE agent_tasks
    ADD COLUMN model_policies jsonb CHECK (jsonb_typeof(model_policies) = 'array');
