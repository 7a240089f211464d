import { useState } from "preact/hooks";
import { api, type Cluster, type Diagnosis } from "../api";
import { navigate, setQuery } from "../router";
import { ActionButton, ActionForm, Badge, Choice, useAllowed, useLiveList, ErrorMessage, Input, Loaded, Page, Select, Time, str, useAsync } from "../ui";

export function useRegions() {
  return useAsync(() => api.allowedValues("CreateClusterRequest.region"), []);
}

export function Clusters({ query }: { query: URLSearchParams }) {
  const q = query.get("q") ?? "";
  const status = query.get("status") ?? "";
  // Polled while a cluster is being deleted (its droplets are terminated by jobs first), so it leaves the list by itself.
  const clusters = useLiveList(() => api.listClusters(), ["deleting"], []);
  const regions = useRegions();
  const [editing, setEditing] = useState<string>();
  const statuses = useAllowed("Cluster.status", "UpdateClusterRequest.status");
  const shown = (clusters.data ?? []).filter((c) => (!status || c.status === status) &&
    (!q || `${c.name} ${c.id} ${c.region}`.toLowerCase().includes(q.toLowerCase())));
  return (
    <Page title="Clusters">
      <ActionForm label="Create cluster" submit={async (d) => {
        const cluster = await api.createCluster({ name: str(d, "name"), region: str(d, "region") });
        navigate(`/clusters/${encodeURIComponent(cluster.id)}`);
      }}>
        <Input label="Name" name="name" required />
        <Choice label="Region" name="region" options={regions.data ?? []} />
      </ActionForm>
      <div class="filters" role="search">
        <Input label="Search" type="search" value={q} placeholder="name, id or region"
          onInput={(e: Event) => setQuery({ q: (e.target as HTMLInputElement).value || undefined }, true)} />
        <Select label="Status" value={status} blank="any status" options={statuses} onChange={(v) => setQuery({ status: v || undefined })} />
      </div>
      <Loaded state={clusters} empty="No clusters yet: create one above.">
        {() => shown.length === 0 ? <p class="empty">No cluster matches these filters.</p> : (
          <table>
            <thead><tr><th>Name</th><th>Region</th><th>Status</th><th>Droplets</th><th>Last checked</th><th><span class="sr-only">Actions</span></th></tr></thead>
            <tbody>
              {shown.map((c) => editing === c.id
                ? <EditRow key={c.id} cluster={c} regions={regions.data ?? []} statuses={statuses} done={() => { setEditing(undefined); clusters.reload(); }} />
                : (
                  <tr key={c.id}>
                    <td><a href={`#/clusters/${encodeURIComponent(c.id)}`}>{c.name}</a><div class="muted small">{c.id}</div></td>
                    <td>{c.region}</td><td><Badge status={c.status} /></td><td>{c.droplets?.length ?? 0}</td><td><Time iso={c.last_checked} /></td>
                    <td class="row-actions">
                      <button type="button" onClick={() => setEditing(c.id)}>Edit <span class="sr-only">{c.name}</span></button>
                      <ActionButton label={`Delete`} danger confirm={`Delete cluster ${c.name}? Its droplets go with it.`}
                        run={async () => { await api.deleteCluster(c.id); clusters.reload(); }} />
                    </td>
                  </tr>
                ))}
            </tbody>
          </table>
        )}
      </Loaded>
    </Page>
  );
}

function EditRow({ cluster, regions, statuses, done }: { cluster: Cluster; regions: string[]; statuses: string[]; done: () => void }) {
  const [name, setName] = useState(cluster.name);
  const [region, setRegion] = useState(cluster.region);
  const [status, setStatus] = useState(cluster.status);
  const [error, setError] = useState<unknown>();
  const save = async (e: Event) => {
    e.preventDefault();
    try {
      await api.updateCluster(cluster.id, { name, region, status, version: cluster.version });
      done();
    } catch (err) { setError(err); }
  };
  return (
    <tr><td colSpan={6}>
      <form class="action-form" onSubmit={save} aria-label={`Edit ${cluster.name}`}>
        <Input label="Name" value={name} onInput={(e: Event) => setName((e.target as HTMLInputElement).value)} required />
        <Select label="Region" value={region} options={regions.length ? regions : [region]} onChange={setRegion} />
        <Select label="Status" value={status} options={statuses} onChange={setStatus} />
        <button type="submit">Save</button> <button type="button" onClick={done}>Cancel</button>
        <ErrorMessage error={error} />
      </form>
    </td></tr>
  );
}

