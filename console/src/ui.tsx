// Shared building blocks: data loading with loading/empty/error states, polling with backoff, labelled
// form controls, status badges and times.
import type { ComponentChildren, InputHTMLAttributes } from "preact";
import { useCallback, useEffect, useRef, useState } from "preact/hooks";
import { api, ApiError, session, type Level } from "./api";
import { localTime, relativeTime } from "./format";

export interface AsyncState<T> { data?: T; error?: unknown; loading: boolean; reload: () => void }

/** Runs `load` now and whenever `deps` change; `reload()` runs it again keeping the old data on screen. */
export function useAsync<T>(load: () => Promise<T>, deps: unknown[]): AsyncState<T> {
  const [state, setState] = useState<{ data?: T; error?: unknown; loading: boolean }>({ loading: true });
  const [tick, setTick] = useState(0);
  useEffect(() => {
    let live = true;
    setState((s) => ({ ...s, loading: true }));
    load().then((data) => live && setState({ data, loading: false }), (error) => live && setState({ error, loading: false }));
    return () => { live = false; };
  }, [...deps, tick]);
  const reload = useCallback(() => setTick((t) => t + 1), []);
  return { ...state, reload };
}

/** How long an answer may stay the same before polling gives up (a droplet stuck in `provisioning`). */
const POLL_GIVE_UP_MS = 120_000;

/**
 * Calls `load` until `done(result)` says stop: every `min` ms while the answer changes, backing off
 * (doubling, up to `max` ms) while it does not, and after errors; gives up after two minutes without a
 * change, and stops when the component goes away. `reload()` starts it again.
 */
export function usePoll<T>(load: () => Promise<T>, done: (value: T) => boolean, deps: unknown[], min = 700, max = 8000): AsyncState<T> {
  const [state, setState] = useState<{ data?: T; error?: unknown; loading: boolean }>({ loading: true });
  const [tick, setTick] = useState(0);
  useEffect(() => {
    let live = true;
    let timer: number | undefined;
    let delay = min;
    let last = "";
    let changed = Date.now();
    const run = async () => {
      try {
        const data = await load();
        if (!live) return;
        const seen = JSON.stringify(data);
        if (seen === last) delay = Math.min(delay * 2, max);
        else { delay = min; changed = Date.now(); }
        last = seen;
        setState({ data, loading: false });
        if (!done(data) && Date.now() - changed < POLL_GIVE_UP_MS) timer = window.setTimeout(run, delay);
      } catch (error) {
        if (!live) return;
        setState((s) => ({ ...s, error, loading: false }));
        delay = Math.min(delay * 2, max);
        if (!(error instanceof ApiError && error.status === 404)) timer = window.setTimeout(run, delay);
      }
    };
    run();
    return () => { live = false; window.clearTimeout(timer); };
  }, [...deps, tick]);
  const reload = useCallback(() => setTick((t) => t + 1), []);
  return { ...state, reload };
}

/** A list polled while any of its items has one of the `busy` statuses (a droplet provisioning, a cluster whose
 * machines are being terminated), so their changes, and their leaving the list, show without a reload. */
export function useLiveList<T extends { status: string }>(load: () => Promise<T[]>, busy: string[], deps: unknown[]): AsyncState<T[]> {
  return usePoll(load, (items) => !items.some((item) => busy.includes(item.status)), deps, 1000, 8000);
}

export function errorText(error: unknown): string {
  if (error instanceof ApiError) return error.status ? `${error.message} (HTTP ${error.status})` : error.message;
  return error instanceof Error ? error.message : String(error);
}

/** The API's error message, as it came, in an alert region screen readers announce. */
export function ErrorMessage({ error }: { error: unknown }) {
  if (!error) return null;
  return <div class="error" role="alert">{errorText(error)}</div>;
}

/** Renders loading, error or empty states around `children(data)`. */
export function Loaded<T>({ state, empty, isEmpty, children }: {
  state: AsyncState<T>; empty?: string; isEmpty?: (d: T) => boolean; children: (data: T) => ComponentChildren;
}) {
  if (state.error && state.data === undefined) return <ErrorMessage error={state.error} />;
  if (state.data === undefined) return <p class="loading" aria-busy="true">Loading…</p>;
  const blank = isEmpty ? isEmpty(state.data) : Array.isArray(state.data) && state.data.length === 0;
  return (
    <>
      {state.error ? <ErrorMessage error={state.error} /> : null}
      {blank ? <p class="empty">{empty ?? "Nothing here yet."}</p> : children(state.data)}
    </>
  );
}

export function Badge({ status }: { status: string }) {
  return <span class={`badge badge-${status.replace(/[^a-z_-]/gi, "")}`}>{status}</span>;
}

export function Time({ iso }: { iso?: string | null }) {
  if (!iso) return <span class="muted">—</span>;
  return <time dateTime={iso} title={localTime(iso)}>{localTime(iso)} <span class="muted">({relativeTime(iso)})</span></time>;
}

