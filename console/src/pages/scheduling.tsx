import { useState } from "preact/hooks";
import { api, type Placement } from "../api";
import { ActionForm, Badge, Field, Loaded, Page, str, useAsync } from "../ui";
import { useClusters } from "./droplets";

export function Scheduling(_: { query: URLSearchParams }) {
  const providers = useAsync(() => api.listProviders(), []);
  const clusters = useClusters();
  const [placement, setPlacement] = useState<Placement>();
  const names = (providers.data ?? []).map((p) => p.name);
  return (
    <Page title="Providers & scheduling">
      <h2>Provider catalogue</h2>
      <Loaded state={providers} empty="No providers in the catalogue.">
        {(ps) => (
          <table>
            <thead><tr><th>Provider</th><th>Regions</th><th>Sizes</th><th>Used / capacity</th><th>$ per hour</th></tr></thead>
            <tbody>{ps.map((p) => <tr key={p.name}><td>{p.name}</td><td>{(p.regions ?? []).join(", ")}</td><td>{(p.classes ?? []).join(", ")}</td><td>{p.used} / {p.capacity}</td><td>{p.price_per_hour}</td></tr>)}</tbody>
          </table>
        )}
      </Loaded>
      <h2>Placement simulation</h2>
      <ActionForm label="Simulate placement" submit={async (d) => {
        setPlacement(undefined);
        setPlacement(await api.schedule({ cluster_id: str(d, "cluster_id"), preferred_provider: str(d, "preferred") || undefined, avoid_provider: str(d, "avoid") || undefined }));
      }}>
        <Field label="Cluster to place"><select name="cluster_id" required>{(clusters.data ?? []).map((c) => <option key={c.id} value={c.id}>{c.name}</option>)}</select></Field>
        <Field label="Preferred provider"><select name="preferred"><option value="">(none)</option>{names.map((n) => <option key={n}>{n}</option>)}</select></Field>
        <Field label="Avoid provider"><select name="avoid"><option value="">(none)</option>{names.map((n) => <option key={n}>{n}</option>)}</select></Field>
      </ActionForm>
      {placement ? (
        <section data-testid="placement" aria-labelledby="h-placement">
          <h3 id="h-placement">Placed on {placement.provider} in {placement.region}{placement.price_per_hour !== undefined ? ` at $${placement.price_per_hour}/h` : ""}</h3>
          <ol>{placement.reasons.map((r) => <li key={r}>{r}</li>)}</ol>
          <table>
            <thead><tr><th>Candidate</th><th>Eligible</th><th>Region</th><th>$ per hour</th><th>Reason</th></tr></thead>
            <tbody>{placement.candidates.map((c) => <tr key={c.provider}><td>{c.provider}</td><td><Badge status={c.eligible ? "eligible" : "ineligible"} /></td><td>{c.region ?? "—"}</td><td>{c.price_per_hour ?? "—"}</td><td>{c.reason}</td></tr>)}</tbody>
          </table>
        </section>
      ) : null}
    </Page>
  );
}
