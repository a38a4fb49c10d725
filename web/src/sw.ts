// The service worker: it caches the application shell (index.html, the
// hashed assets, icons) so that the client opens offline, and never
// touches API data, which always goes to the network.

/// <reference lib="webworker" />

declare const __ASSETS__: string[];
declare const __VERSION__: string;

const sw = self as unknown as ServiceWorkerGlobalScope;
const CACHE = 'relais-shell-' + __VERSION__;
const SHELL = ['/', ...__ASSETS__];

sw.addEventListener('install', (e) => {
  e.waitUntil(
    caches
      .open(CACHE)
      .then((c) => c.addAll(SHELL))
      .then(() => sw.skipWaiting()),
  );
});

sw.addEventListener('activate', (e) => {
  e.waitUntil(
    caches
      .keys()
      .then((keys) => Promise.all(keys.filter((k) => k.startsWith('relais-shell-') && k !== CACHE).map((k) => caches.delete(k))))
      .then(() => sw.clients.claim()),
  );
});

sw.addEventListener('fetch', (e) => {
  const req = e.request;
  const url = new URL(req.url);
  if (req.method !== 'GET' || url.origin !== location.origin) return;
  if (url.pathname.startsWith('/api/') || url.pathname === '/healthz' || url.pathname === '/metrics') return;
  if (req.mode === 'navigate') {
    // The page: the network first (a new version shows at once), the
    // cached shell when offline.
    e.respondWith(fetch(req).catch(() => caches.match('/', { ignoreSearch: true }).then((r) => r ?? Response.error())));
    return;
  }
  if (url.pathname.startsWith('/assets/') || SHELL.includes(url.pathname)) {
    e.respondWith(caches.match(req).then((r) => r ?? fetch(req)));
  }
});

sw.addEventListener('notificationclick', (e) => {
  e.notification.close();
  const room = e.notification.tag;
  e.waitUntil(
    sw.clients.matchAll({ type: 'window' }).then((cs) => {
      const path = room ? '/room/' + room : '/';
      for (const c of cs) if ('focus' in c) return (c as WindowClient).navigate(path).then((w) => w?.focus());
      return sw.clients.openWindow(path).then(() => undefined);
    }),
  );
});