export function ClusterDetail({ id }: { id: string }) {
  const cluster = useAsync(() => api.getCluster(id), [id]);
  const droplets = useAsync(() => api.listDroplets(id), [id]);
  const health = useAsync(() => api.health(id), [id]);
  const metrics = useAsync(() => api.listMetrics({ cluster_id: id, page_size: 20 }), [id]);
  const billing = useAsync(() => api.billing(id), [id]);
  const policies = useAsync(() => api.listPolicies(id), [id]);
  const deployments = useAsync(() => api.listDeployments(id), [id]);
  const [diagnosis, setDiagnosis] = useState<Diagnosis>();
  const latest = new Map<string, { value: number; unit: string; timestamp: string }>();
  for (const m of metrics.data?.metrics ?? []) if (!latest.has(m.type)) latest.set(m.type, m);
  const enc = encodeURIComponent(id);
  return (
    <Page title={cluster.data ? `Cluster ${cluster.data.name}` : "Cluster"}>
      <Loaded state={cluster}>
        {(c) => (
          <dl class="facts">
            <div><dt>Id</dt><dd>{c.id}</dd></div><div><dt>Region</dt><dd>{c.region}</dd></div>
            <div><dt>Status</dt><dd><Badge status={c.status} /></dd></div><div><dt>Last checked</dt><dd><Time iso={c.last_checked} /></dd></div>
          </dl>
        )}
      </Loaded>
      {cluster.error ? null : (
        <div class="grid2">
          <section aria-labelledby="h-health" class="card">
            <h2 id="h-health">Health and diagnosis</h2>
            <Loaded state={health}>
              {(h) => <><p><Badge status={h.status} /> checked <Time iso={h.timestamp} /></p>
                {h.issues.length ? <ul>{h.issues.map((i) => <li key={i}>{i}</li>)}</ul> : <p class="muted">No issues.</p>}</>}
            </Loaded>
            <ActionButton label="Run diagnosis" needs="viewer" run={async () => setDiagnosis(await api.diagnose(id))} />
            {diagnosis ? (
              <div data-testid="diagnosis">
                <h3>Insights</h3><ul>{diagnosis.insights.map((i) => <li key={i}>{i}</li>)}</ul>
                <h3>Recommendations</h3><ul>{diagnosis.recommendations.map((i) => <li key={i}>{i}</li>)}</ul>
              </div>
            ) : null}
          </section>
          <section aria-labelledby="h-latest" class="card">
            <h2 id="h-latest">Latest metrics</h2>
            <Loaded state={metrics} isEmpty={() => latest.size === 0} empty="No metrics recorded yet.">
              {() => <dl class="counts">{[...latest.entries()].map(([t, m]) => <div key={t}><dt>{t}</dt><dd>{m.value.toFixed(1)} {m.unit}</dd></div>)}</dl>}
            </Loaded>
            <p><a href={`#/metrics?cluster=${enc}`}>Charts</a></p>
          </section>
          <section aria-labelledby="h-billing" class="card">
            <h2 id="h-billing">Billing</h2>
            <Loaded state={billing}>
              {(b) => <dl class="counts"><div><dt>Per hour</dt><dd>${b.hourly_cost}</dd></div><div><dt>Per month</dt><dd>${b.monthly_cost}</dd></div>
                {b.accrued_cost ? <div><dt>Accrued</dt><dd>${b.accrued_cost}</dd></div> : null}</dl>}
            </Loaded>
          </section>
          <section aria-labelledby="h-policies" class="card">
            <h2 id="h-policies">Autoscaling policies</h2>
            <Loaded state={policies} empty="No policies.">
              {(ps) => <ul>{ps.map((p) => <li key={p.id}>{p.name} ({p.type}, {p.min_replicas}–{p.max_replicas}) {p.enabled ? "" : "disabled"}</li>)}</ul>}
            </Loaded>
            <p><a href={`#/autoscaling?cluster=${enc}`}>Manage policies</a></p>
          </section>
          <section aria-labelledby="h-deps" class="card">
            <h2 id="h-deps">Deployments</h2>
            <Loaded state={deployments} empty="No deployments.">
              {(ds) => <ul>{ds.slice(0, 5).map((d) => <li key={d.id}>{d.version} ({d.strategy}) <Badge status={d.status} /></li>)}</ul>}
            </Loaded>
            <p><a href={`#/deployments?cluster=${enc}`}>Manage deployments</a></p>
          </section>
        </div>
      )}
      <h2>Droplets</h2>
      <Loaded state={droplets} empty="No droplets in this cluster.">
        {(ds) => (
          <table>
            <thead><tr><th>Name</th><th>Status</th><th>Provider</th><th>Size</th><th>IP</th><th>Created</th></tr></thead>
            <tbody>{ds.map((d) => <tr key={d.id}><td>{d.name}</td><td><Badge status={d.status} /></td><td>{d.provider}</td><td>{d.size}</td><td>{d.ip_address ?? "—"}</td><td><Time iso={d.created_at} /></td></tr>)}</tbody>
          </table>
        )}
      </Loaded>
      <p><a href={`#/droplets?cluster=${enc}`}>Add or manage droplets</a> · <a href={`#/jobs?cluster=${enc}`}>Jobs for this cluster</a></p>
    </Page>
  );
}
