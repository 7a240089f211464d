import { useState } from "preact/hooks";
import { api, type Droplet } from "../api";
import { setQuery } from "../router";
import { ActionButton, ActionForm, Badge, Choice, ErrorMessage, Input, Loaded, Page, Select, Time, str, useAsync, useLiveList } from "../ui";

export function useClusters() {
  return useAsync(() => api.listClusters(), []);
}

export function ClusterPicker({ value, onChange, blank }: { value: string; onChange: (v: string) => void; blank?: string }) {
  const clusters = useClusters();
  return <Select label="Cluster" value={value} blank={blank} options={(clusters.data ?? []).map((c) => [c.id, c.name])} onChange={onChange} />;
}

export function Droplets({ query }: { query: URLSearchParams }) {
  const cluster = query.get("cluster") ?? "";
  // Polled while a droplet is on its way up or down, so its status changes show without a reload.
  const droplets = useLiveList(() => api.listDroplets(cluster || undefined), ["provisioning", "deleting"], [cluster]);
  // The form's choices, the clusters among them, arrive together: the form shows once its cluster can be preselected.
  const allowed = useAsync(async () => {
    const [clusters, regions, sizes, providers, images] = await Promise.all([api.listClusters(),
      ...["region", "size", "provider", "image"].map((f) => api.allowedValues(`CreateDropletRequest.${f}`))]);
    return { clusters: clusters.map((c): [string, string] => [c.id, c.name]), regions, sizes, providers, images };
  }, []);
  const names = new Map(allowed.data?.clusters ?? []);
  return (
    <Page title="Droplets">
      <div class="filters" role="search">
        <ClusterPicker value={cluster} blank="all clusters" onChange={(v) => setQuery({ cluster: v || undefined })} />
      </div>
      <Loaded state={allowed}>
        {(a) => (
          <ActionForm label="Create droplet" submit={async (d) => {
            await api.createDroplet({ name: str(d, "name"), cluster_id: str(d, "cluster_id") || undefined, region: str(d, "region"),
              provider: str(d, "provider"), size: str(d, "size"), image: str(d, "image") });
            droplets.reload();
          }}>
            <Input label="Droplet name" name="name" required />
            <ClusterChoice label="Cluster" name="cluster_id" options={a.clusters} initial={cluster} />
            <Choice label="Region" name="region" options={a.regions} />
            <Choice label="Provider" name="provider" options={a.providers} initial="simulated" />
            <Choice label="Size" name="size" options={a.sizes} />
            <Choice label="Image" name="image" options={a.images} />
          </ActionForm>
        )}
      </Loaded>
      <Loaded state={droplets} empty="No droplets yet.">
        {(ds) => (
          <table>
            <thead><tr><th>Name</th><th>Cluster</th><th>Status</th><th>Region</th><th>Provider</th><th>Size</th><th>IP</th><th>Created</th><th><span class="sr-only">Actions</span></th></tr></thead>
            <tbody>
              {ds.map((d) => (
                <tr key={d.id}>
                  <td>{d.name}<div class="muted small">{d.id}</div></td>
                  <td>{d.cluster_id ? <a href={`#/clusters/${encodeURIComponent(d.cluster_id)}`}>{names.get(d.cluster_id) ?? d.cluster_id}</a> : "—"}</td>
                  <td><Badge status={d.status} /></td><td>{d.region}</td><td>{d.provider}</td><td>{d.size}</td><td>{d.ip_address ?? "—"}</td>
                  <td><Time iso={d.created_at} /></td>
                  <td class="row-actions">
                    <Migrate droplet={d} providers={allowed.data?.providers ?? []} done={droplets.reload} />
                    <ActionButton label="Delete" danger confirm={`Delete droplet ${d.name}?`} run={async () => { await api.deleteDroplet(d.id); droplets.reload(); }} />
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

/** The droplet's cluster, or none (a droplet may stand alone). */
function ClusterChoice({ label, name, options, initial }: { label: string; name: string; options: [string, string][]; initial: string }) {
  return (
    <label class="field"><span>{label}</span>
      <select name={name}>
        <option value="">(none)</option>
        {options.map(([v, t]) => <option key={v} value={v} selected={v === initial}>{t}</option>)}
      </select>
    </label>
  );
}

function Migrate({ droplet, providers, done }: { droplet: Droplet; providers: string[]; done: () => void }) {
  const others = providers.filter((p) => p !== droplet.provider);
  const [target, setTarget] = useState(others[0] ?? "");
  const [note, setNote] = useState<string>();
  const [error, setError] = useState<unknown>();
  if (!others.length) return null;
  return (
    <span class="action">
      <label class="inline"><span class="sr-only">Migrate {droplet.name} to</span>
        <select value={target} onChange={(e) => setTarget((e.target as HTMLSelectElement).value)}>{others.map((p) => <option key={p}>{p}</option>)}</select>
      </label>
      <button type="button" onClick={async () => {
        setError(undefined);
        try { const r = await api.migrateDroplet(droplet.id, target); setNote(r.job_id ? `migration job ${r.job_id}` : "migration started"); done(); } catch (err) { setError(err); }
      }}>Migrate</button>
      {note ? <span class="muted small" role="status">{note}</span> : null}
      <ErrorMessage error={error} />
    </span>
  );
}
