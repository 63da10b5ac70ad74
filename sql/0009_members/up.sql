-- Members and roles (issue #15): a person, named by the identity provider's
-- `sub`, is a member of a tenant with a role. The tenant gate finds the
-- member's row in the tenant's own context (RLS: a member row of another
-- tenant is never visible), so membership is checked by the database.
CREATE TABLE members (
    tenant_id   uuid        NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    id          uuid        NOT NULL,
    subject     text        NOT NULL CHECK (char_length(subject) BETWEEN 1 AND 256),
    role        text        NOT NULL CONSTRAINT members_role
                            CHECK (role IN ('owner', 'admin', 'member', 'viewer')),
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, id),
    CONSTRAINT members_tenant_subject UNIQUE (tenant_id, subject)
);

GRANT SELECT, INSERT, UPDATE, DELETE ON members TO tenantry_service;

-- What an API key's exchanged tokens may do: a space-separated list of
-- tenant-plane scopes, never more than its creator's. NULL is a key minted
-- before this migration (or by an older replica): tenant:read tenant:write,
-- what every key's token carried until now.
ALTER TABLE api_keys
    ADD COLUMN scopes text
        CONSTRAINT api_keys_scopes
        CHECK (scopes ~ '^tenant:(read|write|admin)( tenant:(read|write|admin))*$');