export function Field({ label, children }: { label: string; children: ComponentChildren }) {
  return <label class="field"><span>{label}</span>{children}</label>;
}

export function Select({ label, value, options, onChange, blank, name }: {
  label: string; value: string; options: (string | [string, string])[]; onChange: (v: string) => void; blank?: string; name?: string;
}) {
  return (
    <Field label={label}>
      <select name={name} value={value} onChange={(e) => onChange((e.target as HTMLSelectElement).value)}>
        {blank !== undefined ? <option value="">{blank}</option> : null}
        {options.map((o) => { const [v, t] = Array.isArray(o) ? o : [o, o]; return <option key={v} value={v}>{t}</option>; })}
      </select>
    </Field>
  );
}

export function Input({ label, ...props }: { label: string } & InputHTMLAttributes<HTMLInputElement>) {
  return <Field label={label}><input {...props} /></Field>;
}

/** A form that runs `submit`, disables itself meanwhile and shows the API's error message. Not shown at all
 * to a caller whose role cannot do it (`needs`, default operator: changes within the tenant). */
export function ActionForm({ label, submit, children, class: cls, needs = "operator" }: {
  label: string; submit: (data: FormData) => Promise<unknown>; children: ComponentChildren; class?: string; needs?: Level;
}) {
  if (!session.can(needs)) return null;
  return <ActionFormShown label={label} submit={submit} class={cls}>{children}</ActionFormShown>;
}

function ActionFormShown({ label, submit, children, class: cls }: {
  label: string; submit: (data: FormData) => Promise<unknown>; children: ComponentChildren; class?: string;
}) {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>();
  const onSubmit = async (e: Event) => {
    e.preventDefault();
    setBusy(true);
    setError(undefined);
    try {
      await submit(new FormData(e.currentTarget as HTMLFormElement));
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  };
  return (
    <form class={`action-form ${cls ?? ""}`} onSubmit={onSubmit} aria-label={label}>
      <fieldset disabled={busy}>
        {children}
        <button type="submit">{busy ? "Working…" : label}</button>
      </fieldset>
      <ErrorMessage error={error} />
    </form>
  );
}

/** A button that asks for confirmation first (destructive actions) and reports the API's error; hidden from a
 * caller whose role cannot do it (`needs`, default operator). */
export function ActionButton(props: { label: string; confirm?: string; run: () => Promise<unknown>; danger?: boolean; needs?: Level }) {
  return session.can(props.needs ?? "operator") ? <ActionButtonShown {...props} /> : null;
}

function ActionButtonShown({ label, confirm, run, danger }: { label: string; confirm?: string; run: () => Promise<unknown>; danger?: boolean }) {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>();
  const onClick = async () => {
    if (confirm && !window.confirm(confirm)) return;
    setBusy(true);
    setError(undefined);
    try { await run(); } catch (err) { setError(err); } finally { setBusy(false); }
  };
  return (
    <span class="action">
      <button type="button" class={danger ? "danger" : ""} disabled={busy} onClick={onClick}>{busy ? "…" : label}</button>
      <ErrorMessage error={error} />
    </span>
  );
}

export function Progress({ value, label }: { value: number; label: string }) {
  return (
    <div class="progress" role="progressbar" aria-label={label} aria-valuemin={0} aria-valuemax={100} aria-valuenow={value}>
      <div style={{ width: `${Math.max(0, Math.min(100, value))}%` }} />
      <span>{value}%</span>
    </div>
  );
}

export function Page({ title, children, actions }: { title: string; children: ComponentChildren; actions?: ComponentChildren }) {
  const heading = useRef<HTMLHeadingElement>(null);
  useEffect(() => { document.title = `${title} · ClusterGenie`; }, [title]);
  return (
    <section class="page">
      <header class="page-head"><h1 ref={heading} tabIndex={-1}>{title}</h1>{actions}</header>
      {children}
    </section>
  );
}

export function str(data: FormData, key: string): string {
  return String(data.get(key) ?? "").trim();
}

/** An uncontrolled select for forms read through FormData: `options` are the allowed values. Until they
 * have arrived it holds an empty, required placeholder, so the form cannot be sent without a choice. */
export function Choice({ label, name, options, initial }: { label: string; name: string; options: string[]; initial?: string }) {
  return (
    <Field label={label}>
      <select name={name} required>
        {options.length === 0 ? <option value="">Loading…</option> : null}
        {options.map((o) => <option key={o} value={o} selected={o === initial}>{o}</option>)}
      </select>
    </Field>
  );
}

/** The values the API allows for a field (from its OpenAPI document, fetched once): the choices offered. */
export function useAllowed(...places: string[]): string[] {
  return useAsync(() => api.allowedValues(...places), places).data ?? [];
}
