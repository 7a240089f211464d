import { useState } from "preact/hooks";
import { api, type Evaluation, type Policy } from "../api";
import { setQuery } from "../router";
import { ActionButton, ActionForm, Badge, Choice, useAllowed, Input, Loaded, Page, Time, str, useAsync } from "../ui";
import { ClusterPicker } from "./droplets";


function policyBody(d: FormData): Record<string, unknown> {
  const type = str(d, "type");
  const body: Record<string, unknown> = {
    name: str(d, "name"), type, min_replicas: Number(str(d, "min_replicas")), max_replicas: Number(str(d, "max_replicas")),
    enabled: d.get("enabled") === "on",
  };
  if (type === "metrics") { body.metric_type = str(d, "metric_type"); body.metric_trigger = Number(str(d, "metric_trigger")); }
  if (type === "time_of_day") body.time_window = str(d, "time_window");
  if (type === "cost") body.cost_limit = Number(str(d, "cost_limit"));
  return body;
}

function PolicyFields({ policy }: { policy?: Policy }) {
  const policyTypes = useAllowed("CreatePolicyRequest.type");
  const metricTypes = useAllowed("GET /api/v1/metrics?type", "MetricOut.type", "Metric.type");
  return (
    <>
      <Input label="Policy name" name="name" required defaultValue={policy?.name} />
      <Choice label="Policy type" name="type" options={policyTypes} initial={policy?.type} />
      <Input label="Min replicas" name="min_replicas" type="number" min={0} max={100} defaultValue={String(policy?.min_replicas ?? 1)} required />
      <Input label="Max replicas" name="max_replicas" type="number" min={1} max={100} defaultValue={String(policy?.max_replicas ?? 3)} required />
      <Choice label="Metric (metrics policies)" name="metric_type" options={metricTypes} initial={policy?.metric_type ?? undefined} />
      <Input label="Trigger above (metrics policies, %)" name="metric_trigger" type="number" step="any" defaultValue={String(policy?.metric_trigger ?? 80)} />
      <Input label="Time window UTC (time_of_day, HH:MM-HH:MM)" name="time_window" defaultValue={policy?.time_window ?? "08:00-18:00"} />
      <Input label="Cost limit $/h (cost policies)" name="cost_limit" type="number" step="any" defaultValue={String(policy?.cost_limit ?? 1)} />
      <label class="field check"><input type="checkbox" name="enabled" defaultChecked={policy?.enabled ?? true} /><span>Enabled</span></label>
    </>
  );
}

export function Autoscaling({ query }: { query: URLSearchParams }) {
  const cluster = query.get("cluster") ?? "";
  const policies = useAsync(async () => (cluster ? api.listPolicies(cluster) : []), [cluster]);
  const [evaluation, setEvaluation] = useState<Evaluation>();
  const [editing, setEditing] = useState<string>();
  return (
    <Page title="Autoscaling">
      <div class="filters" role="search">
        <ClusterPicker value={cluster} blank="choose a cluster" onChange={(v) => { setEvaluation(undefined); setQuery({ cluster: v || undefined }); }} />
      </div>
      {!cluster ? <p class="empty">Choose a cluster to see its policies.</p> : (
        <>
          <details class="panel">
            <summary>New policy</summary>
            <ActionForm label="Create policy" submit={async (d) => { await api.createPolicy({ cluster_id: cluster, ...policyBody(d) }); policies.reload(); }}>
              <PolicyFields />
            </ActionForm>
          </details>
          <Loaded state={policies} empty="No policies for this cluster.">
            {(ps) => (
              <table>
                <thead><tr><th>Name</th><th>Type</th><th>Replicas</th><th>Rule</th><th>Enabled</th><th>Updated</th><th><span class="sr-only">Actions</span></th></tr></thead>
                <tbody>
                  {ps.map((p) => editing === p.id ? (
                    <tr key={p.id}><td colSpan={7}>
                      <ActionForm label="Save policy" submit={async (d) => { await api.updatePolicy(p.id, policyBody(d)); setEditing(undefined); policies.reload(); }}>
                        <PolicyFields policy={p} />
                      </ActionForm>
                      <button type="button" onClick={() => setEditing(undefined)}>Cancel</button>
                    </td></tr>
                  ) : (
                    <tr key={p.id}>
                      <td>{p.name}</td><td>{p.type}</td><td>{p.min_replicas}–{p.max_replicas}</td>
                      <td>{p.type === "metrics" ? `${p.metric_type} > ${p.metric_trigger}` : p.type === "time_of_day" ? p.time_window : `$${p.cost_limit}/h`}</td>
                      <td>{p.enabled ? "yes" : "no"}</td><td><Time iso={p.updated_at} /></td>
                      <td class="row-actions">
                        <button type="button" onClick={() => setEditing(p.id)}>Edit <span class="sr-only">{p.name}</span></button>
                        <ActionButton label={p.enabled ? "Disable" : "Enable"} run={async () => { await api.updatePolicy(p.id, { enabled: !p.enabled }); policies.reload(); }} />
                        <ActionButton label="Delete" danger confirm={`Delete policy ${p.name}?`} run={async () => { await api.deletePolicy(p.id); policies.reload(); }} />
                      </td>
                    </tr>
                  ))}
                </tbody>
              </table>
            )}
          </Loaded>
          <ActionButton label="Evaluate policies now" run={async () => setEvaluation(await api.evaluate(cluster))} />
          {evaluation ? (
            <section aria-labelledby="h-eval" data-testid="evaluation">
              <h2 id="h-eval">Evaluation: {evaluation.evaluated} policies evaluated, {evaluation.actions.length} actions</h2>
              {evaluation.decisions.length === 0 ? <p class="empty">No enabled policy to evaluate.</p> : (
                <table>
                  <thead><tr><th>Policy</th><th>Decision</th><th>Replicas</th><th>Reason</th><th>Job</th></tr></thead>
                  <tbody>
                    {evaluation.decisions.map((d, i) => (
                      <tr key={i}><td>{policies.data?.find((p) => p.id === d.policy_id)?.name ?? d.policy_id}</td><td><Badge status={d.action} /></td>
                        <td>{d.current ?? "?"} → {d.target ?? "?"}</td><td>{d.reason}</td>
                        <td>{d.job_id ? <a href={`#/jobs/${encodeURIComponent(d.job_id)}`}>{d.job_id}</a> : "—"}</td></tr>
                    ))}
                  </tbody>
                </table>
              )}
            </section>
          ) : null}
        </>
      )}
    </Page>
  );
}
