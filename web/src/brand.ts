// The service's name as the operator configured it (the node's --name,
// from GET /api/v1/config), shown in the page's title and on the sign-in
// screens. Until the node has said: the name it gave last time (kept for
// an offline start from the service worker's shell), else "Relais". The
// name is text: it goes into document.title and text nodes, never into
// markup.

import { api } from './api';

const saved = 'relais.name';
let name = localStorage.getItem(saved) || 'Relais';
const listeners = new Set<() => void>();

/** nodeName is the service's name as users see it. */
export function nodeName(): string {
  return name;
}

/** onNodeName calls f when the name becomes known; it returns the unsubscriber. */
export function onNodeName(f: () => void): () => void {
  listeners.add(f);
  return () => listeners.delete(f);
}

let unread = 0;

/** titleOf is the page's title for a count of unread messages. */
export function titleOf(service: string, count: number): string {
  return count > 0 ? `(${count > 99 ? '99+' : count}) ${service}` : service;
}

/** updateTitle sets the page's title: the one place that writes document.title. */
export function updateTitle(): void {
  document.title = titleOf(name, unread);
}

/** setUnread shows how many messages wait to be read: in the tab's title
 * and, where the browser has one, on the installed app's badge. */
export function setUnread(count: number): void {
  if (count === unread) return;
  unread = count;
  updateTitle();
  const nav = navigator as Navigator & { setAppBadge?: (n: number) => Promise<void>; clearAppBadge?: () => Promise<void> };
  (count > 0 ? nav.setAppBadge?.(count) : nav.clearAppBadge?.())?.catch(() => {});
}

/** loadNodeName asks the node for its name, then retitles and re-renders. */
export function loadNodeName(): Promise<void> {
  return api.config().then(
    (c) => {
      const n = typeof c.name === 'string' ? c.name.trim() : '';
      if (!n || n === name) return;
      name = n;
      localStorage.setItem(saved, n);
      updateTitle();
      for (const f of listeners) f();
    },
    () => {}, // offline or node down: keep the name we have
  );
}
