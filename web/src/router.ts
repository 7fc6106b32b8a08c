// Reads the hash route (`#/incidents/12?x=y`) into a name, a parameter and a query. Pure: the
// shell decides when to render.

export type RouteName =
  "signin" | "incidents" | "incident" | "oncall" | "schedule" | "readiness" | "calendars" | "settings" | "notfound";

export type Route = { name: RouteName; param: string; query: URLSearchParams };

const PLAIN: Record<string, RouteName> = {
  incidents: "incidents",
  oncall: "oncall",
  readiness: "readiness",
  calendars: "calendars",
  settings: "settings",
  signin: "signin",
};

export function parseHash(hash: string): Route {
  const raw = hash.replace(/^#\/?/, "");
  const q = raw.indexOf("?");
  const path = q < 0 ? raw : raw.slice(0, q);
  const query = new URLSearchParams(q < 0 ? "" : raw.slice(q + 1));
  const [first = "", second, ...rest] = path.split("/");
  let param = "";
  try {
    param = second === undefined ? "" : decodeURIComponent([second, ...rest].join("/"));
  } catch {
    return { name: "notfound", param: "", query };
  }
  if (first === "") return { name: "incidents", param: "", query };
  if (first === "incidents" && param) {
    return /^\d+$/.test(param) ? { name: "incident", param, query } : { name: "notfound", param, query };
  }
  if (first === "schedules" && param) return { name: "schedule", param, query };
  const name = PLAIN[first];
  if (name && (param === "" || name === "signin")) return { name, param, query };
  return { name: "notfound", param, query };
}
