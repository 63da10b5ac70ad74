// Type-checked by scripts/ts-client.sh against the types openapi-typescript
// generates from ../openapi.json into ./tenantry.d.ts (not committed). It
// fails when generation yields no usable `paths`, or when the contract a
// TypeScript caller relies on moves: a list page with `next_cursor`, the
// problem+json shape, the bearer-authenticated tenant plane.
import type { components, operations, paths } from "./tenantry";

type Json<R> = R extends { content: { "application/json": infer B } } ? B : never;
type ProblemJson<R> = R extends { content: { "application/problem+json": infer B } } ? B : never;

type Problem = components["schemas"]["Problem"];
type ListUsers = paths["/v1/users"]["get"];
type UsersPage = Json<ListUsers["responses"][200]>;

export const page: UsersPage = {
    items: [
        {
            id: "0192f1d0-0000-7000-8000-000000000000",
            email: "ada@example.com",
            name: "Ada",
            created_at: "2026-01-01T00:00:00Z",
            updated_at: "2026-01-01T00:00:00Z",
        },
    ],
    next_cursor: null,
};

export const query: NonNullable<ListUsers["parameters"]["query"]> = { limit: 20, cursor: "abc" };

export const problem: Problem = {
    type: "https://tenantry.dev/problems/conflict",
    title: "Conflict",
    status: 409,
    detail: "email already in use",
    code: "conflict",
};

// Every tenant-plane error is a Problem.
export const notFound: ProblemJson<operations["get_user"]["responses"]["4XX"]> = problem;

// The dry-run rehearsal (200) and the created user (201) are both described.
type CreateUser = operations["create_user"];
export const created: Json<CreateUser["responses"][201]> = page.items[0];
export const body: NonNullable<CreateUser["requestBody"]>["content"]["application/json"] = {
    email: "ada@example.com",
};
