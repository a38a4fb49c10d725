// The service's name as the operator configured it (the node's --name,
// from GET /api/v1/config), shown in the page's title and on the sign-in
// screens. "Relais" until the node has said. The name is text: it goes
// into document.title and text nodes, never into markup.

import { api } from './api';

let name = 'Relais';
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

/** updateTitle sets the page's title: the one place that writes document.title. */
export function updateTitle(): void {
  document.title = name;
}

/** loadNodeName asks the node for its name, then retitles and re-renders. */
export function loadNodeName(): Promise<void> {
  return api.config().then(
    (c) => {
      const n = typeof c.name === 'string' ? c.name.trim() : '';
      if (!n || n === name) return;
      name = n;
      updateTitle();
      for (const f of listeners) f();
    },
    () => {}, // offline or node down: keep the name we have
  );
}
