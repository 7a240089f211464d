// Sign-in, API keys and the audit log (issue 13).
import { useState } from "preact/hooks";
import { api, session, type WhoAmI } from "../api";
import { setQuery } from "../router";
import { ActionButton, ActionForm, Badge, Choice, ErrorMessage, Input, Loaded, Page, Time, str, useAsync } from "../ui";

/** Paste an API key; it is kept in this tab's sessionStorage only, and checked with GET /auth/whoami. */
export function SignIn({ onSignedIn }: { onSignedIn: (who: WhoAmI) => void }) {
  const [error, setError] = useState<unknown>();
  const [busy, setBusy] = useState(false);
  const submit = async (e: Event) => {
    e.preventDefault();
    const key = str(new FormData(e.currentTarget as HTMLFormElement), "api_key");
    setBusy(true);
    setError(undefined);
    try { onSignedIn(await session.signIn(key)); } catch (err) { setError(err); } finally { setBusy(false); }
  };
  return (
    <Page title="Sign in">
      <p>Paste an API key (<code>cgk_…</code>). An admin creates one on the <em>API keys</em> page, or on the
        machine with <code>./dev apikey create --tenant T --role R</code>; the stack's first admin key is in
        <code>.local/admin.key</code>. The key stays in this browser tab only and is sent with every request.</p>
      <form class="action-form" onSubmit={submit} aria-label="Sign in">
        <fieldset disabled={busy}>
          <Input label="API key" name="api_key" type="password" autoComplete="off" required />
          <button type="submit">{busy ? "Checking…" : "Sign in"}</button>
        </fieldset>
        <ErrorMessage error={error} />
      </form>
    </Page>
  );
}

const ROLES = ["viewer", "operator", "admin"];

export function ApiKeys() {
  const keys = useAsync(() => api.listKeys(), []);
  const [secret, setSecret] = useState<{ name: string; value: string } | null>(null);
  return (
    <Page title="API keys">
      <h2>Create a key</h2>
      <ActionForm label="Create key" needs="admin" submit={async (d) => {
        const tenant = str(d, "tenant");
        const created = await api.createKey({ role: str(d, "role"), name: str(d, "name") || "console", tenant: tenant || undefined });
        setSecret({ name: created.key.name, value: created.secret });
        keys.reload();
      }}>
        <Input label="Name" name="name" required />
        <Choice label="Role" name="role" options={ROLES} initial="viewer" />
        {session.can("platform") ? <Input label="Tenant (empty: yours)" name="tenant" /> : null}
      </ActionForm>
      {secret ? (
        <div class="secret" role="status" data-testid="new-secret">
          <p>The key <strong>{secret.name}</strong>: copy it now, it is not shown again.</p>
          <code>{secret.value}</code>
          <button type="button" onClick={() => setSecret(null)}>Done</button>
        </div>
      ) : null}
      <h2>Keys</h2>
      <Loaded state={keys} empty="No keys.">
        {(ks) => (
          <table>
            <thead><tr><th>Name</th><th>Prefix</th><th>Tenant</th><th>Role</th><th>Last used</th><th>State</th><th><span class="sr-only">Actions</span></th></tr></thead>
            <tbody>{ks.map((k) => (
              <tr key={k.id} data-key-id={k.id}>
                <td>{k.name}</td><td><code>cgk_{k.prefix}_…</code></td><td>{k.tenant}</td><td>{k.role}</td>
                <td>{k.last_used_at ? <Time iso={k.last_used_at} /> : "never"}</td>
                <td>{k.revoked_at ? <Badge status="revoked" /> : <Badge status="active" />}</td>
                <td>{k.revoked_at ? null : <ActionButton label="Revoke" needs="admin" danger confirm={`Revoke the key ${k.name}? Calls with it stop within seconds.`}
                  run={async () => { await api.revokeKey(k.id); keys.reload(); }} />}</td>
              </tr>
            ))}</tbody>
          </table>
        )}
      </Loaded>
    </Page>
  );
}

export function Audit({ query }: { query: URLSearchParams }) {
  const principal = query.get("principal") ?? "";
  const resource = query.get("resource_id") ?? "";
  const before = query.get("before_id") ?? "";
  const page = useAsync(() => api.audit({ principal: principal || undefined, resource_id: resource || undefined,
    before_id: before ? Number(before) : undefined, limit: 50 }), [principal, resource, before]);
  return (
    <Page title="Audit log">
      <div class="filters" role="search">
        <Input label="Principal" value={principal} onChange={(e: Event) => setQuery({ principal: (e.target as HTMLInputElement).value || undefined, before_id: undefined })} />
        <Input label="Resource id" value={resource} onChange={(e: Event) => setQuery({ resource_id: (e.target as HTMLInputElement).value || undefined, before_id: undefined })} />
      </div>
      <Loaded state={page} isEmpty={(p) => p.entries.length === 0} empty="No mutations recorded.">
        {(p) => (
          <>
            <table data-testid="audit">
              <thead><tr><th>When</th><th>Who</th><th>Tenant</th><th>What</th><th>Resource</th><th>Outcome</th></tr></thead>
              <tbody>{p.entries.map((e) => (
                <tr key={e.id}><td><Time iso={e.occurred_at} /></td><td><code>{e.principal}</code> ({e.role})</td><td>{e.tenant}</td>
                  <td>{e.action}</td><td>{e.resource_id ? <code>{e.resource_id}</code> : ""}</td><td>{e.outcome}</td></tr>
              ))}</tbody>
            </table>
            {p.next_before_id ? <p><a href="#" onClick={(ev) => { ev.preventDefault(); setQuery({ before_id: String(p.next_before_id) }); }}>Older entries</a></p> : null}
          </>
        )}
      </Loaded>
    </Page>
  );
}
