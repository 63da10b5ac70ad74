-- A slug is never an id. `/v1/admin/tenants/{id_or_slug}` reads a key that
-- parses as a UUID as an id, so a slug shaped like one (another tenant's id)
-- could be mistaken for that tenant. `Slug::parse` refuses such slugs; this
-- is the database's own refusal, the forms the service parses as UUIDs
-- (simple, hyphenated, braced, URN; any case).
--
-- NOT VALID: a deployment that already holds such a slug still migrates
-- (that tenant stays reachable by its id); every new or changed row is
-- checked.
ALTER TABLE tenants ADD CONSTRAINT tenants_slug_not_uuid CHECK (
    slug !~* '^([0-9a-f]{32}|[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|[{][0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}[}]|urn:uuid:[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})$'
) NOT VALID;
