import { api } from "../api";
import { setQuery } from "../router";
import { ActionButton, ActionForm, Choice, Input, Loaded, Page, Select, str, useAsync } from "../ui";

const LIMITERS = ["jobs_create", "diagnosis"];
const SCOPES = ["global", "user", "cluster"];

export function Operations({ query }: { query: URLSearchParams }) {
  const name = query.get("limiter") ?? "jobs_create";
  const scopeType = query.get("scope_type") ?? "";
  const scopeId = query.get("scope_id") ?? "";
  const queue = useAsync(() => api.queue(), []);
  const configs = useAsync(() => api.limiterConfigs(), []);
  const bucket = useAsync(() => api.limiterStatus({ name, scope_type: scopeType || undefined, scope_id: scopeId || undefined }), [name, scopeType, scopeId]);
  return (
    <Page title="Rate limiting & operations">
      <h2>Job queue</h2>
      <Loaded state={queue}>
        {(q) => (
          <>
            <dl class="counts">
              <div><dt>Queued</dt><dd>{q.queue_length ?? "?"}</dd></div>
              <div><dt>In flight</dt><dd>{q.active_workers ?? "?"}</dd></div>
              <div><dt>Delayed</dt><dd>{q.queue_delayed ?? "?"}</dd></div>
              <div><dt>Dead-lettered</dt><dd>{q.dlq_depth ?? "?"}</dd></div>
              {Object.entries(q.jobs_by_status ?? {}).map(([s, n]) => <div key={s}><dt>Jobs {s}</dt><dd>{n}</dd></div>)}
            </dl>
            {q.queue_error ? <p class="error" role="alert">{q.queue_error}</p> : null}
          </>
        )}
      </Loaded>
      <h2>Bucket state</h2>
      <div class="filters" role="search">
        <Select label="Limiter" value={name} options={LIMITERS} onChange={(v) => setQuery({ limiter: v })} />
        <Select label="Scope type" value={scopeType} blank="(shared)" options={SCOPES} onChange={(v) => setQuery({ scope_type: v || undefined })} />
        <Input label="Scope id" value={scopeId} onChange={(e: Event) => setQuery({ scope_id: (e.target as HTMLInputElement).value || undefined })} />
      </div>
      <Loaded state={bucket}>
        {(b) => <dl class="counts" data-testid="bucket"><div><dt>Available</dt><dd>{b.available}</dd></div><div><dt>Capacity</dt><dd>{b.capacity}</dd></div><div><dt>Refill per second</dt><dd>{b.rate_per_sec}</dd></div>{b.scope ? <div><dt>Scope</dt><dd>{b.scope}</dd></div> : null}</dl>}
      </Loaded>
      <h2>Limiter configs (admin)</h2>
      <ActionForm label="Save limiter config" needs="platform" submit={async (d) => {
        const refill = str(d, "refill_rate"), capacity = str(d, "capacity");
        await api.saveLimiterConfig({ name: str(d, "name"), scope_type: str(d, "scope_type"), scope_id: str(d, "scope_id") || undefined,
          refill_rate: refill ? Number(refill) : undefined, capacity: capacity ? Number(capacity) : undefined });
        configs.reload(); bucket.reload();
      }}>
        <Choice label="Limiter name" name="name" options={LIMITERS} />
        <Choice label="Config scope" name="scope_type" options={SCOPES} />
        <Input label="Config scope id" name="scope_id" />
        <Input label="Refill rate (tokens/s)" name="refill_rate" type="number" step="any" />
        <Input label="Capacity (tokens)" name="capacity" type="number" step="1" />
      </ActionForm>
      <Loaded state={configs} empty="No stored overrides: the built-in defaults apply.">
        {(cs) => (
          <table>
            <thead><tr><th>Limiter</th><th>Scope</th><th>Config</th><th><span class="sr-only">Actions</span></th></tr></thead>
            <tbody>{cs.map((c) => <tr key={c.key}><td>{c.name}</td><td>{c.scope}</td><td><code>{JSON.stringify(c.config)}</code></td>
              <td><ActionButton label="Delete" needs="platform" danger confirm={`Delete the override ${c.key}?`} run={async () => { await api.deleteLimiterConfig(c.key); configs.reload(); bucket.reload(); }} /></td></tr>)}</tbody>
          </table>
        )}
      </Loaded>
    </Page>
  );
}
