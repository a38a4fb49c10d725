// Client-side routes. The node serves index.html for every path that is not
// a file, so links it mails (/verify?token=…) land here.

const listeners = new Set<() => void>();

export interface Route {
  path: string;
  parts: string[];
  query: URLSearchParams;
}

export function route(): Route {
  const path = location.pathname;
  return { path, parts: path.split('/').filter(Boolean), query: new URLSearchParams(location.search) };
}

export function navigate(path: string, replace = false): void {
  if (path === location.pathname + location.search) return;
  if (replace) history.replaceState(history.state, '', path);
  else history.pushState({ inApp: true }, '', path);
  listeners.forEach((f) => f());
}

export function back(fallback = '/'): void {
  if (history.state && (history.state as { inApp?: boolean }).inApp) history.back();
  else navigate(fallback);
}

export function onRoute(f: () => void): () => void {
  listeners.add(f);
  return () => listeners.delete(f);
}

addEventListener('popstate', () => listeners.forEach((f) => f()));
