// Hash routing (`#/jobs/job-1?status=failed`): works on S3 website hosting, where every path but
// index.html would be a 404, and gives every page and filter a URL that can be bookmarked and shared.
// Each navigation is a history entry, so the browser's back button walks the pages and filters.
import { useEffect, useState } from "preact/hooks";

export interface Route { path: string; parts: string[]; query: URLSearchParams }

export function currentRoute(): Route {
  const raw = location.hash.replace(/^#/, "") || "/";
  const [path, qs = ""] = raw.split("?", 2);
  return { path, parts: path.split("/").filter(Boolean).map(decodeURIComponent), query: new URLSearchParams(qs) };
}

export function href(path: string, query: Record<string, string | undefined> = {}): string {
  const qs = new URLSearchParams();
  for (const [k, v] of Object.entries(query)) if (v) qs.set(k, v);
  return `#${path}${qs.size ? `?${qs}` : ""}`;
}

export function navigate(path: string, query: Record<string, string | undefined> = {}, replace = false): void {
  const target = href(path, query);
  if (replace) {
    history.replaceState(null, "", target);
    window.dispatchEvent(new HashChangeEvent("hashchange"));
  } else {
    location.hash = target;
  }
}

/** Change some of the current page's query parameters (filters), keeping the rest. */
export function setQuery(changes: Record<string, string | undefined>, replace = false): void {
  const route = currentRoute();
  const query: Record<string, string | undefined> = Object.fromEntries(route.query.entries());
  navigate(route.path, { ...query, ...changes }, replace);
}

export function useRoute(): Route {
  const [route, setRoute] = useState(currentRoute);
  useEffect(() => {
    const onChange = () => setRoute(currentRoute());
    window.addEventListener("hashchange", onChange);
    return () => window.removeEventListener("hashchange", onChange);
  }, []);
  return route;
}
